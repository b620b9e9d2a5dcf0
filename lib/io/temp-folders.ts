/**
 * The temporary folders an output model is assembled in, beside its target:
 * `.<basename>.dppa-tmp-<pid>-<random>` while writing, `.<basename>.dppa-old-<pid>-<random>`
 * for the replaced model during an overwrite. Same folder as the target, so the final rename
 * stays on one file system and is atomic.
 */
import { promises as fsp } from 'fs';
import * as crypto from 'crypto';
import * as path from 'path';

export type TempKind = 'tmp' | 'old';

export function tempFolderPath(target: string, kind: TempKind): string {
  const base = path.basename(target);
  const random = crypto.randomBytes(4).toString('hex');
  return path.join(path.dirname(target), `.${base}.dppa-${kind}-${process.pid}-${random}`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the temporary folders that killed runs left beside `target` (those whose pid is no
 * longer alive). Returns the paths removed. Folders of live processes are never touched.
 * One exception to removal: a run killed in the middle of an overwrite, between moving the
 * old model aside and moving the new one in, leaves no target and a `dppa-old` folder; that
 * folder is the user's previous model, so it is renamed back to the target instead.
 */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const parent = path.dirname(path.resolve(target));
  const pattern = new RegExp(`^\\.${escapeRegExp(path.basename(path.resolve(target)))}\\.dppa-(?:tmp|old)-(\\d+)-[0-9a-f]+$`);
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const resolvedTarget = path.resolve(target);
  for (const name of names.sort()) {
    const match = pattern.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (isProcessAlive(pid)) continue;
    const full = path.join(parent, name);
    if (name.includes('.dppa-old-') && !(await exists(resolvedTarget))) {
      await fsp.rename(full, resolvedTarget);
      continue;
    }
    await fsp.rm(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}
