/**
 * A model as dppa reads it: a Hugging Face folder (one model.safetensors, a sharded set with
 * model.safetensors.index.json, or several *.safetensors without an index) or a direct path
 * to one .safetensors file. PyTorch pickles (*.bin, *.pt) are never read: unpickling runs
 * arbitrary code.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DppaError } from '../errors';
import { type RangeMapper, SafetensorsFile, type TensorInfo } from './safetensors';

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';

export type ModelLayout = 'single' | 'sharded' | 'unindexed' | 'file';

async function statOrUndefined(p: string) {
  try {
    return await fsp.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new DppaError('E_IO', `${p}: cannot stat (${code ?? (e as Error).message})`);
  }
}

async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new DppaError('E_IO', `${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DppaError('E_FORMAT', `${file}: ${what} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DppaError('E_FORMAT', `${file}: ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A shard name from an index must stay inside the model folder. */
function resolveShard(indexFile: string, dir: string, shard: string): string {
  const resolved = path.resolve(dir, shard);
  const relative = path.relative(dir, resolved);
  if (shard.length === 0 || path.isAbsolute(shard) || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new DppaError('E_FORMAT', `${indexFile}: shard "${shard}" is not a file inside the model folder`);
  }
  return resolved;
}

export class ModelSource {
  private constructor(
    /** The path the model was opened from, as given. */
    readonly path: string,
    /** The model folder (for a direct file path: the folder holding it). */
    readonly dir: string,
    readonly layout: ModelLayout,
    /** Parsed config.json, or undefined when the folder has none. */
    readonly config: Record<string, unknown> | undefined,
    readonly files: SafetensorsFile[],
    /** Every tensor, in file order then data order. */
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    private readonly fileOf: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  static async open(modelPath: string): Promise<ModelSource> {
    const stat = await statOrUndefined(modelPath);
    if (stat === undefined) throw new DppaError('E_IO', `${modelPath}: no such file or folder`);
    let dir: string;
    let layout: ModelLayout;
    let shardPaths: string[];
    let weightMap: Map<string, string> | undefined; // tensor → shard path, from the index
    let indexFile: string | undefined;

    if (stat.isFile()) {
      dir = path.dirname(modelPath);
      if (path.basename(modelPath) === INDEX_FILE_NAME || modelPath.endsWith('.index.json')) {
        indexFile = modelPath;
        ({ shardPaths, weightMap } = await readIndex(modelPath, dir));
        layout = 'sharded';
      } else if (modelPath.endsWith('.safetensors')) {
        shardPaths = [modelPath];
        layout = 'file';
      } else {
        throw new DppaError('E_FORMAT', `${modelPath}: not a .safetensors file or a model folder` +
          (/\.(bin|pt|pth|ckpt)$/.test(modelPath) ? ' (PyTorch pickles are not read: loading them can run arbitrary code; convert to safetensors first)' : ''));
      }
    } else if (stat.isDirectory()) {
      dir = modelPath;
      const single = path.join(dir, SINGLE_FILE_NAME);
      const index = path.join(dir, INDEX_FILE_NAME);
      // Same preference as transformers: the single file first, then the index.
      if ((await statOrUndefined(single))?.isFile()) {
        shardPaths = [single];
        layout = 'single';
      } else if ((await statOrUndefined(index))?.isFile()) {
        indexFile = index;
        ({ shardPaths, weightMap } = await readIndex(index, dir));
        layout = 'sharded';
      } else {
        shardPaths = await listSafetensors(dir);
        layout = 'unindexed';
      }
    } else {
      throw new DppaError('E_IO', `${modelPath}: not a file or folder`);
    }

    const files: SafetensorsFile[] = [];
    try {
      for (const shard of shardPaths) files.push(await SafetensorsFile.open(shard));
      const tensors = new Map<string, TensorInfo>();
      const fileOf = new Map<string, SafetensorsFile>();
      for (const file of files) {
        for (const [name, info] of file.tensors) {
          const other = fileOf.get(name);
          if (other !== undefined) {
            throw new DppaError('E_FORMAT', `${modelPath}: tensor "${name}" is in two files: ${other.path} and ${file.path}`);
          }
          tensors.set(name, info);
          fileOf.set(name, file);
        }
      }
      if (weightMap !== undefined) {
        for (const [name, shard] of weightMap) {
          const holder = fileOf.get(name);
          if (holder === undefined) {
            throw new DppaError('E_FORMAT', `${indexFile}: tensor "${name}" is listed in shard ${path.basename(shard)} but that shard does not contain it`);
          }
          if (holder.path !== shard) {
            throw new DppaError('E_FORMAT', `${indexFile}: tensor "${name}" is listed in shard ${path.basename(shard)} but is in ${path.basename(holder.path)}`);
          }
        }
      }
      const configPath = path.join(dir, 'config.json');
      const config = (await statOrUndefined(configPath))?.isFile() ? await readJsonObject(configPath, 'config.json') : undefined;
      return new ModelSource(modelPath, dir, layout, config, files, tensors, fileOf);
    } catch (e) {
      await Promise.all(files.map((f) => f.close().catch(() => undefined)));
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new DppaError('E_ARGUMENT', `${this.path}: the model has no tensor "${name}"`);
    return info;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** A tensor's raw bytes; with `into`, read into that buffer (see SafetensorsFile.read). */
  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const file = this.fileOf.get(name);
    if (file === undefined) throw new DppaError('E_ARGUMENT', `${this.path}: the model has no tensor "${name}"`);
    return file.read(name, into);
  }

  /** A tensor's bytes, memory-mapped (see SafetensorsFile.mapInfo); undefined when it cannot be. */
  map(name: string, mapper: RangeMapper): Uint8Array | undefined {
    const file = this.fileOf.get(name);
    if (file === undefined) throw new DppaError('E_ARGUMENT', `${this.path}: the model has no tensor "${name}"`);
    return file.map(name, mapper);
  }

  /** Read part of a tensor: `into.byteLength` bytes from `offset` bytes into it. */
  async readPart(name: string, offset: number, into: Uint8Array): Promise<Uint8Array> {
    const file = this.fileOf.get(name);
    if (file === undefined) throw new DppaError('E_ARGUMENT', `${this.path}: the model has no tensor "${name}"`);
    return file.readPart(name, offset, into);
  }

  /** Total bytes of tensor data. */
  get totalBytes(): number {
    let total = 0;
    for (const info of this.tensors.values()) total += info.byteLength;
    return total;
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

async function readIndex(indexFile: string, dir: string): Promise<{ shardPaths: string[]; weightMap: Map<string, string> }> {
  const index = await readJsonObject(indexFile, 'the shard index');
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new DppaError('E_FORMAT', `${indexFile}: "weight_map" must be an object of tensor name → shard file`);
  }
  const weightMap = new Map<string, string>();
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string') {
      throw new DppaError('E_FORMAT', `${indexFile}: "weight_map"."${name}" must be a shard file name, not ${JSON.stringify(shard)}`);
    }
    const shardPath = resolveShard(indexFile, dir, shard);
    weightMap.set(name, shardPath);
    shards.add(shardPath);
  }
  if (shards.size === 0) throw new DppaError('E_FORMAT', `${indexFile}: "weight_map" is empty`);
  const missing: string[] = [];
  for (const shard of shards) {
    if (!(await statOrUndefined(shard))?.isFile()) missing.push(path.basename(shard));
  }
  if (missing.length > 0) {
    throw new DppaError('E_FORMAT', `${indexFile}: the index names shard${missing.length > 1 ? 's' : ''} that ${missing.length > 1 ? 'do' : 'does'} not exist: ${missing.join(', ')}`);
  }
  return { shardPaths: [...shards].sort(), weightMap };
}

async function listSafetensors(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    throw new DppaError('E_IO', `${dir}: cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const found = names.filter((n) => n.endsWith('.safetensors') && !n.startsWith('.')).sort();
  if (found.length === 0) {
    const pickles = names.filter((n) => /\.(bin|pt|pth|ckpt)$/.test(n));
    const hint = pickles.length > 0
      ? ` It has PyTorch pickle weights (${pickles.slice(0, 3).join(', ')}${pickles.length > 3 ? ', ...' : ''}), which dppa does not read: loading pickles can run arbitrary code. Convert the model to safetensors first.`
      : ' dppa reads only safetensors weights (PyTorch .bin pickles are not read, for safety).';
    throw new DppaError('E_FORMAT', `${dir}: no safetensors weights found (no model.safetensors, no model.safetensors.index.json, no *.safetensors).${hint}`);
  }
  return found.map((n) => path.join(dir, n));
}
