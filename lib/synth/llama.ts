/**
 * Generated Llama-shaped checkpoint families: a base model and fine-tunes of it, each a
 * complete Hugging Face folder. Tests, the example and the benchmarks all use these.
 *
 * The fine-tune deltas imitate real ones closely enough for DP-style pruning to matter:
 * mostly small near-Gaussian deltas, a scale that varies by layer and module, a few
 * heavy-tailed outliers in some tensors, tiny deltas on the norms. Optionally the deltas are
 * drawn from a small set of values on an exact grid ("quantized"), which makes many |δ| tie.
 *
 * Generation streams: every tensor is produced in slabs of SLAB_ELEMENTS for all models at
 * once and written as it is made, so memory stays a few slabs whatever the model size. Every
 * slab has its own random stream, so the output is a function of the seed alone.
 */
import * as path from 'path';
import { promises as fsp } from 'fs';
import { DppaError } from '../errors';
import { encodeFloat32Into, encodeFromFloat64 } from '../io/codec';
import { torchDtypeName } from '../io/dtypes';
import { ModelWriter } from '../io/writer';
import type { TensorSpec } from '../io/shard-plan';
import { Xoshiro128 } from './random';

export { encodeFromFloat64 };

export type SynthDType = 'BF16' | 'F16' | 'F32';

export interface LlamaShape {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  heads: number;
  /** Default: heads (no grouped-query attention). */
  kvHeads?: number;
  /** No lm_head.weight; the embedding is shared. Default false. */
  tieEmbeddings?: boolean;
}

export interface LlamaFamilyOptions extends LlamaShape {
  /** How many fine-tunes (named ft0, ft1, ...) or their folder names. */
  fineTunes: number | string[];
  dtype: SynthDType;
  seed: number;
  /** Shard the safetensors at this many data bytes (with an index). Default: one file. */
  shardBytes?: number;
  /** Typical |δ| of the weight matrices (std of the Gaussian part). Default 0.002. */
  deltaScale?: number;
  /** Vocabulary size of each fine-tune (e.g. one that added tokens); default `vocab` for all. */
  vocabPerModel?: number[];
  /**
   * Quantized-like deltas: δ takes only the values k·q for integers |k| ≤ this, with q the
   * dtype's grid step near the weights, and base weights on that grid too: many exact ties.
   */
  quantizedDeltas?: number;
  /** Replace existing model folders. Default false. */
  overwrite?: boolean;
  /** Called after each tensor with bytes written so far and the total. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

export interface GeneratedModel {
  name: string;
  path: string;
  vocab: number;
  tensors: TensorSpec[];
}

export interface LlamaFamily {
  dir: string;
  base: GeneratedModel;
  fineTunes: GeneratedModel[];
  /** Parameters of the base model. */
  params: number;
  /** Bytes written over all models. */
  bytes: number;
}

/** The number of elements per random stream and per write. */
export const SLAB_ELEMENTS = 1 << 20;

const DTYPE_SIZE: Record<SynthDType, number> = { BF16: 2, F16: 2, F32: 4 };

export type ModuleKind = 'embed' | 'attn' | 'mlp' | 'norm' | 'head';

export interface SynthTensor extends TensorSpec {
  kind: ModuleKind;
  /** Layer index, -1 outside the layers. */
  layer: number;
}

function validateShape(shape: LlamaShape): Required<LlamaShape> {
  const kvHeads = shape.kvHeads ?? shape.heads;
  const positive = { layers: shape.layers, hidden: shape.hidden, intermediate: shape.intermediate, vocab: shape.vocab, heads: shape.heads, kvHeads };
  for (const [key, value] of Object.entries(positive)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new DppaError('E_ARGUMENT', `${key} must be a positive integer, not ${value}`);
  }
  if (shape.hidden % shape.heads !== 0) throw new DppaError('E_ARGUMENT', `hidden (${shape.hidden}) must be a multiple of heads (${shape.heads})`);
  if (shape.heads % kvHeads !== 0) throw new DppaError('E_ARGUMENT', `heads (${shape.heads}) must be a multiple of kvHeads (${kvHeads})`);
  return { ...positive, tieEmbeddings: shape.tieEmbeddings === true };
}

