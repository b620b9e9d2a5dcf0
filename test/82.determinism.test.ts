/**
 * 82: the same config and seed give byte-identical output files — every shard, the index,
 * config.json and the model card — across runs, thread counts (-j 1 / -j 2) and SIMD paths
 * (DPPA_SIMD=scalar|avx2|avx512 in the child process), for ties, dare_ties and dppa. A
 * different seed changes dare_ties' output (so the comparison can see a difference).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../lib/native';
import { tmpDir } from './hooks';
import { family, folderDifference, methodConfig, runCli, writeConfig } from './80.helpers';

const addon = native();

/** The SIMD path a child process runs on under DPPA_SIMD=path (as the addon reports it). */
function childSimd(simd: string): string {
  const r = spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))}).native().simd.active)`], {
    encoding: 'utf8', env: { ...process.env, DPPA_SIMD: simd },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('82 determinism: identical bytes across runs, threads and SIMD paths', function () {
  this.timeout(240000);
  const paths = addon.simd.available as string[];
  // Every path at least once, both thread counts, and one repeated run.
  const runs: { simd: string; threads: number }[] = [];
  paths.forEach((simd, i) => runs.push({ simd, threads: 1 + (i % 2) }));
  const best = paths[paths.length - 1];
  runs.push({ simd: best, threads: runs[runs.length - 1].threads === 1 ? 2 : 1 }, { simd: best, threads: 2 });
  let dir: string;

  before(async () => {
    // Sizes that are not multiples of any vector width; tensors large enough to be split across threads.
    dir = await family(tmpDir('82-family'), { layers: 2, hidden: 200, intermediate: 1000, vocab: 301, heads: 4, shardBytes: 1_000_000 });
  });

  it(`DPPA_SIMD selects the path in a child process (${paths.join(', ')})`, () => {
    for (const simd of paths) assert.equal(childSimd(simd), simd);
  });

  for (const method of ['ties', 'dare_ties', 'dppa'] as const) {
    it(`${method}: ${runs.map((r) => `${r.simd}/-j${r.threads}`).join(', ')} give the same bytes`, () => {
      const config = writeConfig(dir, method, methodConfig(method));
      const outs: string[] = [];
      for (const [i, { simd, threads }] of runs.entries()) {
        const out = path.join(dir, `out-${method}-${i}`);
        const r = runCli(['merge', config, out, '-j', String(threads), '--seed', '42', '--out-shard-size', '800K'], { DPPA_SIMD: simd });
        assert.equal(r.status, 0, r.stderr);
        outs.push(out);
      }
      assert.ok(fs.readdirSync(outs[0]).filter((f) => f.endsWith('.safetensors')).length > 1, 'sharded output');
      for (let i = 1; i < outs.length; i++) {
        const diff = folderDifference(outs[0], outs[i]);
        assert.equal(diff, undefined, `${runs[0].simd}/-j${runs[0].threads} vs ${runs[i].simd}/-j${runs[i].threads}: ${diff}`);
      }
      if (method === 'dare_ties') {
        const other = path.join(dir, 'out-dare-other-seed');
        const r = runCli(['merge', config, other, '--seed', '43', '--out-shard-size', '800K']);
        assert.equal(r.status, 0, r.stderr);
        const diff = folderDifference(outs[0], other);
        assert.ok(diff !== undefined && diff.includes('.safetensors'), 'another seed gives other tensors');
      }
      for (const out of outs) fs.rmSync(out, { recursive: true, force: true });
    });
  }
});
