/**
 * Loads the native addon. It tries the cmake-js build, then the node-gyp build, and when
 * none loads it says every path it tried and why each failed, and how to build it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DppaError } from './errors';
import type { NativeBinding } from './binding';

const packageRoot = path.resolve(__dirname, '..', '..');

export const candidatePaths = [
  process.env.DPPA_ADDON_PATH,
  path.join(packageRoot, 'build', 'Release', 'dppa.node'),
  path.join(packageRoot, 'build', 'dppa.node'),
  path.join(packageRoot, 'build', 'Debug', 'dppa.node'),
].filter((p): p is string => typeof p === 'string' && p.length > 0);

let loaded: NativeBinding | undefined;

export function native(): NativeBinding {
  if (loaded) return loaded;
  const tried: string[] = [];
  for (const candidate of candidatePaths) {
    if (!fs.existsSync(candidate)) {
      tried.push(`  ${candidate}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      loaded = require(candidate) as NativeBinding;
      return loaded;
    } catch (e) {
      tried.push(`  ${candidate}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new DppaError(
    'E_NATIVE',
    `the dppa native addon could not be loaded. Tried:\n${tried.join('\n')}\n` +
      `Build it with \`npm install\` (cmake-js) or \`npx node-gyp rebuild --nodedir=/usr\`, ` +
      `or point DPPA_ADDON_PATH at a built dppa.node.`,
  );
}
