/**
 * `npm run bench:quality [-- --quick]`: does DPPA deliver on real data?
 *
 * Trains (or loads from bench/quality/cache/) a shared base and light/heavy fine-tunes per
 * task, then measures pruning (per method and density) and merging through the dppa library,
 * with DPA factors searched on validation splits, and writes RESULTS.md and results.json here.
 *
 * Flags: --quick (shorter heavy fine-tunes: < 20 min on 2 cores), --smoke (a tiny development
 * run whose outputs go to cache/smoke/ instead), --report-only (rewrite RESULTS.md from
 * results.json).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { analyze } from './analysis';
import { CheckpointCache } from './checkpoints';
import { BenchContext, denseAccuracy, ftKey } from './context';
import { accuracy } from './evaluate';
import { FASHION_INSTALL, loadTasks } from './datasets';
import { runMerging } from './merging';
import { PruningSearch, runPruning, searchPruningFactors } from './pruning';
import { writeReport } from './report';
import { REGIMES, Settings, makeSettings } from './settings';
import { initTf } from './tfmodel';

/** bench/quality in the source tree (this file runs from dist/bench/quality). */
export const SOURCE_DIR = path.resolve(__dirname, '..', '..', '..', 'bench', 'quality');

function smokeSettings(): Settings {
  const s = makeSettings(true);
  s.pretrain = { ...s.pretrain, epochs: 1, maxExamples: 500 };
  s.finetune.light = { ...s.finetune.light, maxExamples: 1000 };
  s.finetune.heavy = { ...s.finetune.heavy, epochs: 1, maxExamples: 2000 };
  s.densities = [0.5, 0.1];
  s.lambdaGrid = [0.5, 1.0];
  return s;
}

async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const smoke = args.has('--smoke');
  const quick = smoke || args.has('--quick');
  const started = Date.now();
  const log = (msg: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  const settings = smoke ? smokeSettings() : makeSettings(quick);
  const cacheRoot = path.join(SOURCE_DIR, 'cache');
  const outDir = smoke ? path.join(cacheRoot, 'smoke') : SOURCE_DIR;
  if (args.has('--report-only')) {
    // Regenerates RESULTS.md and the plot from an existing results.json (no training, no merging).
    const results = JSON.parse(fs.readFileSync(path.join(outDir, 'results.json'), 'utf8'));
    writeReport(path.join(outDir, 'RESULTS.md'), path.join(outDir, 'accuracy-vs-density.svg'), results);
    log(`wrote ${path.join(outDir, 'RESULTS.md')}`);
    return;
  }
  fs.mkdirSync(cacheRoot, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(cacheRoot, 'scratch-'));

  await initTf();
  log(`mode: ${smoke ? 'smoke' : quick ? 'quick' : 'full'}; loading data`);
  const { tasks, skipped } = loadTasks(settings.validationSize, settings.dataSeed);
  for (const why of skipped) log(`SKIPPED ${why}`);
  log(`tasks: ${tasks.map((t) => `${t.name} (${t.train.n} train / ${t.validation.n} validation / ${t.test.n} test)`).join(', ')}`);

  try {
    const cache = new CheckpointCache(cacheRoot, settings, log);
    const base = cache.base(tasks);
    const ctx: BenchContext = { settings, tasks, base, finetunes: new Map(), scratch, log };
    for (const regime of REGIMES) {
      for (const task of tasks) ctx.finetunes.set(ftKey(task.name, regime), cache.finetune(base, tasks, task, regime));
    }
    for (const regime of REGIMES) {
      for (const task of tasks) {
        const b = accuracy(settings.arch, base.backbone, base.heads.get(task.name)!, task.test);
        log(`${task.name}/${regime}: base ${(b * 100).toFixed(2)}%, dense fine-tune ${(denseAccuracy(ctx, task, regime, 'test') * 100).toFixed(2)}% (test)`);
      }
    }

    log('DPA factor search for pruning (validation split)');
    const pruningSearches: PruningSearch[] = [];
    for (const regime of REGIMES) {
      for (const task of tasks) {
        for (const density of settings.densities) pruningSearches.push(await searchPruningFactors(ctx, task.name, regime, density));
      }
    }
    const factorsFor = (task: string, regime: string, density: number) =>
      pruningSearches.find((s) => s.task === task && s.regime === regime && s.density === density)!.factors;

    log('pruning');
    const pruning = await runPruning(ctx, factorsFor);
    log('merging');
    const merging = await runMerging(ctx);
    log('analysis');
    const analysis = await analyze(ctx);

    const seconds = (Date.now() - started) / 1000;
    const heavySearch = merging.searches.find((s) => s.regime === 'heavy') ?? merging.searches[0];
    const searches = [...pruningSearches, ...merging.searches];
    const results = {
      meta: {
        mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
        seconds,
        date: new Date().toISOString(),
        cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
        node: process.version,
        tasks: tasks.map((t) => ({ name: t.name, train: t.train.n, validation: t.validation.n, test: t.test.n })),
        skipped: skipped.map((s) => s.replace(/; install.*/, '')),
        install: skipped.length ? FASHION_INSTALL : undefined,
        settings,
        checkpoints: cache.counts,
      },
      pruning,
      merging: merging.rows,
      dpa_search: {
        split: 'validation',
        // The headline factors: the heavy-regime merge, where the paper's claim is about.
        factors: heavySearch?.factors ?? [],
        evaluations: searches.reduce((n, s) => n + s.evaluations, 0),
        searches,
      },
      analysis,
    };
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
    writeReport(path.join(outDir, 'RESULTS.md'), path.join(outDir, 'accuracy-vs-density.svg'), results);
    log(`done in ${(seconds / 60).toFixed(1)} min; wrote ${path.relative(process.cwd(), outDir) || '.'}/RESULTS.md and results.json`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exitCode = 1;
});
