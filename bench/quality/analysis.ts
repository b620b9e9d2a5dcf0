/**
 * Why the methods behave as they do: per-regime size of the deltas (per tensor, relative to
 * the base weights), the noise DARE's rescaling adds at a given density, and the densities DP
 * gives each layer and module (read from the library's `plan` statistics pass).
 */
import { plan } from '../../lib/index';
import { BenchContext, finetuneOf } from './context';
import { pruneConfig } from './mergestep';
import { REGIMES, Regime } from './settings';

export interface TensorDeltaStats {
  task: string;
  regime: Regime;
  tensor: string;
  /** mean |δ| */
  meanAbsDelta: number;
  /** ‖δ‖₂ / ‖θ₀‖₂ */
  relativeNorm: number;
  /** Share of |δ| above 5 × mean |δ| (DP's module outlier count, in %). */
  outlierPercent: number;
  /** DP's density for this tensor at the merge density (absent for tensors outside DP's scope). */
  dpDensity?: number;
}

export interface RegimeSummary {
  regime: Regime;
  /** ‖δ‖₂ / ‖θ₀‖₂ over the whole backbone, averaged over tasks. */
  relativeNorm: number;
  meanAbsDelta: number;
  /** Expected ‖DARE(δ) − δ‖ / ‖θ₀‖ at each density: √((1−d)/d) · ‖δ‖/‖θ₀‖. */
  dareNoise: Record<string, number>;
}

export interface Analysis {
  tensors: TensorDeltaStats[];
  regimes: RegimeSummary[];
}

export async function analyze(ctx: BenchContext): Promise<Analysis> {
  const tensors: TensorDeltaStats[] = [];
  const regimes: RegimeSummary[] = [];
  const density = ctx.settings.mergeDensity;
  for (const regime of REGIMES) {
    let relSum = 0;
    let absSum = 0;
    for (const task of ctx.tasks) {
      const ft = finetuneOf(ctx, task.name, regime);
      const report = await plan(pruneConfig('dp', density, ctx.base.dir, ft.dir, [1], 0), { threads: 1 });
      const dpDensities = report.densities ? Object.values(report.densities)[0] : {};
      let dd = 0, bb = 0, aa = 0, n = 0;
      for (const [name, base] of ctx.base.backbone) {
        const tuned = ft.backbone.get(name)!.data;
        let d2 = 0, b2 = 0, a = 0;
        for (let i = 0; i < tuned.length; i++) {
          const d = tuned[i] - base.data[i];
          d2 += d * d;
          b2 += base.data[i] * base.data[i];
          a += Math.abs(d);
        }
        const mean = a / tuned.length;
        let outliers = 0;
        for (let i = 0; i < tuned.length; i++) if (Math.abs(tuned[i] - base.data[i]) > 5 * mean) outliers++;
        dd += d2; bb += b2; aa += a; n += tuned.length;
        tensors.push({
          task: task.name, regime, tensor: name, meanAbsDelta: mean, relativeNorm: Math.sqrt(d2 / b2),
          outlierPercent: (100 * outliers) / tuned.length, dpDensity: dpDensities[name]?.[0],
        });
      }
      relSum += Math.sqrt(dd / bb);
      absSum += aa / n;
    }
    const relativeNorm = relSum / ctx.tasks.length;
    const dareNoise: Record<string, number> = {};
    for (const d of ctx.settings.densities) dareNoise[String(d)] = Math.sqrt((1 - d) / d) * relativeNorm;
    regimes.push({ regime, relativeNorm, meanAbsDelta: absSum / ctx.tasks.length, dareNoise });
  }
  return { tensors, regimes };
}
