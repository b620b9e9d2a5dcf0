/**
 * `dppa merge | plan | inspect | search`. Errors print one clear message without a stack
 * trace and exit non-zero; progress is a bar on a TTY (stderr), silent otherwise.
 */
import { DppaError, isDppaError } from './errors';
import { formatByteSize } from './io/byte-size';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Device, inspect, merge, plan, searchAmplification } from './index';
import type { ProgressEvent } from './run/progress';

const USAGE = `usage:
  dppa merge CONFIG OUT [--out-shard-size S] [--threads N | -j N] [--seed N] [--overwrite] [--allow-nonfinite] [--max-memory M] [--device cpu|cuda|auto] [--quiet]
  dppa plan CONFIG [--json] [--no-statistics] [--threads N]
  dppa inspect PATH [--json] [--tensors]
  dppa search CONFIG --evaluator FILE [--best-config OUT.yml] [--keep-best DIR] [--work-dir DIR] [--threads N]

CONFIG is a mergekit-style YAML file. OUT is the folder to create.
  --out-shard-size S   largest output shard: bytes, or K/M/G/T (powers of 1000), default 5G
  --threads, -j N      compute threads (default: all cores)
  --seed N             seed of DARE/DELLA's random draws (also --random-seed)
  --overwrite          replace OUT, once the new model is complete
  --allow-nonfinite    merge tensors holding NaN/Inf instead of failing
  --max-memory M       memory budget (e.g. 4G); default 60% of available memory
  --device D           cpu (default), cuda, or auto (the GPU when there is one)
  --evaluator FILE     (search) an ES module or CommonJS file whose default export is an async
                       function from a merged model folder to a score (higher is better)`;

interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--out-shard-size', '--threads', '-j', '--seed', '--random-seed', '--evaluator', '--best-config', '--keep-best', '--work-dir', '--max-memory', '--device']);
const BOOLEAN_FLAGS = new Set(['--overwrite', '--allow-nonfinite', '--quiet', '--json', '--no-statistics', '--tensors', '--help', '-h']);

export function parseArgs(argv: string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (VALUE_FLAGS.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new DppaError('E_ARGUMENT', `${name} needs a value`);
      flags.set(name, value);
    } else if (BOOLEAN_FLAGS.has(name)) {
      flags.set(name, true);
    } else {
      throw new DppaError('E_ARGUMENT', `unknown option ${name}\n${USAGE}`);
    }
  }
  return { positional, flags };
}

function deviceFlag(args: ParsedArgs): Device | undefined {
  const value = args.flags.get('--device');
  if (value === undefined) return undefined;
  if (value !== 'cpu' && value !== 'cuda' && value !== 'auto') {
    throw new DppaError('E_ARGUMENT', `--device must be cpu, cuda or auto, got "${value}"`);
  }
  return value;
}

function integerFlag(args: ParsedArgs, ...names: string[]): number | undefined {
  for (const name of names) {
    const value = args.flags.get(name);
    if (value === undefined) continue;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new DppaError('E_ARGUMENT', `${name} must be a non-negative integer, got "${value}"`);
    return n;
  }
  return undefined;
}

