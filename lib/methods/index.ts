/** Every merge method, by its config name. Each lives in its own file. */
import { breadcrumbs } from './breadcrumbs';
import { breadcrumbs_ties } from './breadcrumbs_ties';
import { dare_linear } from './dare_linear';
import { dare_ties } from './dare_ties';
import { della } from './della';
import { della_linear } from './della_linear';
import { dppa } from './dppa';
import { linear } from './linear';
import { model_stock } from './model_stock';
import { passthrough } from './passthrough';
import { pcb } from './pcb';
import type { MethodDefinition } from './recipe';
import { slerp } from './slerp';
import { task_arithmetic } from './task_arithmetic';
import { ties } from './ties';

export const methods: Record<string, MethodDefinition> = {
  task_arithmetic,
  ties,
  dare_linear,
  dare_ties,
  breadcrumbs,
  breadcrumbs_ties,
  della,
  della_linear,
  dppa,
  linear,
  slerp,
  model_stock,
  passthrough,
  pcb,
};
