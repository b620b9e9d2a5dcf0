/**
 * The cached checkpoints: the base and one fine-tune per task and regime, each a model folder
 * (backbone) plus its task head(s) in `heads/`. A checkpoint's folder name carries a hash of
 * everything that determines it (architecture, data split, training spec, parent), so
 * changing a setting retrains exactly what it affects and nothing else.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { loadModelDir, loadWeights, saveModelDir, saveWeights } from './checkpoint';
import { Task } from './datasets';
import { Weights } from './model';
import { Regime, Settings } from './settings';
import { finetune, pretrain } from './train';

export interface Checkpoint {
  /** Model folder the merge library reads. */
  dir: string;
  backbone: Weights;
  /** Task name → head. */
  heads: Map<string, Weights>;
}

function hashOf(value: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
}

function headFile(dir: string, task: string): string {
  return path.join(dir, 'heads', `${task}.safetensors`);
}

/** A checkpoint root holds `model/` (the folder merges read) and `heads/`. */
function tryLoad(root: string, tasks: string[]): Checkpoint | undefined {
  const dir = path.join(root, 'model');
  if (!fs.existsSync(path.join(dir, 'model.safetensors')) || !tasks.every((t) => fs.existsSync(headFile(root, t)))) return undefined;
  return { dir, backbone: loadModelDir(dir), heads: new Map(tasks.map((t) => [t, loadWeights(headFile(root, t))])) };
}

function save(root: string, settings: Settings, backbone: Weights, heads: Map<string, Weights>): Checkpoint {
  // Heads first: tryLoad treats the checkpoint as complete once model.safetensors exists.
  for (const [t, h] of heads) saveWeights(headFile(root, t), h);
  saveModelDir(path.join(root, 'model'), settings.arch, backbone);
  return { dir: path.join(root, 'model'), backbone, heads };
}

export class CheckpointCache {
  /** How many checkpoints this run trained and how many it found cached (reported with the timing). */
  readonly counts = { trained: 0, cached: 0 };

  constructor(private readonly root: string, private readonly settings: Settings, private readonly log: (m: string) => void) {}

  private baseKey(tasks: Task[]): string {
    const s = this.settings;
    return hashOf({ arch: s.arch, spec: s.pretrain, tasks: tasks.map((t) => t.name), v: s.validationSize, seed: s.dataSeed });
  }

  base(tasks: Task[]): Checkpoint {
    const dir = path.join(this.root, `base-${this.baseKey(tasks)}`);
    const cached = tryLoad(dir, tasks.map((t) => t.name));
    this.counts[cached ? 'cached' : 'trained']++;
    if (cached) return cached;
    this.log(`training the base on ${tasks.map((t) => t.name).join(' + ')}`);
    const { backbone, heads } = pretrain(this.settings.arch, tasks, this.settings.pretrain, this.log);
    return save(dir, this.settings, backbone, heads);
  }

  finetune(base: Checkpoint, tasks: Task[], task: Task, regime: Regime): Checkpoint {
    const spec = this.settings.finetune[regime];
    const dir = path.join(this.root, `ft-${task.name}-${regime}-${hashOf({ base: this.baseKey(tasks), spec })}`);
    const cached = tryLoad(dir, [task.name]);
    this.counts[cached ? 'cached' : 'trained']++;
    if (cached) return cached;
    this.log(`fine-tuning ${task.name} (${regime}: ${spec.epochs} epoch(s), lr ${spec.lr})`);
    const out = finetune(this.settings.arch, base.backbone, base.heads.get(task.name)!, task, spec, `${task.name}/${regime}`, this.log);
    return save(dir, this.settings, out.backbone, new Map([[task.name, out.head]]));
  }
}
