// Global hooks: one temporary folder for the whole run, removed at the end.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'dppa-test-'));

export function tmpDir(name: string): string {
  const dir = path.join(tmpRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export const mochaHooks = {
  afterAll() {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  },
};
