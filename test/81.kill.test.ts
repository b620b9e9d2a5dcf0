/**
 * 81: a merge killed with SIGKILL — at random delays, and aimed at the statistics pass, the
 * merge pass and the finish — never leaves anything at the target path but the complete
 * model (killed after the final rename) or, in an --overwrite run, the old model intact; what
 * it leaves beside the target is only dppa's clearly named temporary folders of the killed
 * pid; and the next run succeeds, gives the reference bytes and removes those folders.
 *
 * DPPA_KILL_POINTS sets how many kills (default 4: one per phase and one random, here in the
 * suite); `npm run test:kill` runs 40 on larger models (DPPA_KILL_SCALE=large).
 * DPPA_KILL_SEED seeds the delays (default fixed).
 */
import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { merge } from '../lib/index';
import { Xoshiro128 } from '../lib/synth/random';
import { tmpDir } from './hooks';
import { family, folderDigest, folderDifference, methodConfig, TEMP_NAME, tempsBeside, writeConfig } from './80.helpers';

const child = path.join(__dirname, '81.kill-child.js');

interface KillOutcome {
  /** The last phase line the child printed before it was killed ('' = none yet; 'done' = finished). */
  lastPhase: string;
  exitedBeforeKill: boolean;
  pid: number;
}

/** Start the child; kill it `delayMs` after it prints `phase <aim>` (or after spawn when aim is undefined). */
function runAndKill(args: string[], aim: string | undefined, delayMs: number): Promise<KillOutcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lastPhase = '';
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    let killed = false;
    const arm = () => {
      if (timer === undefined) timer = setTimeout(() => { killed = true; p.kill('SIGKILL'); }, delayMs);
    };
    if (aim === undefined) arm();
    p.stdout.on('data', (chunk) => {
      stdout += chunk;
      const lines = stdout.split('\n').filter((l) => l.length > 0);
      const last = lines[lines.length - 1] ?? '';
      lastPhase = last === 'done' ? 'done' : last.replace(/^phase /, '');
      if (aim !== undefined && lines.includes(`phase ${aim}`)) arm();
    });
    p.stderr.on('data', (chunk) => (stderr += chunk));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL' && killed) return resolve({ lastPhase, exitedBeforeKill: false, pid: p.pid! });
      if (code === 0) return resolve({ lastPhase: 'done', exitedBeforeKill: true, pid: p.pid! });
      reject(new Error(`child exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

function rerun(args: string[]): void {
  const r = spawnSync(process.execPath, [child, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `the re-run failed: ${r.stderr}`);
}

describe('81 kill: SIGKILL at many points leaves nothing half-done', function () {
  const points = Number(process.env.DPPA_KILL_POINTS ?? 4);
  const seed = Number(process.env.DPPA_KILL_SEED ?? 81);
  this.timeout(60000 + points * 20000);
  let dir: string;
  let config: string;
  let reference: string;
  let oldModel: string;
  let uncontendedMs = 0;

  before(async () => {
    // Suite: ~5 MB per model; DPPA_KILL_SCALE=large (the script): ~16 MB per model, a run of
    // a few seconds, so that random delays spread over every phase.
    const shape = process.env.DPPA_KILL_SCALE === 'large'
      ? { layers: 4, hidden: 384, intermediate: 1024, vocab: 1024 }
      : { layers: 3, hidden: 256, intermediate: 640, vocab: 512 };
    dir = await family(tmpDir('81-family'), { ...shape, heads: 4, shardBytes: 3_000_000 });
    config = writeConfig(dir, 'dppa', methodConfig('dppa'));
    reference = path.join(dir, 'reference');
    await merge(config, reference, { shardSize: 2_000_000 });
    assert.ok(fs.readdirSync(reference).filter((f) => f.endsWith('.safetensors')).length > 1, 'the output is sharded');
    oldModel = path.join(dir, 'old-model');
    fs.mkdirSync(oldModel, { recursive: true });
    fs.writeFileSync(path.join(oldModel, 'OLD-MODEL'), 'the previous model');
    fs.writeFileSync(path.join(oldModel, 'model.safetensors'), Buffer.alloc(1000, 7));
    const t0 = Date.now();
    rerun([config, path.join(dir, 'timing')]);
    uncontendedMs = Date.now() - t0;
  });

  it(`${points} kill points: target absent, complete or (overwrite) the old model; the re-run succeeds`, async () => {
    const rng = new Xoshiro128(seed, 'kill');
    const oldDigest = folderDigest(oldModel);
    const tally: Record<string, number> = {};
    const aims = ['statistics', 'merge', 'finish', undefined] as const;
    for (let k = 0; k < points; k++) {
      const aim = aims[k % aims.length];
      const overwrite = k % 2 === 1;
      // Aimed kills land a little after the phase starts; random ones anywhere in the run.
      const delay = aim === undefined ? Math.floor(rng.nextFloat() * uncontendedMs * 1.1) : Math.floor(rng.nextFloat() * (aim === 'finish' ? 20 : 150));
      const target = path.join(dir, `out-${k}`);
      if (overwrite) fs.cpSync(oldModel, target, { recursive: true });
      const args = [config, target, ...(overwrite ? ['--overwrite'] : []), '-j', String(1 + (k % 2))];
      const outcome = await runAndKill(args, aim, delay);
      const what = `kill ${k} (${aim ?? 'random'} +${delay} ms, ${overwrite ? 'overwrite' : 'new'}, last phase "${outcome.lastPhase}")`;
      const where = outcome.exitedBeforeKill ? 'completed' : outcome.lastPhase || 'start';
      tally[where] = (tally[where] ?? 0) + 1;

      // What is at the target: nothing, the complete new model, or the intact old one.
      const leftovers = tempsBeside(target);
      const aside = leftovers.find((n) => n.includes('.dppa-old-'));
      if (fs.existsSync(target)) {
        const isNew = folderDifference(target, reference) === undefined;
        const isOld = overwrite && folderDifference(target, oldModel) === undefined;
        assert.ok(isNew || isOld, `${what}: the target is neither the complete new model nor the old one`);
      } else {
        assert.ok(!overwrite || aside !== undefined, `${what}: an overwrite run lost the old model`);
      }
      if (aside !== undefined) {
        assert.deepEqual(folderDigest(path.join(dir, aside)), oldDigest, `${what}: the old model set aside is intact`);
      }
      // What is beside it: only temporary folders named after the killed process.
      for (const name of leftovers) {
        const m = TEMP_NAME(target).exec(name);
        assert.ok(m, `${what}: unexpected entry ${name}`);
        assert.equal(Number(m[2]), outcome.pid, `${what}: ${name} is not the killed process's`);
      }
      // The next run succeeds (with --overwrite when a target is there), cleans up, and is right.
      rerun([config, target, ...(fs.existsSync(target) || aside ? ['--overwrite'] : [])]);
      assert.equal(folderDifference(target, reference), undefined, `${what}: the re-run's output differs from the reference`);
      assert.deepEqual(tempsBeside(target), [], `${what}: temporary folders left after the re-run`);
      fs.rmSync(target, { recursive: true, force: true });
    }
    console.log(`      ${points} kills (seed ${seed}, uncontended run ${uncontendedMs} ms), by last phase seen: ${JSON.stringify(tally)}`);
  });
});