/** A one-line bar redrawn in place on a TTY. */
function progressBar(stream: NodeJS.WriteStream): (event: ProgressEvent) => void {
  let last = 0;
  return (event) => {
    const now = Date.now();
    if (now - last < 100 && event.done < event.total) return;
    last = now;
    const width = 30;
    const fraction = event.total === 0 ? 1 : event.done / event.total;
    const filled = Math.round(fraction * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const line = `${event.phase.padEnd(10)} [${bar}] ${event.done}/${event.total} ${event.elapsedSeconds.toFixed(1)}s ${event.tensor ?? ''}`;
    stream.write(`\r${line.slice(0, (stream.columns || 100) - 1).padEnd((stream.columns || 100) - 1)}`);
    if (event.phase === 'finish' && event.done === event.total) stream.write('\n');
  };
}

function need(args: ParsedArgs, count: number, what: string): void {
  if (args.positional.length - 1 < count) throw new DppaError('E_ARGUMENT', `${what}\n${USAGE}`);
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const command = args.positional[0];
  if (!command || args.flags.has('--help') || args.flags.has('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return command || args.flags.size > 0 ? 0 : 1;
  }
  const threads = integerFlag(args, '--threads', '-j');
  switch (command) {
    case 'merge': {
      need(args, 2, 'dppa merge needs CONFIG and OUT');
      const [, config, out] = args.positional;
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const quiet = args.flags.has('--quiet') || !process.stderr.isTTY;
      try {
        const summary = await merge(config, out, {
          threads,
          seed: integerFlag(args, '--seed', '--random-seed'),
          overwrite: args.flags.has('--overwrite'),
          allowNonfinite: args.flags.has('--allow-nonfinite'),
          shardSize: args.flags.get('--out-shard-size') as string | undefined,
          maxMemory: args.flags.get('--max-memory') as string | undefined,
          device: deviceFlag(args),
          signal: controller.signal,
          onProgress: quiet ? undefined : progressBar(process.stderr),
        });
        for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(
          `merged ${summary.tensors} tensors into ${summary.outDir}: read ${formatByteSize(summary.bytesRead)}, ` +
            `wrote ${formatByteSize(summary.bytesWritten)} in ${summary.seconds.toFixed(2)} s\n`,
        );
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
      return 0;
    }
    case 'plan': {
      need(args, 1, 'dppa plan needs CONFIG');
      const report = await plan(args.positional[1], { threads, statistics: !args.flags.has('--no-statistics') });
      if (args.flags.has('--json')) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 0;
      }
      const lines = [
        `method:        ${report.method} (${report.summary})`,
        `base:          ${report.base}`,
        `models:        ${report.models.join(', ')}`,
        `tensors:       ${report.tensors} in ${report.layers} layers`,
        `bytes to read: ${formatByteSize(report.bytesToRead)}${Object.values(report.statistics).some((s) => s) ? ' (+ the prunable part again for the statistics pass)' : ''}`,
        `bytes written: ${formatByteSize(report.bytesToWrite)}`,
        `memory:        ${formatByteSize(report.memoryEstimate)} of tensor and work buffers at most`,
      ];
      for (const [model, perTensor] of Object.entries(report.densities ?? {})) {
        lines.push('', `DP densities of ${model} (per partition):`);
        for (const [tensor, densities] of Object.entries(perTensor)) {
          lines.push(`  ${tensor.padEnd(48)} ${densities.map((d) => d.toFixed(4)).join('  ')}`);
        }
      }
      for (const w of report.warnings) lines.push(`warning: ${w}`);
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    }
    case 'inspect': {
      need(args, 1, 'dppa inspect needs PATH');
      const report = await inspect(args.positional[1]);
      if (args.flags.has('--json')) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 0;
      }
      const lines = [
        `path:       ${report.path} (${report.layout}, ${report.files.length} file(s))`,
        `parameters: ${report.parameters.toLocaleString('en-US')} (${formatByteSize(report.bytes)})`,
        `dtypes:     ${Object.entries(report.dtypes).map(([d, n]) => `${d} ${n.toLocaleString('en-US')}`).join(', ')}`,
        `layers:     ${report.layers}, ${report.prunableTensors} prunable linear weights`,
        `tensors:    ${report.tensors.length}`,
      ];
      if (args.flags.has('--tensors')) {
        for (const t of report.tensors) lines.push(`  ${t.name.padEnd(52)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    }
    case 'search': {
      need(args, 1, 'dppa search needs CONFIG');
      const evaluatorPath = args.flags.get('--evaluator');
      if (typeof evaluatorPath !== 'string') throw new DppaError('E_ARGUMENT', `dppa search needs --evaluator FILE\n${USAGE}`);
      const evaluate = await loadEvaluator(evaluatorPath);
      const config = args.positional[1];
      const bestConfigPath = (args.flags.get('--best-config') as string | undefined) ?? config.replace(/(\.ya?ml)?$/, '.best.yml');
      const result = await searchAmplification({
        config,
        evaluate,
        threads,
        bestConfigPath,
        keepBest: args.flags.get('--keep-best') as string | undefined,
        workDir: args.flags.get('--work-dir') as string | undefined,
        onStep: (step) =>
          process.stdout.write(`#${step.index} amplify [${step.factors.map((f) => f.toFixed(1)).join(', ')}] score ${step.score.toFixed(6)}${step.best ? '  (best so far)' : ''}  ${step.seconds.toFixed(1)} s\n`),
      });
      process.stdout.write(`best amplify [${result.factors.join(', ')}] with score ${result.score} after ${result.evaluations.length} evaluations; config written to ${bestConfigPath}\n`);
      return 0;
    }
    default:
      throw new DppaError('E_ARGUMENT', `unknown command "${command}"\n${USAGE}`);
  }
}

async function loadEvaluator(file: string): Promise<(dir: string) => Promise<number>> {
  let loaded: Record<string, unknown>;
  try {
    loaded = await import(pathToFileURL(path.resolve(file)).href);
  } catch (e) {
    throw new DppaError('E_ARGUMENT', `cannot load the evaluator ${file}: ${(e as Error).message}`);
  }
  const candidate = loaded.default ?? loaded.evaluate;
  const fn = typeof candidate === 'function' ? candidate : (candidate as Record<string, unknown> | undefined)?.default;
  if (typeof fn !== 'function') {
    throw new DppaError('E_ARGUMENT', `the evaluator ${file} must export a default async function (modelDir) => score`);
  }
  return fn as (dir: string) => Promise<number>;
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (isDppaError(e)) {
        process.stderr.write(`dppa: ${e.message}\n`);
      } else {
        process.stderr.write(`dppa: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      }
      process.exitCode = 1;
    },
  );
}
