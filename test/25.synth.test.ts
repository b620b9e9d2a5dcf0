/**
 * 25: generated Llama families. Complete HF folders, deterministic from the seed, with
 * deltas shaped like real fine-tunes (and the quantized option that makes ties).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { decodeToFloat64 } from '../lib/io/codec';
import { ModelSource } from '../lib/io/model';
import { writeLlamaFamily, llamaTensors, SLAB_ELEMENTS } from '../lib/synth/llama';
import { Xoshiro128, NORMAL_TABLE } from '../lib/synth/random';
import { tmpDir } from './hooks';
import { llamaNames, rejectsWith, throwsWith } from './20.helpers';

const small = { layers: 2, hidden: 64, intermediate: 160, vocab: 128, heads: 4, seed: 1 };

async function deltaOf(base: ModelSource, ft: ModelSource, name: string): Promise<Float64Array> {
  const b = decodeToFloat64(await base.read(name), base.info(name).dtype);
  const f = decodeToFloat64(await ft.read(name), ft.info(name).dtype);
  return f.map((v, i) => v - b[i]);
}

function filesEqual(a: string, b: string): boolean {
  const names = fs.readdirSync(a).sort();
  if (names.join() !== fs.readdirSync(b).sort().join()) return false;
  return names.every((n) => fs.readFileSync(path.join(a, n)).equals(fs.readFileSync(path.join(b, n))));
}

describe('25 synth: generated Llama families', function () {
  let dir: string;
  before(() => {
    dir = tmpDir('25-synth');
  });

  it('writes complete HF folders: config, tokenizer files, the Llama tensors in [out, in] shapes', async () => {
    const family = await writeLlamaFamily(path.join(dir, 'plain'), { ...small, kvHeads: 2, fineTunes: 2, dtype: 'BF16' });
    assert.deepStrictEqual(family.fineTunes.map((f) => f.name), ['ft0', 'ft1']);
    assert.strictEqual(family.base.path, path.join(dir, 'plain', 'base'));
    for (const model of [family.base, ...family.fineTunes]) {
      assert.deepStrictEqual(fs.readdirSync(model.path).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      JSON.parse(fs.readFileSync(path.join(model.path, 'tokenizer.json'), 'utf8'));
      const source = await ModelSource.open(model.path);
      assert.deepStrictEqual([...source.tensors.keys()].sort(), llamaNames(2));
      assert.deepStrictEqual(source.info('model.layers.1.self_attn.k_proj.weight').shape, [32, 64]);
      assert.deepStrictEqual(source.info('model.layers.1.self_attn.q_proj.weight').shape, [64, 64]);
      assert.deepStrictEqual(source.info('model.layers.0.mlp.down_proj.weight').shape, [64, 160]);
      assert.deepStrictEqual(source.info('model.layers.0.mlp.gate_proj.weight').shape, [160, 64]);
      assert.deepStrictEqual(source.info('lm_head.weight').shape, [128, 64]);
      assert.deepStrictEqual(source.info('model.norm.weight').shape, [64]);
      assert.strictEqual([...source.tensors.keys()][0], 'model.embed_tokens.weight');
      const config = source.config!;
      assert.deepStrictEqual(config.architectures, ['LlamaForCausalLM']);
      assert.strictEqual(config.torch_dtype, 'bfloat16');
      assert.strictEqual(config.num_hidden_layers, 2);
      assert.strictEqual(config.hidden_size, 64);
      assert.strictEqual(config.intermediate_size, 160);
      assert.strictEqual(config.vocab_size, 128);
      assert.strictEqual(config.num_attention_heads, 4);
      assert.strictEqual(config.num_key_value_heads, 2);
      assert.strictEqual(config.tie_word_embeddings, false);
      await source.close();
    }
    assert.strictEqual(family.params, llamaTensors({ ...small, kvHeads: 2 }, 'BF16').reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0));
  });

  it('is deterministic from the seed', async () => {
    const a = await writeLlamaFamily(path.join(dir, 'seed-a'), { ...small, fineTunes: 1, dtype: 'BF16' });
    const b = await writeLlamaFamily(path.join(dir, 'seed-b'), { ...small, fineTunes: 1, dtype: 'BF16' });
    const c = await writeLlamaFamily(path.join(dir, 'seed-c'), { ...small, seed: 2, fineTunes: 1, dtype: 'BF16' });
    assert.ok(filesEqual(a.base.path, b.base.path) && filesEqual(a.fineTunes[0].path, b.fineTunes[0].path));
    assert.ok(!filesEqual(a.base.path, c.base.path));
  });

  it('shards with an index, names fine-tunes, ties embeddings, writes F16 and F32', async () => {
    const family = await writeLlamaFamily(path.join(dir, 'sharded'), {
      ...small, fineTunes: ['math', 'code'], dtype: 'F16', shardBytes: 40_000, tieEmbeddings: true,
    });
    assert.deepStrictEqual(family.fineTunes.map((f) => path.basename(f.path)), ['math', 'code']);
    const model = await ModelSource.open(family.fineTunes[1].path);
    assert.strictEqual(model.layout, 'sharded');
    assert.ok(model.files.length > 3);
    assert.ok(!model.has('lm_head.weight'));
    assert.strictEqual(model.config?.tie_word_embeddings, true);
    assert.strictEqual(model.config?.torch_dtype, 'float16');
    for (const info of model.tensors.values()) assert.strictEqual(info.dtype, 'F16');
    await model.close();
    const f32 = await writeLlamaFamily(path.join(dir, 'f32'), { ...small, fineTunes: 0, dtype: 'F32' });
    assert.deepStrictEqual(f32.fineTunes, []);
    const base = await ModelSource.open(f32.base.path);
    assert.strictEqual(base.info('model.norm.weight').dtype, 'F32');
    await base.close();
  });

  it('makes realistic deltas: small and dense, varying by layer, outliers in some tensors, tiny on norms', async () => {
    const family = await writeLlamaFamily(path.join(dir, 'deltas'), { ...small, layers: 6, fineTunes: 2, dtype: 'F32', deltaScale: 0.002 });
    const base = await ModelSource.open(family.base.path);
    const perLayerRms: number[] = [];
    let tensorsWithOutliers = 0;
    let matrices = 0;
    for (const ftModel of family.fineTunes) {
      const ft = await ModelSource.open(ftModel.path);
      for (const info of base.tensors.values()) {
        const delta = await deltaOf(base, ft, info.name);
        const rms = Math.sqrt(delta.reduce((s, d) => s + d * d, 0) / delta.length);
        const max = delta.reduce((m, d) => Math.max(m, Math.abs(d)), 0);
        const nonZero = delta.filter((d) => d !== 0).length / delta.length;
        if (info.shape.length === 1) {
          assert.ok(rms < 0.02 && rms > 0, `${info.name}: norm delta rms ${rms}`);
          continue;
        }
        matrices++;
        assert.ok(nonZero > 0.99, `${info.name}: deltas are dense (${nonZero})`);
        assert.ok(rms > 2e-4 && rms < 2e-2, `${info.name}: delta rms ${rms}`);
        if (max > 12 * rms) tensorsWithOutliers++;
        if (info.name.endsWith('mlp.up_proj.weight') && ftModel.name === 'ft0') perLayerRms.push(rms);
      }
      await ft.close();
    }
    await base.close();
    assert.ok(tensorsWithOutliers > 0 && tensorsWithOutliers < matrices, `outliers in ${tensorsWithOutliers} of ${matrices} tensors`);
    const spread = Math.max(...perLayerRms) / Math.min(...perLayerRms);
    assert.ok(spread > 1.3, `layer scales vary (max/min rms ${spread.toFixed(2)})`);
  });

  it('with quantizedDeltas, deltas are exact multiples of a grid step: many ties', async () => {
    const family = await writeLlamaFamily(path.join(dir, 'quantized'), { ...small, fineTunes: 1, dtype: 'BF16', quantizedDeltas: 3 });
    const base = await ModelSource.open(family.base.path);
    const ft = await ModelSource.open(family.fineTunes[0].path);
    const delta = await deltaOf(base, ft, 'model.layers.0.mlp.up_proj.weight');
    const q = 2 ** -13;
    const distinct = new Set<number>();
    for (const d of delta) {
      assert.ok(Number.isInteger(d / q), `δ ${d} is on the grid`);
      assert.ok(Math.abs(d) <= 3 * q);
      distinct.add(Math.abs(d));
    }
    assert.ok(distinct.size <= 4, `|δ| takes few values: ${[...distinct]}`);
    const norm = await deltaOf(base, ft, 'model.norm.weight');
    for (const d of norm) assert.ok(Number.isInteger(d / 2 ** -7) && Math.abs(d) <= 3 * 2 ** -7, `norm δ ${d}`);
    await base.close();
    await ft.close();
  });

  it('gives fine-tunes their own vocabulary size: shared rows are base + δ', async () => {
    const family = await writeLlamaFamily(path.join(dir, 'vocab'), { ...small, fineTunes: 2, dtype: 'F32', vocabPerModel: [130, 120] });
    const base = await ModelSource.open(family.base.path);
    const grown = await ModelSource.open(family.fineTunes[0].path);
    const shrunk = await ModelSource.open(family.fineTunes[1].path);
    assert.deepStrictEqual(grown.info('model.embed_tokens.weight').shape, [130, 64]);
    assert.deepStrictEqual(shrunk.info('lm_head.weight').shape, [120, 64]);
    assert.strictEqual(grown.config?.vocab_size, 130);
    const b = decodeToFloat64(await base.read('model.embed_tokens.weight'), 'F32');
    const g = decodeToFloat64(await grown.read('model.embed_tokens.weight'), 'F32');
    let close = 0;
    for (let i = 0; i < b.length; i++) if (Math.abs(g[i] - b[i]) < 0.05) close++;
    assert.ok(close / b.length > 0.99, 'shared rows stay near the base');
    for (const m of [base, grown, shrunk]) await m.close();
  });

  it('streams tensors larger than one slab, with the same bytes as a smaller family', async () => {
    const wide = { layers: 1, hidden: 128, intermediate: 256, vocab: Math.ceil((SLAB_ELEMENTS * 2.5) / 128), heads: 2, seed: 3 };
    const family = await writeLlamaFamily(path.join(dir, 'slabs'), { ...wide, fineTunes: 1, dtype: 'BF16' });
    const narrow = await writeLlamaFamily(path.join(dir, 'slabs-narrow'), { ...wide, vocab: 64, fineTunes: 1, dtype: 'BF16' });
    const big = await ModelSource.open(family.fineTunes[0].path);
    const little = await ModelSource.open(narrow.fineTunes[0].path);
    // Element i of a tensor depends only on (seed, model, tensor, i): the first 64 rows agree.
    const rows = await big.read('model.embed_tokens.weight');
    const same = await little.read('model.embed_tokens.weight');
    assert.ok(Buffer.from(rows.subarray(0, same.byteLength)).equals(Buffer.from(same)));
    assert.strictEqual(rows.byteLength, wide.vocab * 128 * 2);
    await big.close();
    await little.close();
  });

  it('refuses an existing family without overwrite, replaces it with overwrite', async () => {
    const target = path.join(dir, 'again');
    await writeLlamaFamily(target, { ...small, fineTunes: 1, dtype: 'BF16' });
    await rejectsWith(writeLlamaFamily(target, { ...small, fineTunes: 1, dtype: 'BF16' }), 'E_EXISTS', '--overwrite');
    await writeLlamaFamily(target, { ...small, seed: 9, fineTunes: 1, dtype: 'BF16', overwrite: true });
    assert.deepStrictEqual(fs.readdirSync(target).sort(), ['base', 'ft0']);
  });

  it('refuses bad shapes and options', async () => {
    throwsWith(() => llamaTensors({ ...small, hidden: 65 }, 'BF16'), 'E_ARGUMENT', 'multiple of heads');
    throwsWith(() => llamaTensors({ ...small, kvHeads: 3 }, 'BF16'), 'E_ARGUMENT', 'kvHeads');
    throwsWith(() => llamaTensors({ ...small, layers: 0 }, 'BF16'), 'E_ARGUMENT', 'layers');
    await rejectsWith(writeLlamaFamily(path.join(dir, 'bad'), { ...small, fineTunes: ['a', 'a'], dtype: 'BF16' }), 'E_ARGUMENT', 'twice');
    await rejectsWith(writeLlamaFamily(path.join(dir, 'bad'), { ...small, fineTunes: ['../x'], dtype: 'BF16' }), 'E_ARGUMENT', 'plain folder name');
    await rejectsWith(writeLlamaFamily(path.join(dir, 'bad'), { ...small, fineTunes: 2, dtype: 'BF16', vocabPerModel: [1] }), 'E_ARGUMENT', 'vocabPerModel');
    await rejectsWith(writeLlamaFamily(path.join(dir, 'bad'), { ...small, fineTunes: 1, dtype: 'I8' as never }), 'E_ARGUMENT', 'dtype');
  });
});

describe('25 synth: randomness', function () {
  it('streams are reproducible and keyed by their labels', () => {
    const a = new Xoshiro128(5, 'x', 1);
    const b = new Xoshiro128(5, 'x', 1);
    const c = new Xoshiro128(5, 'x', 2);
    const draws = (r: Xoshiro128) => Array.from({ length: 8 }, () => r.nextUint32());
    const da = draws(a);
    assert.deepStrictEqual(da, draws(b));
    assert.notDeepStrictEqual(da, draws(c));
    for (const v of da) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
  });

  it('uniforms and normals have the right moments', () => {
    const rng = new Xoshiro128(11);
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let sumU = 0;
    let tail = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.nextNormal();
      sum += z;
      sumSq += z * z;
      if (Math.abs(z) > 1.96) tail++;
      sumU += rng.nextFloat();
    }
    assert.ok(Math.abs(sum / n) < 0.01, `mean ${sum / n}`);
    assert.ok(Math.abs(sumSq / n - 1) < 0.02, `variance ${sumSq / n}`);
    assert.ok(Math.abs(tail / n - 0.05) < 0.003, `two-sided 5% tail: ${tail / n}`);
    assert.ok(Math.abs(sumU / n - 0.5) < 0.005);
    assert.ok(Math.abs(NORMAL_TABLE[32768] - 1.9e-5) < 1e-5 && NORMAL_TABLE[32767] === -NORMAL_TABLE[32768]);
  });
});
