/**
 * What a merge method is: its parameters (schemas.ts) and a per-tensor function. The
 * executor (lib/run) reads the inputs, resolves parameters for the tensor, and calls
 * `mergeTensor`; the method decides what the native core computes.
 */
import type { BandRules, MergeResult, NativeBinding, OutputDType, TensorInput } from '../binding';
import type { TensorRole } from '../plan/layers';
import type { MergePlan } from '../plan/plan';
import type { PlannedTensor, TensorPlan, TensorPlanContext } from '../plan/tensors';
import type { ModelScopeRule } from '../run/model-threshold';
import type { DpOffsets } from './dp-densities';
import type { MethodSchema } from './types';

/** Parameter values resolved for one tensor: per-model over global over the method's default. */
export interface ParamSource {
  number(name: string): number;
  boolean(name: string): boolean;
  string(name: string): string;
  list(name: string): number[];
  /** Whether the config gives it (per model or globally), as opposed to a default. */
  given(name: string): boolean;
}

export interface TensorDescription {
  name: string;
  shape: number[];
  numel: number;
  role: TensorRole;
  numLayers: number;
}

export interface ModelTensor {
  /** The model as written in the config: it keys the random streams. */
  name: string;
  input: TensorInput;
  params: ParamSource;
  /** DP offsets of this model, when the statistics pass ran. */
  dpOffsets?: DpOffsets;
  /** This tensor's share of a model-wide magnitude threshold (`scope: model`). */
  modelScope?: ModelScopeRule;
}

export interface TensorWork {
  tensor: TensorDescription;
  base: TensorInput;
  models: ModelTensor[];
  params: ParamSource;
  seed: number;
  out: Uint8Array;
  outDtype: OutputDType;
  native: NativeBinding;
  /** Selections already made for these inputs (see sparsify/common.ts selectThresholds). */
  selectionCache?: Map<string, BandRules>;
  /** What the method's own statistics pass returned (MethodDefinition.gatherStatistics). */
  methodStatistics?: unknown;
}

/** A tensor's inputs, read afresh (for a method's own statistics pass). */
export type ReadTensorInputs = (tensor: PlannedTensor) => Promise<{ base: TensorInput; models: TensorInput[] }>;

/** Which model-wide statistics a method needs before its merge pass. */
export type StatisticsNeed = 'dp' | 'owl' | 'model-threshold' | null;

export interface MethodDefinition {
  schema: MethodSchema;
  /** A base listed among `models` is merged as a model too (linear), not skipped. */
  includesBaseEntry?: boolean;
  statisticsNeeded(params: ParamSource): StatisticsNeed;
  /**
   * A model-wide statistics pass of the method's own (pcb's whole-model scope). morePasses(n):
   * it will read each merged tensor n more times than statisticsPasses said (so progress stays true).
   */
  gatherStatistics?(plan: MergePlan, read: ReadTensorInputs, morePasses: (passes: number) => void): Promise<unknown>;
  /** How many times gatherStatistics reads each merged tensor, unless it says more (its progress is counted in reads). */
  statisticsPasses?(plan: MergePlan): number;
  /** Bytes of work memory the method holds for the run besides the tensor buffers, given its largest merged tensor. */
  workBytes?(plan: MergePlan, largestElements: number): number;
  /** Methods whose output tensors are not the base's (passthrough slices) plan their own. */
  planTensors?(context: TensorPlanContext): TensorPlan;
  mergeTensor(work: TensorWork): Promise<MergeResult>;
}
