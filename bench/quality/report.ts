/**
 * RESULTS.md from results.json's content: setup, the pruning and merging tables, the plot,
 * the DPA search, and an analysis whose verdict sentences are computed from the numbers
 * (so they stay true when the numbers change).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Analysis } from './analysis';
import type { MergingRow, MergingSearch } from './merging';
import type { PruningRow, PruningSearch } from './pruning';
import type { Regime, Settings } from './settings';
import { lineChart } from './svg';

export interface BenchResults {
  meta: {
    mode: string;
    seconds: number;
    date: string;
    cpus: string;
    node: string;
    tasks: { name: string; train: number; validation: number; test: number }[];
    skipped: string[];
    install?: string;
    settings: Settings;
    checkpoints?: { trained: number; cached: number };
  };
  pruning: PruningRow[];
  merging: MergingRow[];
  dpa_search: { split: string; factors: number[]; evaluations: number; searches: (PruningSearch | MergingSearch)[] };
  analysis: Analysis;
}

const pct = (x: number) => (x * 100).toFixed(2);
const versus = (a: number, b: number, name: string) => `${a >= b ? 'beats' : 'trails'} ${name} by ${pct(Math.abs(a - b))} points`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
const PRUNE_METHODS = ['magnitude', 'dare', 'owl_layer', 'dp', 'dppa'];
const MERGE_METHODS = ['task_arithmetic', 'ties', 'dare_ties', 'dppa', 'dppa_sum'];
const MERGE_LABEL: Record<string, string> = { dppa: 'dppa (task arithmetic)', dppa_sum: 'dppa (consensus: sum)' };

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function meanRetained(r: BenchResults, regime: string, method: string, density: number): number {
  return mean(r.pruning.filter((p) => p.regime === regime && p.method === method && p.density === density).map((p) => p.retained));
}

function regimesOf(r: BenchResults): Regime[] {
  return [...new Set(r.pruning.map((p) => p.regime))];
}

function setupSection(r: BenchResults): string {
  const s = r.meta.settings;
  const a = s.arch;
  const spec = (t: Settings['pretrain']) =>
    `${t.epochs} epoch(s) over ${t.maxExamples ? `${t.maxExamples} examples per task` : 'the full training split'}, ${t.optimizer === 'adam' ? 'Adam' : 'SGD with momentum 0.9'} lr ${t.lr} (cosine decay), batch ${t.batch}`;
  return [
    `Mode **${r.meta.mode}**, ${(r.meta.seconds / 60).toFixed(1)} min (${r.meta.checkpoints ? `${r.meta.checkpoints.trained} checkpoints trained, ${r.meta.checkpoints.cached} loaded from the cache` : 'checkpoints: unknown'}) on ${r.meta.cpus} (Node ${r.meta.node}), ${r.meta.date}.`,
    '',
    `- **Tasks**: ${r.meta.tasks.map((t) => `${t.name} (${t.train} train / ${t.validation} validation held out of the training set / ${t.test} official test)`).join('; ')}.` +
      (r.meta.skipped.length ? ` Skipped: ${r.meta.skipped.join('; ')} (install: \`${r.meta.install}\`).` : ''),
    `- **Model**: residual MLP, input projection 784→${a.hidden}, ${a.layers} layers of \`up_proj\` ${a.hidden}→${a.ffn} / ReLU / \`down_proj\` ${a.ffn}→${a.hidden} with parameter-free RMS norm, one head per task (never merged). Tensor names follow Llama (\`model.layers.N.mlp.up_proj.weight\`), so DP sees ${a.layers} layers × 2 modules.`,
    `- **Base**: multi-task pre-training on the mix of all tasks, ${spec(s.pretrain)}.`,
    `- **Fine-tunes** (input projection frozen, so every method prunes the same tensors): light = ${spec(s.finetune.light)}; heavy = ${spec(s.finetune.heavy)}.`,
    `- **Pruning** = base + sparsified δ of one fine-tune (λ = 1), through \`merge\` of this library. \`dare\` = dare_linear (random drop, rescale 1/d, seed ${s.dareSeed}); \`dp\` = DP alone (density d, no amplification); \`dppa\` = DP + DPA with partitions [d/2, d] and the factors α searched per task, regime and density on the validation split.`,
    `- **Merging** at density ${s.mergeDensity} for every sparsified method; each method's λ picked from {${s.lambdaGrid.join(', ')}} on validation (score: geometric mean of accuracies normalized by the dense fine-tunes); DPPA's α searched on validation at its λ, then reused for \`consensus: sum\`.`,
  ].join('\n');
}

function denseSection(r: BenchResults): string {
  const rows: string[][] = [];
  for (const regime of regimesOf(r)) {
    for (const t of r.meta.tasks) {
      const get = (m: string) => r.pruning.find((p) => p.task === t.name && p.regime === regime && p.method === m)!;
      const tensors = r.analysis.tensors.filter((x) => x.task === t.name && x.regime === regime && x.tensor.includes('layers'));
      rows.push([t.name, regime, pct(get('base').accuracy), pct(get('dense').accuracy), mean(tensors.map((x) => x.meanAbsDelta)).toExponential(2), mean(tensors.map((x) => x.relativeNorm)).toFixed(3)]);
    }
  }
  return table(['task', 'regime', 'base acc %', 'dense fine-tune acc %', 'mean abs δ (layers)', '‖δ‖/‖θ₀‖ (layers, mean)'], rows);
}

function pruningSection(r: BenchResults): string {
  const densities = r.meta.settings.densities;
  const parts: string[] = [];
  for (const regime of regimesOf(r)) {
    const rows: string[][] = [];
    for (const t of r.meta.tasks) {
      for (const m of PRUNE_METHODS) {
        const cells = densities.map((d) => {
          const p = r.pruning.find((x) => x.task === t.name && x.regime === regime && x.method === m && x.density === d);
          return p ? `${pct(p.accuracy)} (${pct(p.retained)})` : '–';
        });
        rows.push([t.name, m, ...cells]);
      }
    }
    for (const m of PRUNE_METHODS) rows.push(['**mean retained**', m, ...densities.map((d) => `**${pct(meanRetained(r, regime, m, d))}**`)]);
    parts.push(`### ${regime} fine-tunes\n\nTest accuracy % (retained % of the dense fine-tune):\n\n${table(['task', 'method', ...densities.map((d) => `d = ${d}`)], rows)}`);
  }
  return parts.join('\n\n');
}

function mergingSection(r: BenchResults): string {
  const parts: string[] = [];
  for (const regime of [...new Set(r.merging.map((m) => m.regime))]) {
    const rows = MERGE_METHODS.map((m) => {
      const rs = r.merging.filter((x) => x.regime === regime && x.method === m);
      return [MERGE_LABEL[m] ?? m, ...r.meta.tasks.map((t) => pct(rs.find((x) => x.task === t.name)!.accuracy)), `**${pct(mean(rs.map((x) => x.normalized)))}**`, String(rs[0]?.lambda)];
    });
    const dense = r.meta.tasks.map((t) => pct(r.pruning.find((p) => p.task === t.name && p.regime === regime && p.method === 'dense')!.accuracy));
    const base = r.meta.tasks.map((t) => r.pruning.find((p) => p.task === t.name && p.regime === regime && p.method === 'base')!);
    rows.unshift(['base (no merge)', ...base.map((b) => pct(b.accuracy)), pct(mean(base.map((b) => b.retained))), '–']);
    rows.unshift(['dense fine-tunes (one per task)', ...dense, '100.00', '–']);
    parts.push(`### ${regime} fine-tunes merged\n\nTest accuracy %; "avg normalized" = mean over tasks of accuracy / dense fine-tune accuracy:\n\n${table(['method', ...r.meta.tasks.map((t) => t.name), 'avg normalized %', 'λ'], rows)}`);
  }
  return parts.join('\n\n');
}

function searchSection(r: BenchResults): string {
  const rows = r.dpa_search.searches.map((s) => [
    s.scope, 'task' in s ? s.task : 'all tasks', s.regime, String(s.density),
    `[${s.factors.map((f) => f.toFixed(1)).join(', ')}]`, s.score.toFixed(4), String(s.evaluations),
  ]);
  return [
    `Greedy coordinate ascent (library \`searchAmplification\`, steps of 0.1 from α = [1.8, 0]) on the **${r.dpa_search.split}** split; ${r.dpa_search.evaluations} candidate models merged and scored in all. Score: accuracy / dense accuracy (pruning), or its geometric mean over tasks (merging).`,
    '',
    table(['scope', 'task', 'regime', 'density', 'α found', 'validation score', 'evaluations'], rows),
  ].join('\n');
}

function analysisSection(r: BenchResults): string {
  const out: string[] = [];
  const d = r.meta.settings.mergeDensity;
  const dMin = Math.min(...r.meta.settings.densities);
  out.push(table(
    ['regime', '‖δ‖/‖θ₀‖ (backbone)', 'mean abs δ', ...r.meta.settings.densities.map((x) => `DARE noise / ‖θ₀‖ at d = ${x}`)],
    r.analysis.regimes.map((g) => [g.regime, g.relativeNorm.toFixed(3), g.meanAbsDelta.toExponential(2), ...r.meta.settings.densities.map((x) => g.dareNoise[String(x)].toFixed(3))]),
  ));
  out.push('');
  out.push(`DARE's rescaled random drop adds zero-mean noise of norm √((1−d)/d)·‖δ‖; the last columns give it relative to the base weights. When it approaches the size of the weights themselves the pruned model breaks, however unbiased the noise is.`);
  out.push('');
  // DP's per-layer / per-module densities at the merge density, for the heavy regime's tasks.
  for (const regime of regimesOf(r)) {
    const rows: string[][] = [];
    for (const t of r.meta.tasks) {
      const ts = r.analysis.tensors.filter((x) => x.task === t.name && x.regime === regime && x.dpDensity !== undefined);
      rows.push([t.name, ...ts.map((x) => `${x.dpDensity!.toFixed(3)}`)]);
    }
    const names = r.analysis.tensors.filter((x) => x.task === r.meta.tasks[0].name && x.regime === regime && x.dpDensity !== undefined).map((x) => x.tensor.replace('model.layers.', 'L').replace('.mlp.', '.').replace('_proj.weight', ''));
    // Masks are nested: at density d' every module's density is shifted by d' − d (then clamped at 0).
    const all = r.analysis.tensors.filter((x) => x.regime === regime && x.dpDensity !== undefined);
    const emptied = all.filter((x) => x.dpDensity! + (dMin - d) <= 0).length;
    const thin = all.filter((x) => x.dpDensity! + (dMin - d) < dMin / 2).length;
    out.push(`DP densities at d = ${d}, ${regime} fine-tunes (layer offset + module offset, λ = 0.08). At d = ${dMin} every entry is ${+(d - dMin).toFixed(3)} lower: ${emptied} of ${all.length} modules (over all tasks) lose their whole δ and ${thin} keep less than ${dMin / 2}.\n\n${table(['task', ...names], rows)}\n`);
  }
  // Verdicts.
  const verdicts: string[] = [];
  for (const regime of regimesOf(r)) {
    for (const dd of [d, dMin]) {
      const dppa = meanRetained(r, regime, 'dppa', dd), dare = meanRetained(r, regime, 'dare', dd), mag = meanRetained(r, regime, 'magnitude', dd), dp = meanRetained(r, regime, 'dp', dd);
      verdicts.push(`- ${regime}, d = ${dd}: dppa retains ${pct(dppa)}%, dare ${pct(dare)}%, magnitude ${pct(mag)}%, dp ${pct(dp)}% → dppa ${versus(dppa, dare, 'DARE')}, ${versus(dppa, mag, 'magnitude')}; amplification ${dppa >= dp ? 'adds' : 'costs'} ${pct(Math.abs(dppa - dp))} points over DP alone.`);
    }
    // The paper's headline: DPPA at 20% vs the best method at 50% (its "up to 90%" comparisons).
    const dppa20 = meanRetained(r, regime, 'dppa', d);
    const best50 = Math.max(...PRUNE_METHODS.map((m) => meanRetained(r, regime, m, Math.max(...r.meta.settings.densities))));
    verdicts.push(`- ${regime}: dppa at d = ${d} (${pct(dppa20)}%) vs the best method at d = ${Math.max(...r.meta.settings.densities)} (${pct(best50)}%): ${dppa20 >= best50 - 0.005 ? 'matches it (within 0.5 points) — the paper\'s claim holds here' : `falls short by ${pct(best50 - dppa20)} points`}.`);
  }
  for (const regime of [...new Set(r.merging.map((m) => m.regime))]) {
    const avg = (m: string) => mean(r.merging.filter((x) => x.regime === regime && x.method === m).map((x) => x.normalized));
    const ranked = MERGE_METHODS.map((m) => [m, avg(m)] as const).sort((a, b) => b[1] - a[1]);
    const base = mean(r.pruning.filter((p) => p.regime === regime && p.method === 'base').map((p) => p.retained));
    verdicts.push(`- merging ${regime}: ranking by avg normalized accuracy ${ranked.map(([m, v]) => `${m} ${pct(v)}%`).join(' > ')}; the best merge ${ranked[0][1] > base ? 'improves on' : 'does not improve on'} the base (${pct(base)}%) by ${pct(ranked[0][1] - base)} points.`);
  }
  for (const regime of regimesOf(r)) {
    const ss = r.dpa_search.searches.filter((x) => x.regime === regime);
    const atStart = ss.filter((x) => Math.abs(x.factors[0] - 1.8) < 1e-9).length;
    verdicts.push(`- search, ${regime}: α₁ stayed at its starting value 1.8 in ${atStart} of ${ss.length} searches (the ascent cannot lower it); α₂ ended at ${ss.map((x) => (x.factors[1] ?? 0).toFixed(1)).join(', ')}.`);
  }
  out.push('**What the numbers say** (generated from the tables above):\n');
  out.push(verdicts.join('\n'));
  return out.join('\n');
}

/** Facts about the setup that the numbers alone do not show; true whatever the numbers are. */
const CAVEATS = `- **Scale.** A 4-layer MLP of ~0.36 M parameters on 28×28 images is not a 7B LLM: the paper's
  claim is tested here in its mechanism (DP's densities from |δ| outliers, DPA's amplification,
  DARE's rescaled random drop), not in its absolute numbers.
- **Optimizer matters for DP.** Fine-tunes use SGD with momentum. A first version used Adam:
  its sign-like normalized steps give nearly uniform |δ|; no element of a light fine-tune
  exceeded 3× the mean |δ| and none of either regime exceeded 5×, so DP's module offsets were
  exactly 0 and its layer offsets nearly so, making DP identical to magnitude pruning. SGD's
  deltas are accumulated raw gradients and heavy-tailed (0.1–2% of entries above 5× the mean per
  module), which is the situation DP was designed for.
- **\`owl_layer\`** is the same pruning with layer offsets only (no module offsets).
- **The search only raises factors** (greedy ascent from α = [1.8, 0]); where the best scale is
  below 1.8 (typically merges of several tasks at λ = 1), it cannot find it, which is why each
  merging method's λ is chosen on validation first.
- **Pruned-model accuracy above the dense fine-tune** (retained > 100%) happens with
  amplification when a fine-tune is under-trained (the light regime): extrapolating along the
  task vector helps, which is what the search finds.`;

