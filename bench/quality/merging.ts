/**
 * The merging table: all tasks' fine-tunes of one regime merged into one backbone, each task
 * then evaluated with its own head. Every method's task-arithmetic scale λ is picked from a
 * small grid on the validation split (as the TIES paper does); DPPA's amplification factors
 * come from the DPA search, also on validation. Test accuracy is reported normalized by each
 * task's dense fine-tune.
 */
import { loadModelDir } from './checkpoint';
import { BenchContext, denseAccuracy, finetuneOf, geometricMean, scratchDir, taskAccuracy } from './context';
import { MERGE_METHODS, MergeMethod, mergeConfig, runMerge } from './mergestep';
import { REGIMES, Regime } from './settings';
import { SearchOutcome, searchFactors } from './search';
import { Weights } from './model';

export interface MergingRow {
  task: string;
  regime: Regime;
  method: MergeMethod;
  accuracy: number;
  normalized: number;
  lambda: number;
}

export interface MergingSearch extends SearchOutcome {
  scope: 'merging';
  regime: Regime;
  density: number;
  lambda: number;
}

export interface MergingResult {
  rows: MergingRow[];
  searches: MergingSearch[];
}

const DEFAULT_AMPLIFY = [1.8, 1.0];

function normalizedScores(ctx: BenchContext, backbone: Weights, regime: Regime, split: 'validation' | 'test'): number[] {
  return ctx.tasks.map((t) => taskAccuracy(ctx, backbone, t, regime, split) / denseAccuracy(ctx, t, regime, split));
}

export async function runMerging(ctx: BenchContext): Promise<MergingResult> {
  const rows: MergingRow[] = [];
  const searches: MergingSearch[] = [];
  const { mergeDensity: density, dareSeed: seed, lambdaGrid } = ctx.settings;
  for (const regime of REGIMES) {
    const fts = ctx.tasks.map((t) => finetuneOf(ctx, t.name, regime).dir);
    const configFor = (method: MergeMethod, lambda: number, amplify: number[]) =>
      mergeConfig(method, ctx.base.dir, fts, { density, lambda, amplify, seed });
    const validationScore = async (method: MergeMethod, lambda: number, amplify: number[]) => {
      const merged = await runMerge(configFor(method, lambda, amplify), scratchDir(ctx, `merge-${regime}-${method}-${lambda}`));
      return geometricMean(normalizedScores(ctx, merged, regime, 'validation'));
    };
    const bestLambda = async (method: MergeMethod, amplify: number[]) => {
      let best = { lambda: lambdaGrid[0], score: -Infinity };
      for (const lambda of lambdaGrid) {
        const score = await validationScore(method, lambda, amplify);
        if (score > best.score) best = { lambda, score };
      }
      ctx.log(`  ${regime} ${method}: λ = ${best.lambda} (validation score ${best.score.toFixed(4)})`);
      return best.lambda;
    };

    let amplify = DEFAULT_AMPLIFY;
    const chosen = new Map<MergeMethod, number>();
    for (const method of MERGE_METHODS) {
      if (method === 'dppa_sum') continue; // uses the factors found for dppa, below
      chosen.set(method, await bestLambda(method, DEFAULT_AMPLIFY));
    }
    {
      const lambda = chosen.get('dppa')!;
      ctx.log(`  DPA search: merging (${regime}) at density ${density}, λ = ${lambda}`);
      const outcome = await searchFactors(
        configFor('dppa', lambda, DEFAULT_AMPLIFY),
        async (dir) => geometricMean(normalizedScores(ctx, loadModelDir(dir), regime, 'validation')),
        scratchDir(ctx, `search-merge-${regime}`),
        ctx.log,
      );
      searches.push({ scope: 'merging', regime, density, lambda, ...outcome });
      amplify = outcome.factors;
    }
    chosen.set('dppa_sum', await bestLambda('dppa_sum', amplify));

    for (const method of MERGE_METHODS) {
      const lambda = chosen.get(method)!;
      const merged = await runMerge(configFor(method, lambda, amplify), scratchDir(ctx, `merge-${regime}-${method}-test`));
      const scores: string[] = [];
      for (const task of ctx.tasks) {
        const acc = taskAccuracy(ctx, merged, task, regime, 'test');
        const normalized = acc / denseAccuracy(ctx, task, regime, 'test');
        rows.push({ task: task.name, regime, method, accuracy: acc, normalized, lambda });
        scores.push(`${task.name} ${(acc * 100).toFixed(2)}`);
      }
      ctx.log(`  ${regime} ${method.padEnd(15)} ${scores.join('  ')}`);
    }
  }
  return { rows, searches };
}