/** The tensors of a Llama model in the order transformers saves them. Shapes are [out, in]. */
export function llamaTensors(shape: LlamaShape, dtype: SynthDType, vocab = shape.vocab): SynthTensor[] {
  const s = validateShape(shape);
  const headDim = s.hidden / s.heads;
  const kvDim = s.kvHeads * headDim;
  const tensors: SynthTensor[] = [];
  const add = (name: string, dims: number[], kind: ModuleKind, layer = -1) => tensors.push({ name, dtype, shape: dims, kind, layer });
  add('model.embed_tokens.weight', [vocab, s.hidden], 'embed');
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [s.hidden, s.hidden], 'attn', i);
    add(`${p}.self_attn.k_proj.weight`, [kvDim, s.hidden], 'attn', i);
    add(`${p}.self_attn.v_proj.weight`, [kvDim, s.hidden], 'attn', i);
    add(`${p}.self_attn.o_proj.weight`, [s.hidden, s.hidden], 'attn', i);
    add(`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden], 'mlp', i);
    add(`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden], 'mlp', i);
    add(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate], 'mlp', i);
    add(`${p}.input_layernorm.weight`, [s.hidden], 'norm', i);
    add(`${p}.post_attention_layernorm.weight`, [s.hidden], 'norm', i);
  }
  add('model.norm.weight', [s.hidden], 'norm');
  if (!s.tieEmbeddings) add('lm_head.weight', [vocab, s.hidden], 'head');
  return tensors;
}

/** A config.json for a generated model. */
export function llamaConfig(shape: LlamaShape, dtype: SynthDType, vocab = shape.vocab): Record<string, unknown> {
  const s = validateShape(shape);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    vocab_size: vocab,
    max_position_embeddings: 2048,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: s.tieEmbeddings,
    torch_dtype: torchDtypeName(dtype),
  };
}

function tokenizerFiles(vocab: number): Record<string, string> {
  // A placeholder, valid JSON in the tokenizers format, with a few tokens: enough for tools
  // that only check the file is there and parses.
  const tokens: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 3; i < Math.min(vocab, 16); i++) tokens[`tok${i}`] = i;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: tokens, unk_token: '<unk>' },
  };
  const tokenizerConfig = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 2048, tokenizer_class: 'PreTrainedTokenizerFast' };
  const generationConfig = { bos_token_id: 1, eos_token_id: 2, _from_model_config: true };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return { 'tokenizer.json': json(tokenizer), 'tokenizer_config.json': json(tokenizerConfig), 'generation_config.json': json(generationConfig) };
}

/**
 * The exact grid of quantized mode: step q where the dtype represents every k·q for |k| ≤
 * limit. Weights near 0.02 use q = 2^-(p+5) (p = significand bits), so |x| < 2^-5 holds
 * them exactly; norms near 1 use q = 2^-(p-1) over [0.5, 2).
 */
function gridOf(dtype: SynthDType, kind: ModuleKind): { q: number; lo: number; hi: number } {
  const precision = dtype === 'BF16' ? 8 : dtype === 'F16' ? 11 : 24;
  if (kind === 'norm') {
    const q = Math.pow(2, -(precision - 1));
    return { q, lo: Math.ceil(0.5 / q), hi: Math.floor(1.99 / q) };
  }
  const q = Math.pow(2, -(precision + 5));
  const limit = Math.pow(2, precision) - 1;
  return { q, lo: -limit, hi: limit };
}

/** Per fine-tune and tensor: how its delta is drawn. */
interface DeltaRecipe {
  scale: number;
  /** Fraction of elements that are outliers (0 for most tensors). */
  outlierRate: number;
}

function deltaRecipe(seed: number, ftIndex: number, tensor: SynthTensor, deltaScale: number): DeltaRecipe {
  // Norm weights sit near 1: a δ of 2.5× deltaScale is tiny relative to them (≈0.5%), and
  // in bf16 about half of such deltas round away, as they do in real fine-tunes.
  if (tensor.kind === 'norm') return { scale: deltaScale * 2.5, outlierRate: 0 };
  // Layer scale: lognormal around 1, varying per fine-tune, so layers differ in how much
  // they moved (what DP's layer-wise densities key on).
  const layerRng = new Xoshiro128(seed, 'layer-scale', ftIndex, tensor.layer);
  const layerFactor = Math.exp(0.5 * layerRng.nextNormal());
  const moduleRng = new Xoshiro128(seed, 'module-scale', ftIndex, tensor.layer, tensor.kind);
  const moduleFactor = Math.exp(0.3 * moduleRng.nextNormal()) * (tensor.kind === 'embed' || tensor.kind === 'head' ? 0.5 : 1);
  const tensorRng = new Xoshiro128(seed, 'outliers', ftIndex, tensor.name);
  const hasOutliers = tensorRng.nextFloat() < 0.3;
  const outlierRate = hasOutliers ? 1e-4 * (1 + 19 * tensorRng.nextFloat()) : 0;
  return { scale: deltaScale * layerFactor * moduleFactor, outlierRate };
}

