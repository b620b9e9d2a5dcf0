/**
 * `node dist/bench/gpu/e2e.js [--full] [--out FILE]`: the CLI merge of the bench's generated
 * Llama-shaped family (bench/e2e.ts; the quick shape unless --full) with `--device cuda` against
 * the same merge with `--device cpu` at all cores, TIES and DPPA as in `npm run bench`.
 *
 * Each output must be byte-identical to the CPU's (exit 1 otherwise): the GPU kernels promise
 * the CPU's bits (native/src/cuda/README.md), and this checks that promise through the whole
 * path a user runs, DP's model-wide statistics included. Times are the fastest of two merges
 * per device, from the page cache, with the read bound of the same run beside them.
 * DPPA_CUDA_PIN=0 runs the GPU merges with their buffers unpinned (staged), for comparison.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { CACHE_DIR, FULL_SHAPE, QUICK_SHAPE, REPO_ROOT, cliMerge, ensureFamily, readAll, writeConfigs } from '../e2e';
import type { MergeRun } from '../e2e';

type Device = 'cpu' | 'cuda';

/** The first file whose bytes differ between two model folders, or null when all are equal. */
function firstDifference(a: string, b: string): string | null {
  const names = fs.readdirSync(a).sort();
  if (names.join('\n') !== fs.readdirSync(b).sort().join('\n')) return `the folders hold different files`;
  for (const name of names) {
    if (!fs.readFileSync(path.join(a, name)).equals(fs.readFileSync(path.join(b, name)))) return name;
  }
  return null;
}

async function main(argv: string[]): Promise<number> {
  const full = argv.includes('--full');
  const at = argv.indexOf('--out');
  const outFile = at >= 0 ? argv[at + 1] : path.join(REPO_ROOT, 'bench', 'results', 'gpu-e2e.json');
  const threads = os.cpus().length;
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const fam = await ensureFamily(full ? FULL_SHAPE : QUICK_SHAPE, log);
  const configs = writeConfigs(fam);
  const buffer = Buffer.allocUnsafe(64 << 20);
  readAll(fam.files, buffer);
  const readBound = readAll(fam.files, buffer);
  log(`family ${path.basename(fam.dir)}: ${(fam.bytes / 1e9).toFixed(2)} GB of input, read bound ${readBound.toFixed(2)} s; ${threads} CPU threads`);

  let mismatches = 0;
  const report: Record<string, unknown> = {
    family: path.basename(fam.dir),
    params: fam.params,
    input_gb: fam.bytes / 1e9,
    threads,
    read_bound_seconds: readBound,
    // The GPU merges' buffers pinned for direct copies (DPPA_CUDA_PIN=0 turns it off: staging).
    cuda_pinned_buffers: process.env.DPPA_CUDA_PIN !== '0',
  };
  for (const method of ['ties', 'dppa'] as const) {
    const runs: Record<Device, MergeRun[]> = { cpu: [], cuda: [] };
    const outs: Record<Device, string> = { cpu: path.join(CACHE_DIR, `gpu-out-${method}-cpu`), cuda: path.join(CACHE_DIR, `gpu-out-${method}-cuda`) };
    for (let sample = 0; sample < 2; sample++) {
      for (const device of ['cpu', 'cuda'] as const) {
        readAll(fam.files, buffer); // the last output may have pushed inputs out of the cache
        const run = await cliMerge(configs[method], outs[device], threads, ['--device', device]);
        runs[device].push(run);
        log(`  ${method} on ${device}: ${run.seconds.toFixed(2)} s (CPU ${run.cpu_seconds?.toFixed(2) ?? '?'} s), peak RSS ${run.peak_rss_mb.toFixed(0)} MB`);
      }
    }
    const differs = firstDifference(outs.cpu, outs.cuda);
    if (differs) mismatches++;
    log(`  ${method}: GPU output ${differs ? `DIFFERS from the CPU's (${differs})` : 'is byte-identical to the CPU output'}`);
    const best = (d: Device) => Math.min(...runs[d].map((r) => r.seconds));
    report[method] = {
      identical: differs === null,
      cpu_seconds: best('cpu'),
      cuda_seconds: best('cuda'),
      cuda_speedup: best('cpu') / best('cuda'),
      cuda_ratio_to_read_bound: readBound / best('cuda'),
      samples: { cpu: runs.cpu.map((r) => r.seconds), cuda: runs.cuda.map((r) => r.seconds) },
      peak_rss_mb: { cpu: Math.max(...runs.cpu.map((r) => r.peak_rss_mb)), cuda: Math.max(...runs.cuda.map((r) => r.peak_rss_mb)) },
    };
    for (const out of Object.values(outs)) await fsp.rm(out, { recursive: true, force: true });
  }
  await fsp.mkdir(path.dirname(outFile), { recursive: true });
  await fsp.writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${outFile}`);
  return mismatches === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`gpu e2e failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
