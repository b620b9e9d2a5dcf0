/**
 * `npm run bench [-- --quick] [--no-e2e] [--no-peers] [--e2e quick|full]`: dppa's speed at
 * the machine's limit. Kernels against a native copy measured in the same run, the same
 * merges in TensorFlow.js (wasm) and PyTorch (mergekit's math), and CLI merges of a
 * generated Llama-shaped model against plain reads of its files. Prints a table, writes
 * bench/results/latest.json, and says which targets are met. Never fails for a missing peer.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../lib/native';
import type { NativeBinding } from '../lib/binding';
import { CACHE_DIR, E2eReport, FULL_SHAPE, measureE2e, QUICK_SHAPE, REPO_ROOT } from './e2e';
import { KernelReport, measureKernels } from './kernels';
import { oursOn, OursTimes, tfjsPeer, TfjsResult, torchPeer, TorchResult } from './peers';
import { makeFamily } from './synthdata';

export interface BenchOptions {
  quick: boolean;
  e2e: 'quick' | 'full' | 'none';
  peers: boolean;
  threads: number[];
  out: string;
}

export interface Target {
  name: string;
  /** Where the figure lives in the JSON. */
  path: string;
  target: string;
  value: number | null;
  status: 'met' | 'missed' | 'not measured';
  note?: string;
}

const PRESETS = {
  quick: { n: 8 << 20, selectN: 45_000_000, copyBytes: 128 << 20, minSamples: 2, maxTime: 0.1, peerN: 2 << 20, peerReps: 1, cpuTies: false },
  full: { n: 32 << 20, selectN: 45_000_000, copyBytes: 256 << 20, minSamples: 5, maxTime: 1.5, peerN: 4 << 20, peerReps: 2, cpuTies: true },
};

export function parseOptions(argv: string[]): BenchOptions {
  const quick = argv.includes('--quick');
  let e2e: BenchOptions['e2e'] = quick ? 'quick' : 'full';
  const at = argv.indexOf('--e2e');
  if (at >= 0) {
    const v = argv[at + 1];
    if (v !== 'quick' && v !== 'full' && v !== 'none') throw new Error(`--e2e takes quick, full or none, not ${v}`);
    e2e = v;
  }
  if (argv.includes('--no-e2e')) e2e = 'none';
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const threads = [...new Set([1, Math.min(2, cores), cores])];
  return { quick, e2e, peers: !argv.includes('--no-peers'), threads, out: path.join(REPO_ROOT, 'bench', 'results', 'latest.json') };
}

function machine(nat: NativeBinding) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism ? os.availableParallelism() : cpus.length,
    memory_gb: os.totalmem() / 2 ** 30,
    loadavg_at_start: os.loadavg(),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    addon_version: nat.version,
    simd_available: nat.simd.available,
    cuda: nat.cuda.description,
  };
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || !(b > 0) ? null : a / b);

function check(name: string, jsonPath: string, value: number | null, op: '>=' | '<=', bound: number, note?: string): Target {
  const status = value === null || Number.isNaN(value) ? 'not measured' : (op === '>=' ? value >= bound : value <= bound) ? 'met' : 'missed';
  return { name, path: jsonPath, target: `${op} ${bound}`, value, status, ...(note ? { note } : {}) };
}

