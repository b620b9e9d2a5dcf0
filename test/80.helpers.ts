/**
 * Shared helpers of the hostile-input, fault and scale tests (80–89) and of the longer
 * scripts in scripts/ that run the same checks at a larger scale.
 */
import { spawn, spawnSync, SpawnSyncReturns } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { ModelSource } from '../lib/io/model';
import { writeLlamaFamily, type LlamaFamilyOptions } from '../lib/synth/llama';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const cliPath = path.join(repoRoot, 'bin', 'dppa.js');
/** Preloaded into a child (node -r): writes the child's VmHWM (kB) to $DPPA_VMHWM_FILE at exit. */
export const vmhwmPreload = path.join(__dirname, '80.vmhwm.js');

export type FamilyOptions = Partial<LlamaFamilyOptions>;

const families = new Map<string, Promise<string>>();

/** A generated base + fine-tunes (ft0, ft1, ...) in `dir`, generated once per process. */
export function family(dir: string, options: FamilyOptions = {}): Promise<string> {
  const key = `${dir}|${JSON.stringify(options)}`;
  let p = families.get(key);
  if (p === undefined) {
    p = writeLlamaFamily(dir, {
      layers: 2, hidden: 64, intermediate: 128, vocab: 128, heads: 4, fineTunes: 2,
      dtype: 'BF16', seed: 11, shardBytes: 40_000, deltaScale: 0.004, ...options,
    }).then(() => dir);
    families.set(key, p);
  }
  return p;
}

/** Configs of the three methods whose determinism matters most; model paths relative to `dir`. */
export function methodConfig(method: 'ties' | 'dare_ties' | 'dppa' | 'task_arithmetic' | 'pcb', seed = 5): Record<string, unknown> {
  const models = [{ model: './ft0', parameters: { weight: 1 } }, { model: './ft1', parameters: { weight: 0.7 } }];
  switch (method) {
    case 'ties':
      return { merge_method: 'ties', base_model: './base', models: models.map((m, i) => ({ ...m, parameters: { ...m.parameters, density: [0.3, 0.6][i] } })) };
    case 'dare_ties':
      return { merge_method: 'dare_ties', base_model: './base', models: models.map((m) => ({ ...m, parameters: { ...m.parameters, density: 0.4 } })), parameters: { seed } };
    case 'dppa':
      return { merge_method: 'dppa', base_model: './base', models, parameters: { partitions: [0.1, 0.2], amplify: [1.8, 1.0] } };
    case 'pcb': // PCB takes no per-model weights
      return { merge_method: 'pcb', base_model: './base', models: models.map((m) => ({ model: m.model })), parameters: { pcb_ratio: 0.3 } };
    default:
      return { merge_method: 'task_arithmetic', base_model: './base', models };
  }
}

export function writeConfig(dir: string, name: string, config: object): string {
  const file = path.join(dir, `${name}.yml`);
  fs.writeFileSync(file, stringify(config));
  return file;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...nodeArgs, cliPath, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

export function runCliAsync(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []) {
  return spawn(process.execPath, [...nodeArgs, cliPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** sha256 of every file of a folder (recursively), by relative path. */
export function folderDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.set(path.relative(dir, full), crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** The first file whose digest differs, or undefined when both folders hold the same bytes. */
export function folderDifference(a: string, b: string): string | undefined {
  const da = folderDigest(a), db = folderDigest(b);
  const names = new Set([...da.keys(), ...db.keys()]);
  for (const n of [...names].sort()) {
    if (da.get(n) !== db.get(n)) return `${n}: ${da.get(n) ?? 'missing'} vs ${db.get(n) ?? 'missing'}`;
  }
  return undefined;
}

/** Entries beside `target` named like dppa's temporary folders (`.<base>.dppa-tmp-…`, `…-old-…`). */
export function tempsBeside(target: string): string[] {
  const base = path.basename(target);
  const parent = path.dirname(target);
  if (!fs.existsSync(parent)) return [];
  return fs.readdirSync(parent).filter((n) => n.startsWith(`.${base}.dppa-`)).sort();
}

export const TEMP_NAME = (target: string) =>
  new RegExp(`^\\.${path.basename(target).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.dppa-(tmp|old)-(\\d+)-[0-9a-f]+$`);

/** A pid that belonged to a process which has exited (for stale temporary folders). */
export function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  try {
    process.kill(pid, 0);
    throw new Error(`pid ${pid} is alive again`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  return pid;
}

/**
 * Overwrite elements of a BF16 tensor of a model folder in place: `values` are bf16 bit
 * patterns (0x7fc0 NaN, 0x7f80 +Inf, 0xff80 -Inf), written at the given element indices.
 */
export async function injectBf16(modelDir: string, tensor: string, positions: number[], bits: number): Promise<void> {
  const model = await ModelSource.open(modelDir);
  const info = model.info(tensor);
  await model.close();
  if (info.dtype !== 'BF16') throw new Error(`${tensor} is ${info.dtype}, not BF16`);
  const fd = fs.openSync(info.file, 'r+');
  try {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(bits, 0);
    for (const p of positions) {
      if (p < 0 || p >= info.numel) throw new Error(`element ${p} outside ${tensor}`);
      fs.writeSync(fd, b, 0, 2, info.byteOffset + 2 * p);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Copy a model folder (for tests that damage their inputs). */
export function copyFolder(from: string, to: string): string {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
  return to;
}

/** Peak RSS (VmHWM, bytes) of a CLI run, read by the child from /proc/self/status at exit. */
export function runCliMeasured(args: string[], env: NodeJS.ProcessEnv = {}): { result: SpawnSyncReturns<string>; peakBytes: number } {
  const file = path.join(fs.mkdtempSync(path.join(require('os').tmpdir(), 'dppa-hwm-')), 'vmhwm');
  const result = runCli(args, { ...env, DPPA_VMHWM_FILE: file }, ['-r', vmhwmPreload]);
  let peakBytes = NaN;
  try {
    peakBytes = Number(fs.readFileSync(file, 'utf8')) * 1024;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  return { result, peakBytes };
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
