/**
 * The pruning table: each fine-tune's δ sparsified alone (base + pruned δ), per method and
 * density, scored on the official test set with the task's own head. `retained` is the
 * accuracy relative to the dense fine-tune.
 */
import { loadModelDir } from './checkpoint';
import { accuracy } from './evaluate';
import { BenchContext, denseAccuracy, finetuneOf, scratchDir, taskAccuracy } from './context';
import { PRUNE_METHODS, PruneMethod, pruneConfig, runMerge } from './mergestep';
import { REGIMES, Regime } from './settings';
import { SearchOutcome, searchFactors } from './search';

export interface PruningRow {
  task: string;
  regime: Regime;
  method: PruneMethod | 'dense' | 'base';
  density: number;
  accuracy: number;
  retained: number;
}

export interface PruningSearch extends SearchOutcome {
  scope: 'pruning';
  task: string;
  regime: Regime;
  density: number;
}

/**
 * DPA factors for one fine-tune at one density, searched on its validation split. Each density
 * gets its own search: factors that suit partitions [0.1, 0.2] over-amplify [0.25, 0.5].
 */
export async function searchPruningFactors(ctx: BenchContext, taskName: string, regime: Regime, density: number): Promise<PruningSearch> {
  const task = ctx.tasks.find((t) => t.name === taskName)!;
  const config = pruneConfig('dppa', density, ctx.base.dir, finetuneOf(ctx, taskName, regime).dir, [1.8, 1.0], ctx.settings.dareSeed);
  const dense = denseAccuracy(ctx, task, regime, 'validation');
  ctx.log(`  DPA search: pruning ${taskName} (${regime}) at density ${density}`);
  const outcome = await searchFactors(
    config,
    async (dir) => taskAccuracy(ctx, loadModelDir(dir), task, regime, 'validation') / dense,
    scratchDir(ctx, `search-${taskName}-${regime}-${density}`),
    ctx.log,
  );
  return { scope: 'pruning', task: taskName, regime, density, ...outcome };
}

export async function runPruning(
  ctx: BenchContext,
  factorsFor: (task: string, regime: Regime, density: number) => number[],
): Promise<PruningRow[]> {
  const rows: PruningRow[] = [];
  for (const regime of REGIMES) {
    for (const task of ctx.tasks) {
      const ft = finetuneOf(ctx, task.name, regime);
      const dense = denseAccuracy(ctx, task, regime, 'test');
      rows.push({ task: task.name, regime, method: 'dense', density: 1, accuracy: dense, retained: 1 });
      // The base with its own (pre-trained) head: what the task scored before any fine-tuning.
      const baseAcc = accuracy(ctx.settings.arch, ctx.base.backbone, ctx.base.heads.get(task.name)!, task.test);
      rows.push({ task: task.name, regime, method: 'base', density: 0, accuracy: baseAcc, retained: baseAcc / dense });
      for (const method of PRUNE_METHODS) {
        const line: string[] = [];
        for (const density of ctx.settings.densities) {
          const config = pruneConfig(method, density, ctx.base.dir, ft.dir, factorsFor(task.name, regime, density), ctx.settings.dareSeed);
          const pruned = await runMerge(config, scratchDir(ctx, `prune-${task.name}-${regime}-${method}-${density}`));
          const acc = taskAccuracy(ctx, pruned, task, regime, 'test');
          rows.push({ task: task.name, regime, method, density, accuracy: acc, retained: acc / dense });
          line.push(`${density}: ${(acc * 100).toFixed(2)}`);
        }
        ctx.log(`  ${task.name}/${regime} ${method.padEnd(9)} ${line.join('  ')}  (dense ${(dense * 100).toFixed(2)})`);
      }
    }
  }
  return rows;
}
