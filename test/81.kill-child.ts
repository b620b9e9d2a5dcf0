/**
 * The process the kill test (81) kills: one merge through the public API, printing a line
 * each time a phase starts ("phase statistics", "phase merge", "phase finish") and "done" at
 * the end, so the parent can aim its SIGKILL at a phase.
 *
 *   node dist/test/81.kill-child.js CONFIG OUT [--overwrite] [-j N]
 */
import { merge } from '../lib/index';

async function main(): Promise<void> {
  const [config, out, ...flags] = process.argv.slice(2);
  const j = flags.indexOf('-j');
  let phase = '';
  await merge(config, out, {
    overwrite: flags.includes('--overwrite'),
    threads: j >= 0 ? Number(flags[j + 1]) : undefined,
    shardSize: 2_000_000,
    onProgress: (e) => {
      if (e.phase !== phase) {
        phase = e.phase;
        process.stdout.write(`phase ${phase}\n`);
      }
    },
  });
  process.stdout.write('done\n');
}

main().catch((e) => {
  process.stderr.write(`${e?.code ?? 'ERROR'}: ${e?.message ?? e}\n`);
  process.exitCode = 1;
});