export async function runBench(options: BenchOptions, log: (line: string) => void = console.log): Promise<Record<string, unknown>> {
  const started = Date.now();
  const nat = native();
  const machineInfo = machine(nat);
  const preset = options.quick ? PRESETS.quick : PRESETS.full;
  const headlineThreads = Math.min(2, Math.max(...options.threads));
  log(`dppa speed benchmark (${options.quick ? 'quick' : 'full'}) on ${os.cpus()[0]?.model}, ${os.cpus().length} cores; SIMD ${nat.simd.available.join('/')}`);

  log(`kernels: ${preset.n / 2 ** 20}Mi elements per bf16 tensor, select over ${preset.selectN / 1e6}M float32, copy of ${preset.copyBytes / 2 ** 20} MiB`);
  const kr: KernelReport = await measureKernels(nat, { ...preset, threads: options.threads, log });
  const headline = kr.configs.find((c) => c.threads === headlineThreads && c.simd === kr.default_simd)!;
  const kernels: Record<string, unknown> = {};
  for (const name of Object.keys(headline.kernels)) {
    const byConfig: Record<string, unknown> = {};
    for (const c of kr.configs) byConfig[`t${c.threads}_${c.simd}`] = c.kernels[name];
    kernels[name] = { gbps: headline.kernels[name].gbps, ratio_to_copy: headline.kernels[name].ratio_to_copy, by_config: byConfig };
  }

  let tfjsWasm: TfjsResult | null = null;
  let tfjsCpu: TfjsResult | null = null;
  let torch: TorchResult | null = null;
  let ours: OursTimes | null = null;
  let ours1: OursTimes | null = null;
  let tfjsError: string | undefined;
  if (options.peers) {
    log(`peers: ${preset.peerN / 2 ** 20}Mi elements per tensor, base + 3 fine-tunes`);
    const fam = await makeFamily(nat, preset.peerN, 3, 3);
    ours = await oursOn(nat, fam, headlineThreads, preset.minSamples, preset.maxTime);
    ours1 = headlineThreads === 1 ? ours : await oursOn(nat, fam, 1, preset.minSamples, preset.maxTime);
    log(`  ours (${headlineThreads} threads): task arithmetic ${(ours.task_arithmetic_seconds * 1e3).toFixed(1)} ms, ties ${(ours.ties_seconds * 1e3).toFixed(1)} ms`);
    try {
      tfjsWasm = await tfjsPeer(nat, fam, 'wasm', preset.peerReps);
      log(`  tfjs-wasm: task arithmetic ${(tfjsWasm.task_arithmetic_seconds * 1e3).toFixed(0)} ms, ties ${((tfjsWasm.ties_seconds ?? NaN) * 1e3).toFixed(0)} ms (decode apart: ${(tfjsWasm.decode_seconds * 1e3).toFixed(0)} ms; TIES outputs differing from ours beyond bf16 rounding: ${((tfjsWasm.ties_mismatch_fraction ?? NaN) * 100).toFixed(3)}%, ties at the threshold)`);
      tfjsCpu = await tfjsPeer(nat, fam, 'cpu', 1, preset.cpuTies);
      log(`  tfjs-cpu:  task arithmetic ${(tfjsCpu.task_arithmetic_seconds * 1e3).toFixed(0)} ms, ties ${tfjsCpu.ties_seconds === null ? 'skipped (--quick)' : `${(tfjsCpu.ties_seconds * 1e3).toFixed(0)} ms`}`);
    } catch (e) {
      tfjsError = (e as Error).message;
      log(`  tfjs failed: ${tfjsError}`);
    }
    torch = await torchPeer(fam, path.join(CACHE_DIR, `peer-${fam.n}`), headlineThreads, preset.peerReps, log);
    if (torch) log(`  torch ${torch.torch_version} (${torch.threads} threads): task arithmetic ${(torch.task_arithmetic_seconds * 1e3).toFixed(0)} ms, ties ${(torch.ties_seconds * 1e3).toFixed(0)} ms`);
  }

  let e2e: E2eReport | null = null;
  let e2eError: string | undefined;
  if (options.e2e !== 'none') {
    const shape = options.e2e === 'full' ? FULL_SHAPE : QUICK_SHAPE;
    log(`e2e: CLI merges of a generated Llama-shaped family (${options.e2e}), -j ${headlineThreads}`);
    try {
      e2e = await measureE2e(shape, headlineThreads, log, options.e2e === 'quick');
    } catch (e) {
      e2eError = (e as Error).message;
      log(`  e2e failed: ${e2eError}`);
    }
  }

  const k = (name: string) => (kernels[name] as { ratio_to_copy: number } | undefined)?.ratio_to_copy ?? null;
  const speedup = (peer: { task_arithmetic_seconds: number; ties_seconds: number | null } | null, mine: OursTimes | null) => ({
    task_arithmetic: ratio(peer?.task_arithmetic_seconds, mine?.task_arithmetic_seconds),
    ties: ratio(peer?.ties_seconds, mine?.ties_seconds),
  });
  const bigInput = e2e !== null && e2e.input_gb >= 6;
  const targets: Target[] = [
    check('ta_k3_bf16 / copy', `kernels.ta_k3_bf16.ratio_to_copy`, k('ta_k3_bf16'), '>=', 0.8),
    check('ties_k3_bf16 / copy', `kernels.ties_k3_bf16.ratio_to_copy`, k('ties_k3_bf16'), '>=', 0.45),
    check('dppa_k3_bf16 / copy', `kernels.dppa_k3_bf16.ratio_to_copy`, k('dppa_k3_bf16'), '>=', 0.4),
    check('select_threshold / copy', `kernels.select_threshold.ratio_to_copy`, k('select_threshold'), '>=', 0.3),
    check('e2e ties / read bound', 'e2e.ties.ratio_to_read_bound', e2e?.ties.ratio_to_read_bound ?? null, '>=', 0.7),
    check('e2e dppa / read bound', 'e2e.dppa.ratio_to_read_bound', e2e?.dppa.ratio_to_read_bound ?? null, '>=', 0.5),
    check(
      'peak RSS (MB), ~8 GB input',
      'e2e.*.peak_rss_mb',
      bigInput ? Math.max(e2e!.ties.peak_rss_mb, e2e!.dppa.peak_rss_mb) : null,
      '<=',
      2048,
      bigInput ? undefined : `needs the full run (~8 GB input)${e2e ? `; this run: ${e2e.input_gb.toFixed(2)} GB input, ${Math.max(e2e.ties.peak_rss_mb, e2e.dppa.peak_rss_mb).toFixed(0)} MB` : ''}`,
    ),
    check('x faster than tfjs-wasm, task arithmetic', 'tfjs_wasm_speedup.task_arithmetic', speedup(tfjsWasm, ours).task_arithmetic, '>=', 50),
    check('x faster than tfjs-wasm, ties', 'tfjs_wasm_speedup.ties', speedup(tfjsWasm, ours).ties, '>=', 50),
    check('x faster than torch (mergekit math), ties', 'torch_speedup.ties', speedup(torch, ours).ties, '>=', 100),
    check('x faster than torch (mergekit math), task arithmetic', 'torch_speedup.task_arithmetic', speedup(torch, ours).task_arithmetic, '>=', 5),
  ];

  const report = {
    schema: 1,
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine: machineInfo,
    headline: { threads: headlineThreads, simd: kr.default_simd },
    copy_gbps: headline.copy_gbps,
    copy_gbps_by_config: Object.fromEntries(kr.configs.map((c) => [`t${c.threads}_${c.simd}`, c.copy_gbps])),
    kernel_setup: {
      elements_per_tensor: kr.n,
      select_elements: kr.select_n,
      copy_bytes: kr.copy_bytes,
      timing: `benchmark.js, fastest of >= ${preset.minSamples} samples`,
      bytes_counted: 'minimal: inputs read once + outputs written once (copy: read + written)',
    },
    kernels,
    tfjs_wasm_speedup: { ...speedup(tfjsWasm, ours), ours_threads: headlineThreads, vs_ours_1_thread: speedup(tfjsWasm, ours1), error: tfjsError },
    tfjs_cpu_speedup: { ...speedup(tfjsCpu, ours), note: 'footnote: the pure-JS cpu backend' },
    torch_speedup: torch ? speedup(torch, ours) : { task_arithmetic: null, ties: null, reason: 'python3 torch not available or the peer failed' },
    peers: { ours, ours_1_thread: ours1, tfjs_wasm: tfjsWasm, tfjs_cpu: tfjsCpu, torch },
    e2e: e2e ? { ...e2e } : { error: e2eError ?? 'not run' },
    targets,
    loadavg_at_end: os.loadavg(),
    wall_seconds: (Date.now() - started) / 1000,
  };
  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  fs.writeFileSync(options.out, JSON.stringify(report, null, 2) + '\n');
  log('');
  log(formatTables(report as unknown as ReportLike));
  log(`\nwrote ${path.relative(process.cwd(), options.out)} (${report.wall_seconds.toFixed(0)} s)`);
  return report;
}

