/**
 * What a merge method declares about its parameters. The config validator (lib/config)
 * checks every parameter of a config against these, and `dppa plan` prints them.
 */
export type ParamKind = 'number' | 'boolean' | 'string' | 'numberList';

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  /** Where it may be given: per model (`models[].parameters`), globally, or both. */
  scope: 'model' | 'global' | 'both';
  default?: number | boolean | string | number[];
  /** Allowed values for 'string'. */
  choices?: string[];
  min?: number;
  max?: number;
  /** May vary per tensor: a gradient list or a list of {filter, value} (kind 'number' only). */
  perTensor?: boolean;
  help: string;
}

export interface MethodSchema {
  name: string;
  /** One line for help texts and the model card. */
  summary: string;
  needsBase: boolean;
  minModels: number;
  maxModels?: number;
  params: ParamSpec[];
}
