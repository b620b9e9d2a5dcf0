// 70: the speed benchmark's kernel measurement runs end to end on a tiny size (no timing
// assertions: speed targets live in `npm run bench`, never in a unit test).
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import { native } from '../lib/native';
import { writeConfigs, writeDurably } from '../bench/e2e';
import { plan } from '../lib/index';
import { writeLlamaFamily } from '../lib/synth/llama';
import { measureKernels } from '../bench/kernels';
import { formatTables } from '../bench/speed';

describe('70 bench smoke', () => {
  it('measureKernels covers every kernel, thread count and SIMD path and restores the settings', async () => {
    const n = native();
    const threadsBefore = n.getThreads();
    const simdBefore = n.simd.active;
    const report = await measureKernels(n, {
      n: 4096,
      selectN: 4096,
      copyBytes: 1 << 16,
      threads: [1, 2],
      minSamples: 1,
      maxTime: 0.001,
    });
    assert.strictEqual(report.configs.length, 2 * n.simd.available.length);
    for (const c of report.configs) {
      assert.ok(c.copy_gbps > 0 && Number.isFinite(c.copy_gbps));
      for (const name of ['ta_k3_bf16', 'ties_k3_bf16', 'dppa_k3_bf16', 'select_threshold', 'decode_bf16', 'encode_bf16', 'delta_bf16']) {
        const f = c.kernels[name];
        assert.ok(f, `${name} measured`);
        assert.ok(f.gbps > 0 && Number.isFinite(f.ratio_to_copy), `${name}: ${JSON.stringify(f)}`);
      }
    }
    assert.strictEqual(n.getThreads(), threadsBefore);
    assert.strictEqual(n.simd.active, simdBefore);
    const c = report.configs[0];
    const table = formatTables({
      mode: 'smoke',
      machine: { cpu: 'test', cores: 2, memory_gb: 1 },
      headline: { threads: c.threads, simd: c.simd },
      copy_gbps: c.copy_gbps,
      copy_gbps_by_config: { [`t${c.threads}_${c.simd}`]: c.copy_gbps },
      kernels: Object.fromEntries(Object.entries(c.kernels).map(([k, f]) => [k, { ...f, by_config: { [`t${c.threads}_${c.simd}`]: f } }])),
      tfjs_wasm_speedup: { task_arithmetic: null, ties: null },
      tfjs_cpu_speedup: { task_arithmetic: null, ties: null },
      torch_speedup: { task_arithmetic: null, ties: null },
      e2e: { error: 'not run' },
      targets: [],
    });
    assert.match(table, /ties_k3_bf16/);
  });

  it('the e2e configs (TIES, DPPA, PCB) are valid merges of a generated family', async () => {
    const dir = fs.mkdtempSync(`${os.tmpdir()}/dppa-70-configs-`);
    try {
      await writeLlamaFamily(dir, { layers: 1, hidden: 16, intermediate: 32, vocab: 32, heads: 2, fineTunes: 3, dtype: 'BF16', seed: 3 });
      const configs = writeConfigs({ dir } as never);
      for (const [method, file] of Object.entries(configs)) {
        const report = await plan(file, { statistics: false });
        assert.ok(report, `${method}: planned`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writeDurably writes every byte through the writer\'s write-behind, piece by piece, and leaves nothing', async () => {
    const dir = fs.mkdtempSync(`${os.tmpdir()}/dppa-70-`);
    const started: [number, number][] = [];
    const waited: [number, number][] = [];
    const bytes = 2 * (16 << 20) + 12345;
    let fileBytes = 0;
    try {
      const seconds = await writeDurably(dir, bytes, {
        startWriteback: (fd, offset, length) => {
          fileBytes = fs.fstatSync(fd).size;
          started.push([offset, length]);
        },
        writeback: async (_fd, offset, length) => {
          waited.push([offset, length]);
        },
      });
      assert.ok(seconds > 0);
      assert.ok(started.length >= 3, JSON.stringify(started));
      assert.deepEqual(waited, started);
      let end = 0;
      for (const [offset, length] of started) {
        assert.equal(offset, end, 'contiguous, in order');
        end = offset + length;
      }
      assert.equal(end, fileBytes, 'the whole file');
      assert.ok(fileBytes >= bytes + 1);
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