/** Base values of elements [start, start + out.length) of a tensor. */
function fillBase(seed: number, tensor: SynthTensor, slab: number, out: Float32Array, quantized: boolean, dtype: SynthDType): void {
  const rng = new Xoshiro128(seed, 'base', tensor.name, slab);
  const n = out.length;
  if (quantized) {
    const { q, lo, hi } = gridOf(dtype, tensor.kind);
    const mean = tensor.kind === 'norm' ? 1 : 0;
    const std = tensor.kind === 'norm' ? 0.1 : 0.01;
    for (let i = 0; i < n; i++) {
      const k = Math.round((mean + std * rng.nextNormal()) / q);
      out[i] = (k < lo ? lo : k > hi ? hi : k) * q;
    }
    return;
  }
  if (tensor.kind === 'norm') {
    for (let i = 0; i < n; i++) out[i] = 1 + 0.1 * rng.nextNormal();
  } else {
    for (let i = 0; i < n; i++) out[i] = 0.02 * rng.nextNormal();
  }
}

/** Fine-tune values: base + δ for the same elements. */
function fillFineTune(seed: number, ftIndex: number, tensor: SynthTensor, slab: number, base: Float32Array, out: Float32Array, recipe: DeltaRecipe, levels: number, dtype: SynthDType): void {
  const rng = new Xoshiro128(seed, 'delta', ftIndex, tensor.name, slab);
  const n = out.length;
  if (levels > 0) {
    const { q, lo, hi } = gridOf(dtype, tensor.kind);
    // k from a rounded normal: most deltas small, many exactly equal.
    const spread = levels / 2.5;
    for (let i = 0; i < n; i++) {
      let k = Math.round(spread * rng.nextNormal());
      k = k < -levels ? -levels : k > levels ? levels : k;
      const b = Math.round(base[i] / q) + k;
      out[i] = (b < lo ? lo : b > hi ? hi : b) * q;
    }
    return;
  }
  const scale = recipe.scale;
  for (let i = 0; i < n; i++) out[i] = base[i] + scale * rng.nextNormal();
  if (recipe.outlierRate > 0) {
    // Heavy tail: a Pareto-like magnitude, 5× to ~100× the typical delta, random sign.
    // Positions are drawn over a whole slab from their own stream, whatever this slab's
    // length, so that element i is the same in a tensor of any size.
    const outliers = new Xoshiro128(seed, 'outlier-positions', ftIndex, tensor.name, slab);
    const count = Math.floor(recipe.outlierRate * SLAB_ELEMENTS + outliers.nextFloat());
    for (let j = 0; j < count; j++) {
      const at = outliers.nextInt(SLAB_ELEMENTS);
      const magnitude = scale * Math.min(5 / Math.pow(1 - outliers.nextFloat(), 1 / 1.5), 100);
      const sign = outliers.nextFloat() < 0.5 ? -1 : 1;
      if (at < n) out[at] = base[at] + sign * magnitude;
    }
  }
}

function fineTuneNames(fineTunes: number | string[]): string[] {
  if (typeof fineTunes === 'number') {
    if (!Number.isSafeInteger(fineTunes) || fineTunes < 0) throw new DppaError('E_ARGUMENT', `fineTunes must be a non-negative integer, not ${fineTunes}`);
    return Array.from({ length: fineTunes }, (_, i) => `ft${i}`);
  }
  const seen = new Set<string>(['base']);
  for (const name of fineTunes) {
    if (typeof name !== 'string' || name.length === 0 || name !== path.basename(name) || name === '..' || name === '.') {
      throw new DppaError('E_ARGUMENT', `fine-tune name "${name}" must be a plain folder name`);
    }
    if (seen.has(name)) throw new DppaError('E_ARGUMENT', `fine-tune name "${name}" is used twice (or clashes with "base")`);
    seen.add(name);
  }
  return fineTunes.slice();
}