/** The shape of latest.json that the tables read. */
export interface ReportLike {
  mode: string;
  machine: { cpu: string; cores: number; memory_gb: number };
  headline: { threads: number; simd: string };
  copy_gbps: number;
  copy_gbps_by_config: Record<string, number>;
  kernels: Record<string, { gbps: number; ratio_to_copy: number; by_config: Record<string, { ratio_to_copy: number }> }>;
  tfjs_wasm_speedup: { task_arithmetic: number | null; ties: number | null };
  tfjs_cpu_speedup: { task_arithmetic: number | null; ties: number | null };
  torch_speedup: { task_arithmetic: number | null; ties: number | null };
  e2e: Partial<E2eReport> & { error?: string };
  targets: Target[];
}

const fmt = (v: number | null | undefined, digits = 2) => (v == null ? '—' : v.toFixed(digits));

/** Markdown tables (they read fine in a terminal too). */
export function formatTables(r: ReportLike): string {
  const configs = Object.keys(r.copy_gbps_by_config);
  const lines: string[] = [];
  lines.push(`Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memory_gb.toFixed(0)} GiB. Headline: ${r.headline.threads} threads, ${r.headline.simd}; copy ${fmt(r.copy_gbps, 1)} GB/s.`);
  lines.push('');
  lines.push(`| kernel | GB/s | ${configs.map((c) => c.replace('_', ' ')).join(' | ')} |`);
  lines.push(`|---|---:|${configs.map(() => '---:').join('|')}|`);
  lines.push(`| copy (GB/s) | ${fmt(r.copy_gbps, 1)} | ${configs.map((c) => fmt(r.copy_gbps_by_config[c], 1)).join(' | ')} |`);
  for (const [name, f] of Object.entries(r.kernels)) {
    lines.push(`| ${name} | ${fmt(f.gbps, 1)} | ${configs.map((c) => fmt(f.by_config[c]?.ratio_to_copy)).join(' | ')} |`);
  }
  lines.push('');
  lines.push('(per-config columns: ratio to the copy of the same threads and SIMD path)');
  lines.push('');
  lines.push('| peer (ours at headline threads = 1.0) | task arithmetic | ties |');
  lines.push('|---|---:|---:|');
  lines.push(`| tfjs-wasm time / ours | ${fmt(r.tfjs_wasm_speedup.task_arithmetic, 1)} | ${fmt(r.tfjs_wasm_speedup.ties, 1)} |`);
  lines.push(`| PyTorch (mergekit math) time / ours | ${fmt(r.torch_speedup.task_arithmetic, 1)} | ${fmt(r.torch_speedup.ties, 1)} |`);
  lines.push(`| tfjs-cpu time / ours (footnote) | ${fmt(r.tfjs_cpu_speedup.task_arithmetic, 1)} | ${fmt(r.tfjs_cpu_speedup.ties, 1)} |`);
  lines.push('');
  if (r.e2e.ties && r.e2e.dppa) {
    lines.push(`| e2e (${(r.e2e.params! / 1e6).toFixed(0)}M params, ${fmt(r.e2e.input_gb)} GB in, -j ${r.e2e.threads}) | seconds | CPU s | read bound s | ratio | peak RSS MB |`);
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const m of ['ties', 'dppa'] as const) {
      const f = r.e2e[m]!;
      lines.push(`| ${m} | ${fmt(f.seconds)} | ${fmt(f.cpu_seconds)} | ${fmt(f.read_bound_seconds)} | ${fmt(f.ratio_to_read_bound)} | ${fmt(f.peak_rss_mb, 0)} |`);
    }
    lines.push('');
    if (r.e2e.pcb) {
      const f = r.e2e.pcb;
      lines.push(`| pcb (one merge; ${fmt(f.ratio_to_ties, 1)}× the TIES time) | ${fmt(f.seconds)} | ${fmt(f.cpu_seconds)} | ${fmt(f.read_bound_seconds)} | ${fmt(f.ratio_to_read_bound)} | ${fmt(f.peak_rss_mb, 0)} |`);
    }
    lines.push('');
    lines.push(
      `(seconds: fastest of ${r.e2e.ties.samples_seconds?.length ?? 1} merges; writing the ${fmt(r.e2e.output_gb)} GB output durably alone took ` +
        `${fmt(r.e2e.write_bound_seconds)} s in this run)`,
    );
  } else {
    lines.push(`e2e: ${r.e2e.error ?? 'not run'}`);
  }
  lines.push('');
  lines.push('| target | value | goal | status |');
  lines.push('|---|---:|---:|---|');
  for (const t of r.targets) lines.push(`| ${t.name} | ${fmt(t.value)} | ${t.target} | ${t.status}${t.note ? ` (${t.note})` : ''} |`);
  return lines.join('\n');
}

if (require.main === module) {
  runBench(parseOptions(process.argv.slice(2))).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
