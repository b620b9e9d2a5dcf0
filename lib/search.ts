/**
 * The DPA factor search (algorithms.md §3): greedy coordinate ascent over the amplification
 * factors α in steps of 0.1, scored by an evaluator the user supplies (an async function from
 * a merged model folder to a number, higher is better).
 *
 * Start from α = [1.8, 0, …]. When α_k's turn comes it starts at 1.0 if it is 0; it is raised
 * by 0.1 while the score improves, and stepped back once when it does not. Every evaluated
 * point is reported. Candidates share one plan: the statistics pass runs once, and each
 * tensor's magnitude selections are made once and reused, since neither depends on α — a
 * candidate costs one fused merge pass.
 *
 * Tune on a validation split: the DPPA authors' code tuned on the test split, which
 * inflates the results.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseDocument, stringify } from 'yaml';
import type { BandRules } from './binding';
import { DppaError } from './errors';
import { native } from './native';
import { planMerge } from './plan/plan';
import { checkAborted } from './run/progress';
import { runMerge } from './run/merge';
import type { DpOffsets } from './methods/dp-densities';

export interface SearchStep {
  index: number;
  factors: number[];
  score: number;
  best: boolean;
  seconds: number;
}

export interface SearchOptions {
  /** A dppa config: a YAML path or an object. Its `parameters.amplify` is what is searched. */
  config: string | object;
  /** Scores a merged model folder; higher is better. */
  evaluate: (modelDir: string) => Promise<number> | number;
  signal?: AbortSignal;
  onStep?: (step: SearchStep) => void;
  /** Where candidates are built (default: a temporary folder); each is removed once scored. */
  workDir?: string;
  /** Keep the best candidate model here. */
  keepBest?: string;
  /** Write the best config (YAML) here. */
  bestConfigPath?: string;
  /** Stop a coordinate at this factor (default 4). */
  maxFactor?: number;
  /** At most this many evaluations (default 60). */
  maxEvaluations?: number;
  threads?: number;
  /** Folder relative model paths of an object config are resolved against (default: cwd). */
  baseDir?: string;
}

export interface SearchResult {
  factors: number[];
  score: number;
  evaluations: SearchStep[];
  /** The input config with the best factors, as YAML. */
  bestConfig: string;
}

const STEP = 0.1;
const round = (x: number) => Math.round(x * 10) / 10;

export async function searchAmplification(options: SearchOptions): Promise<SearchResult> {
  if (options.threads !== undefined) native().setThreads(options.threads);
  const plan = await planMerge(options.config, { native: native(), baseDir: options.baseDir });
  if (plan.config.mergeMethod !== 'dppa') {
    await plan.close();
    throw new DppaError('E_CONFIG', `the factor search tunes dppa's amplify factors; this config's merge_method is ${plan.config.mergeMethod}`);
  }
  const perModel = plan.config.models.filter((m) => m.parameters.amplify !== undefined).map((m) => m.name);
  if (perModel.length > 0) {
    await plan.close();
    throw new DppaError('E_CONFIG', `the factor search sets the global amplify factors; remove amplify from model(s) ${perModel.join(', ')}`);
  }
  const partitions = plan.params(0, null).list('partitions');
  const workDir = options.workDir ?? fs.mkdtempSync(path.join(options.keepBest ? path.dirname(path.resolve(options.keepBest)) : process.cwd(), '.dppa-search-'));
  fs.mkdirSync(workDir, { recursive: true });
  const reuse = { dpOffsets: undefined as (DpOffsets | undefined)[] | undefined, selections: new Map<string, BandRules>() };
  const evaluations: SearchStep[] = [];
  const scores = new Map<string, number>();
  const maxFactor = options.maxFactor ?? 4;
  const maxEvaluations = options.maxEvaluations ?? 60;
  let bestScore = -Infinity;
  let bestFactors: number[] = [];
  let bestDir: string | undefined;

  const score = async (factors: number[]): Promise<number> => {
    const key = factors.join(',');
    const known = scores.get(key);
    if (known !== undefined) return known;
    if (evaluations.length >= maxEvaluations) return -Infinity;
    checkAborted(options.signal);
    const started = Date.now();
    plan.config.parameters.amplify = factors;
    const dir = path.join(workDir, `candidate-${evaluations.length}`);
    await runMerge(plan, dir, { signal: options.signal, reuse, overwrite: true });
    const value = Number(await options.evaluate(dir));
    if (!Number.isFinite(value)) throw new DppaError('E_ARGUMENT', `the evaluator returned ${value} for ${dir}; it must return a finite number`);
    scores.set(key, value);
    const improved = value > bestScore;
    if (improved) {
      if (bestDir) fs.rmSync(bestDir, { recursive: true, force: true });
      bestScore = value;
      bestFactors = [...factors];
      bestDir = dir;
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const step = { index: evaluations.length, factors: [...factors], score: value, best: improved, seconds: (Date.now() - started) / 1000 };
    evaluations.push(step);
    options.onStep?.(step);
    return value;
  };

  try {
    const factors: number[] = partitions.map((_, k) => (k === 0 ? 1.8 : 0));
    let current = await score(factors);
    for (let k = 0; k < factors.length; k++) {
      if (factors[k] === 0) {
        factors[k] = 1.0;
        current = await score(factors);
      }
      while (factors[k] + STEP <= maxFactor + 1e-9 && evaluations.length < maxEvaluations) {
        const trial = [...factors];
        trial[k] = round(trial[k] + STEP);
        const s = await score(trial);
        if (s <= current) break; // no improvement: stay one step back
        factors[k] = trial[k];
        current = s;
      }
    }
    plan.config.parameters.amplify = bestFactors;
    const raw = typeof options.config === 'string' ? fs.readFileSync(options.config, 'utf8') : stringify(options.config);
    const bestConfig = withAmplify(raw, bestFactors);
    if (options.bestConfigPath) fs.writeFileSync(options.bestConfigPath, bestConfig);
    if (options.keepBest && bestDir) {
      fs.rmSync(options.keepBest, { recursive: true, force: true });
      fs.renameSync(bestDir, options.keepBest);
      bestDir = undefined;
    }
    return { factors: bestFactors, score: bestScore, evaluations, bestConfig };
  } finally {
    await plan.close();
    if (!options.workDir) fs.rmSync(workDir, { recursive: true, force: true });
    else if (bestDir) fs.rmSync(bestDir, { recursive: true, force: true });
  }
}

/** The config text with `parameters.amplify` set, comments and layout kept. */
function withAmplify(yamlText: string, factors: number[]): string {
  const doc = parseDocument(yamlText);
  doc.setIn(['parameters', 'amplify'], doc.createNode(factors, { flow: true }));
  return doc.toString();
}