/** Write base/ and one folder per fine-tune under `dir`. */
export async function writeLlamaFamily(dir: string, options: LlamaFamilyOptions): Promise<LlamaFamily> {
  const { dtype, seed } = options;
  if (!(dtype in DTYPE_SIZE)) throw new DppaError('E_ARGUMENT', `dtype must be BF16, F16 or F32, not "${dtype}"`);
  if (!Number.isFinite(seed)) throw new DppaError('E_ARGUMENT', `seed must be a number, not ${seed}`);
  const names = fineTuneNames(options.fineTunes);
  const vocabs = options.vocabPerModel ?? names.map(() => options.vocab);
  if (vocabs.length !== names.length || !vocabs.every((v) => Number.isSafeInteger(v) && v > 0)) {
    throw new DppaError('E_ARGUMENT', `vocabPerModel must give a positive vocabulary size for each of the ${names.length} fine-tunes`);
  }
  const deltaScale = options.deltaScale ?? 0.002;
  const levels = options.quantizedDeltas ?? 0;
  if (!Number.isSafeInteger(levels) || levels < 0) throw new DppaError('E_ARGUMENT', `quantizedDeltas must be a non-negative integer, not ${levels}`);
  const quantized = levels > 0;

  const models = [
    { name: 'base', vocab: options.vocab, ftIndex: -1 },
    ...names.map((name, i) => ({ name, vocab: vocabs[i], ftIndex: i })),
  ].map((m) => ({ ...m, path: path.join(dir, m.name), tensors: llamaTensors(options, dtype, m.vocab) }));

  await fsp.mkdir(dir, { recursive: true });
  const writers: ModelWriter[] = [];
  try {
    for (const m of models) {
      writers.push(await ModelWriter.create(m.path, {
        tensors: m.tensors.map(({ name, dtype: d, shape }) => ({ name, dtype: d, shape })),
        maxShardBytes: options.shardBytes,
        overwrite: options.overwrite,
      }));
    }
    const elementSize = DTYPE_SIZE[dtype];
    const totalBytes = models.reduce((sum, m) => sum + m.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * elementSize, 0), 0);
    let writtenBytes = 0;

    // Two sets of output buffers: one is being written while the next slab is generated.
    const baseValues = new Float32Array(SLAB_ELEMENTS);
    const ftValues = new Float32Array(SLAB_ELEMENTS);
    const buffers = [0, 1].map(() => models.map(() => new Uint8Array(SLAB_ELEMENTS * elementSize)));
    // pendingWrites[b]: the writes still reading buffer set b.
    const pendingWrites: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    let flip = 0;

    // The same tensor names in every model, in the same order (vocab sizes may differ).
    for (let t = 0; t < models[0].tensors.length; t++) {
      const numels = models.map((m) => m.tensors[t].shape.reduce((a, b) => a * b, 1));
      const longest = Math.max(...numels);
      const recipes = models.map((m) => (m.ftIndex >= 0 ? deltaRecipe(seed, m.ftIndex, m.tensors[t], deltaScale) : undefined));
      for (let slab = 0; slab * SLAB_ELEMENTS < longest; slab++) {
        const start = slab * SLAB_ELEMENTS;
        const length = Math.min(SLAB_ELEMENTS, longest - start);
        const base = baseValues.subarray(0, length);
        fillBase(seed, models[0].tensors[t], slab, base, quantized, dtype);
        const set = buffers[flip];
        // This buffer set was last filled two slabs ago: its writes must be done.
        await pendingWrites[flip];
        const issued: Promise<void>[] = [];
        for (let m = 0; m < models.length; m++) {
          const count = Math.min(length, numels[m] - start);
          if (count <= 0) continue;
          let values = base.subarray(0, count);
          const recipe = recipes[m];
          if (recipe !== undefined) {
            values = ftValues.subarray(0, count);
            fillFineTune(seed, models[m].ftIndex, models[m].tensors[t], slab, base.subarray(0, count), values, recipe, levels, dtype);
          }
          const bytes = encodeFloat32Into(values, dtype, set[m]);
          issued.push(writers[m].writeTensorPart(models[m].tensors[t].name, start * elementSize, bytes));
          writtenBytes += bytes.byteLength;
        }
        const written = Promise.all(issued).then(() => undefined);
        written.catch(() => undefined); // awaited later; no unhandled rejection meanwhile
        pendingWrites[flip] = written;
        flip ^= 1;
      }
      options.onProgress?.(writtenBytes, totalBytes);
    }
    await Promise.all(pendingWrites);
    for (let m = 0; m < models.length; m++) {
      await writers[m].finish({ config: llamaConfig(options, dtype, models[m].vocab), extraFiles: tokenizerFiles(models[m].vocab) });
    }
    const strip = (m: (typeof models)[number]): GeneratedModel => ({
      name: m.name,
      path: m.path,
      vocab: m.vocab,
      tensors: m.tensors.map(({ name, dtype: d, shape }) => ({ name, dtype: d, shape })),
    });
    return {
      dir,
      base: strip(models[0]),
      fineTunes: models.slice(1).map(strip),
      params: models[0].tensors.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0),
      bytes: totalBytes,
    };
  } catch (e) {
    await Promise.all(writers.map((w) => w.abort()));
    throw e;
  }
}
