/**
 * 85: bounded memory. A dppa merge (statistics pass + merge pass) of inputs larger than its
 * tensor-buffer allowance completes with the child's peak RSS (VmHWM from /proc) within the
 * budget given by --max-memory, and identical bytes whatever the budget (read-ahead with two
 * buffer slots, or serial with one).
 *
 * RUNTIME_OVERHEAD_BYTES (lib/run/memory.ts) is what the budget keeps for Node itself; the
 * suite measures the real one (the peak RSS of the same CLI merge of a tiny model) and checks
 * that peak RSS − that baseline stays within the buffer allowance (budget − overhead) plus
 * slack: a merge that held whole models would exceed it by the ~90 MB of its inputs.
 *
 * Suite scale: ~94 MB of inputs. DPPA_MEMORY_SCALE=large (npm run test:memory): ~640 MB of
 * inputs under --max-memory 450M, and a serial run under 300M.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { RUNTIME_OVERHEAD_BYTES } from '../lib/run/memory';
import { tmpDir } from './hooks';
import { family, folderDifference, methodConfig, mib, runCliMeasured, writeConfig } from './80.helpers';

const large = process.env.DPPA_MEMORY_SCALE === 'large';
/** Pages mapped by the allocator, GC timing, the progress of the page cache: some slack. */
const SLACK_BYTES = 32 * 2 ** 20;

function folderBytes(dir: string): number {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
}

describe(`85 memory: peak RSS within --max-memory (${large ? 'large' : 'suite'} scale)`, function () {
  this.timeout(large ? 1800000 : 300000);
  let dir: string;
  let config: string;
  let inputBytes = 0;
  let baselinePeak = 0;

  before(async () => {
    const shape = large
      ? { layers: 7, hidden: 1024, intermediate: 2816, vocab: 8192, heads: 8, shardBytes: 200_000_000 }
      : { layers: 4, hidden: 512, intermediate: 1536, vocab: 2048, heads: 8, shardBytes: 20_000_000 };
    dir = await family(tmpDir(`85-family-${large ? 'large' : 'suite'}`), shape);
    config = writeConfig(dir, 'dppa', methodConfig('dppa'));
    inputBytes = ['base', 'ft0', 'ft1'].reduce((s, m) => s + folderBytes(path.join(dir, m)), 0);
    // The runtime's own peak: the same merge of a tiny model.
    const tiny = await family(tmpDir('80-family'));
    const tinyConfig = writeConfig(tiny, 'dppa-85', methodConfig('dppa'));
    const { result, peakBytes } = runCliMeasured(['merge', tinyConfig, path.join(tiny, 'out-85-baseline'), '-j', '2']);
    assert.equal(result.status, 0, result.stderr);
    baselinePeak = peakBytes;
    console.log(`      runtime baseline (CLI merge of a tiny model): peak RSS ${mib(baselinePeak)}; RUNTIME_OVERHEAD_BYTES assumes ${mib(RUNTIME_OVERHEAD_BYTES)}`);
  });

  const budgets = large ? [450e6, 300e6] : [RUNTIME_OVERHEAD_BYTES + 24e6, RUNTIME_OVERHEAD_BYTES + 12e6];
  budgets.forEach((budget, i) => {
    it(`completes under --max-memory ${mib(budget)} with peak RSS within it${i === 1 ? ' (serial), same bytes' : ''}`, () => {
      const out = path.join(dir, `out-${i}`);
      fs.rmSync(out, { recursive: true, force: true });
      const { result, peakBytes } = runCliMeasured(['merge', config, out, '--max-memory', String(budget), '-j', '2']);
      assert.equal(result.status, 0, result.stderr);
      const allowance = budget - RUNTIME_OVERHEAD_BYTES;
      console.log(`      inputs ${mib(inputBytes)}, budget ${mib(budget)}: peak RSS ${mib(peakBytes)} ` +
        `(${mib(peakBytes - baselinePeak)} above the runtime baseline; buffer allowance ${mib(allowance)})`);
      assert.ok(Number.isFinite(peakBytes) && peakBytes > 0, 'VmHWM was read');
      assert.ok(inputBytes > allowance, 'the inputs are larger than what the budget allows for buffers');
      assert.ok(peakBytes <= budget, `peak RSS ${mib(peakBytes)} exceeds the budget ${mib(budget)}`);
      assert.ok(peakBytes - baselinePeak <= allowance + SLACK_BYTES,
        `peak RSS ${mib(peakBytes)} is ${mib(peakBytes - baselinePeak)} above the runtime baseline, more than the allowance ${mib(allowance)} + ${mib(SLACK_BYTES)}`);
      if (i > 0) assert.equal(folderDifference(path.join(dir, 'out-0'), out), undefined, 'the same bytes under either budget');
    });
  });
});