export function writeReport(mdFile: string, svgFile: string, r: BenchResults): void {
  const densities = r.meta.settings.densities;
  const panels = regimesOf(r).map((regime) => ({
    title: `${regime} fine-tunes`,
    series: PRUNE_METHODS.map((m) => ({ name: m, points: densities.map((d) => ({ x: d, y: 100 * meanRetained(r, regime, m, d) })) })),
  }));
  fs.writeFileSync(svgFile, lineChart(panels, { title: 'Pruning: test accuracy retained (mean over tasks) vs density', xLabel: 'density (kept fraction of δ)', yLabel: 'retained accuracy % (dashed: dense)', reference: 100 }));
  const md = [
    '# Does DPPA deliver? Pruning and merging quality on real data',
    '',
    `Generated by \`npm run bench:quality${r.meta.mode === 'quick' ? ' -- --quick' : ''}\` (bench/quality/run.ts); raw numbers in [results.json](results.json). Every number below is measured on the official test sets; every choice (λ, α) was made on the validation splits.`,
    '',
    '## Setup',
    '',
    setupSection(r),
    '',
    '## Base and dense fine-tunes',
    '',
    denseSection(r),
    '',
    '## Pruning one fine-tune',
    '',
    `![retained accuracy vs density](${path.basename(svgFile)})`,
    '',
    pruningSection(r),
    '',
    '## Merging all tasks',
    '',
    mergingSection(r),
    '',
    '## DPA factor search',
    '',
    searchSection(r),
    '',
    '## Analysis',
    '',
    analysisSection(r),
    '',
    '## Caveats',
    '',
    CAVEATS,
    '',
  ].join('\n');
  fs.writeFileSync(mdFile, md);
}
