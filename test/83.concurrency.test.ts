/**
 * 83: concurrency. The addon loaded in several worker_threads at once, all working while the
 * main thread works too, gives every thread the main thread's results; two merges running at
 * once in one process give the same bytes as when run one after the other. The worker cases
 * run in a child process (83.child.ts) so that a hang fails one test, not the suite.
 *
 * A worker that loaded the addon and exits (or is terminated mid-job) must leave the others
 * working: the process-wide job thread drops that worker's queued jobs, waits for its running
 * one, and stops only with the last environment (native/src/addon/job.cpp).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { merge } from '../lib/index';
import { tmpDir } from './hooks';
import { family, folderDifference, methodConfig, writeConfig } from './80.helpers';

const childFile = path.join(__dirname, '83.child.js');

function scenario(name: string): Record<string, any> {
  const r = spawnSync(process.execPath, [childFile, name], { encoding: 'utf8', timeout: 90000 });
  assert.equal(r.signal, null, `the child was killed by ${r.signal} (a hang?): ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const result = JSON.parse(line || '{}');
  assert.equal(result.error, undefined, result.error);
  assert.equal(r.status, 0, r.stderr);
  return result;
}

describe('83 concurrency: workers and concurrent merges', function () {
  this.timeout(180000);

  it('the addon in 4 worker threads at once, while the main thread works, gives the main thread\'s results', () => {
    const r = scenario('concurrent');
    assert.notEqual(r.expected[1], r.expected[2], 'the workload depends on its seed');
    (r.workers as { digests: string[]; simd: string }[]).forEach((w, i) => {
      assert.equal(w.simd, r.simd);
      assert.equal(w.digests.length, 2);
      for (const d of w.digests) assert.equal(d, r.expected[r.seeds[i]], `worker ${i} (seed ${r.seeds[i]})`);
    });
    assert.deepEqual(r.main, [r.expected[2], r.expected[3]]);
  });

  it('after a worker that used the addon exits, the main thread\'s jobs still run', () => {
    const r = scenario('after-exit');
    assert.notEqual(r.before, 'hang');
    assert.equal(r.after, r.before, 'the main thread\'s job settles after the worker exited');
  });

  it('terminating workers in the middle of their jobs leaves the addon working', () => {
    const r = scenario('terminate');
    assert.equal(r.after, r.before);
  });

  it('two merges at once in one process equal the same merges run one after the other', async () => {
    const dir = await family(tmpDir('83-family'), { layers: 2, hidden: 128, intermediate: 352, vocab: 200, heads: 4 });
    const configs = (['dppa', 'dare_ties', 'dppa'] as const).map((m, i) => writeConfig(dir, `${m}-${i}`, methodConfig(m)));
    for (const [i, c] of configs.entries()) await merge(c, path.join(dir, `seq-${i}`), { seed: 3 });
    await Promise.all(configs.map((c, i) => merge(c, path.join(dir, `par-${i}`), { seed: 3 })));
    for (let i = 0; i < configs.length; i++) {
      assert.equal(folderDifference(path.join(dir, `seq-${i}`), path.join(dir, `par-${i}`)), undefined, `merge ${i}`);
    }
    assert.equal(folderDifference(path.join(dir, 'par-0'), path.join(dir, 'par-2')), undefined);
  });
});
