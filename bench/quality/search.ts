/**
 * The DPA factor search, through the library's `searchAmplification` (greedy coordinate
 * ascent in steps of 0.1, algorithms.md §3). The evaluator scores each candidate merged
 * model on the validation split only; the test split is never seen by the search.
 */
import { searchAmplification } from '../../lib/index';

export interface SearchOutcome {
  factors: number[];
  /** Number of candidates merged and scored. */
  evaluations: number;
  score: number;
  /** Each candidate tried, in order. */
  steps: { factors: number[]; score: number }[];
}

export async function searchFactors(
  config: object,
  evaluate: (mergedDir: string) => Promise<number>,
  workDir: string,
  log: (m: string) => void,
): Promise<SearchOutcome> {
  const result = await searchAmplification({
    config,
    evaluate,
    workDir,
    threads: 1,
    onStep: (step) => log(`    α = [${step.factors.map((f) => f.toFixed(1)).join(', ')}] → ${step.score.toFixed(4)}${step.best ? ' (best)' : ''}`),
  });
  return {
    factors: result.factors,
    evaluations: result.evaluations.length,
    score: result.score,
    steps: result.evaluations.map((s) => ({ factors: s.factors, score: s.score })),
  };
}
