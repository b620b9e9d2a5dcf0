/**
 * Every knob of the quality benchmark in one place. Quick mode differs from the full run
 * only in training length, so its cached base and light fine-tunes are shared with it.
 */
import { ARCH, Arch } from './model';
import { TrainSpec } from './train';

export type Regime = 'light' | 'heavy';
export const REGIMES: Regime[] = ['light', 'heavy'];

export interface Settings {
  quick: boolean;
  arch: Arch;
  validationSize: number;
  dataSeed: number;
  /**
   * The base sees only a small slice of each task, so it is a fair but clearly improvable
   * starting point (≈ 90% on MNIST), like a pre-trained model before instruction tuning.
   */
  pretrain: TrainSpec;
  /**
   * Light: one epoch at a small rate (small deltas; the regime where DARE is known to work).
   * Heavy: several epochs at a 10× rate (large deltas; where the DPPA paper says DARE fails).
   */
  finetune: Record<Regime, TrainSpec>;
  /** Densities of the pruning table. */
  densities: number[];
  /** Density of every sparsified method in the merging table, and of the DPA search (the paper's 20%). */
  mergeDensity: number;
  /** Task-arithmetic scales tried on the validation split for each merging method. */
  lambdaGrid: number[];
  /** DARE's seed (counter-based: the same masks in every run). */
  dareSeed: number;
}

export function makeSettings(quick: boolean): Settings {
  return {
    quick,
    arch: ARCH,
    validationSize: 5000,
    dataSeed: 1234,
    pretrain: { epochs: 5, lr: 1e-3, batch: 64, seed: 1, maxExamples: 2000, trainEmbed: true, optimizer: 'adam' },
    finetune: {
      // Fine-tunes keep the input projection frozen: it lies outside DP's layer scope and
      // would stay dense under DP but be pruned under magnitude/DARE, skewing the comparison.
      light: { epochs: 1, lr: 0.01, batch: 128, seed: 2, trainEmbed: false, optimizer: 'momentum' },
      heavy: { epochs: quick ? 2 : 6, lr: 0.1, batch: 128, seed: 2, trainEmbed: false, optimizer: 'momentum' },
    },
    densities: [0.5, 0.3, 0.2, 0.1],
    mergeDensity: 0.2,
    lambdaGrid: [0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
    dareSeed: 7,
  };
}

/** DPA's nested masks for a target density d: the paper's [0.1, 0.2] at d = 0.2, scaled. */
export function dpaPartitions(density: number): number[] {
  return [density / 2, density];
}
