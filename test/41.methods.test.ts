/**
 * Every method and sparsifier beyond the core three, against float64 references on generated
 * checkpoints (within one bf16 ulp), with statistics checks for the random ones, and the
 * mergekit-format configs of test/fixtures/configs run end to end.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { merge, plan } from '../lib/index';
import { orderTensorNames } from '../lib/plan/layers';
import { streamKey } from '../lib/rng';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';
import { uniformRef } from './ref/kernels-ref';
import * as ref from './ref/merge-ref';

const repoRoot = path.resolve(__dirname, '..', '..');

function rounded(model: ref.RefModel): ref.RefModel {
  return new Map([...model].map(([n, t]) => [n, { shape: t.shape, values: t.values.map(ref.roundBf16) }]));
}

function assertClose(actual: ref.RefModel, expected: ref.RefModel, allowed = 0): void {
  let bad = 0;
  const where: string[] = [];
  for (const [name, e] of expected) {
    const a = actual.get(name);
    assert.ok(a, `output lacks ${name}`);
    const n = ref.countBeyondUlp(a.values, e.values);
    if (n) where.push(`${name}: ${n}`);
    bad += n;
  }
  assert.ok(bad <= allowed, `${bad} elements beyond one bf16 ulp: ${where.join('; ')}`);
}

function perTensor(base: ref.RefModel, fn: (name: string, b: ref.RefTensor) => Float64Array): ref.RefModel {
  return new Map([...base].map(([name, b]) => [name, { shape: b.shape, values: fn(name, b) }]));
}

describe('41 methods against float64 references', function () {
  this.timeout(300000);
  let dir: string;
  let base: ref.RefModel;
  let fts: ref.RefModel[];

  before(async () => {
    dir = tmpDir('methods');
    await writeLlamaFamily(dir, {
      layers: 2, hidden: 32, intermediate: 80, vocab: 64, heads: 4, fineTunes: 3, dtype: 'BF16', seed: 11, deltaScale: 0.01,
    });
    base = await ref.loadModel(path.join(dir, 'base'));
    fts = await Promise.all([0, 1, 2].map((i) => ref.loadModel(path.join(dir, `ft${i}`))));
  });

  /** Each large tensor of a one-model merge of ft0 has ‖out − base‖₁ within `tolerance` of ‖δ‖₁. */
  function assertL1Restored(out: ref.RefModel, tolerance: number): void {
    for (const [name, b] of base) {
      if (b.values.length < 1000) continue;
      const d = ref.delta(b.values, fts[0].get(name)!.values);
      const o = out.get(name)!.values;
      let before = 0, after = 0;
      for (let i = 0; i < d.length; i++) {
        before += Math.abs(d[i]);
        after += Math.abs(o[i] - b.values[i]);
      }
      assert.ok(Math.abs(after / before - 1) < tolerance, `${name}: L1 ratio ${after / before}`);
    }
  }

  async function run(name: string, config: object, options: { seed?: number; threads?: number } = {}): Promise<ref.RefModel> {
    const out = path.join(dir, `out-${name}`);
    await merge(config, out, { baseDir: dir, overwrite: true, ...options });
    return ref.loadModel(out);
  }

  describe('dare (random)', () => {
    const density = 0.3;
    const config = (rescale: string, seed = 5) => ({
      merge_method: 'dare_linear', base_model: './base',
      models: [{ model: './ft0', parameters: { density, weight: 1 } }, { model: './ft1', parameters: { density, weight: 0.5 } }],
      parameters: { rescale, seed },
    });

    it('matches the reference mask bit for bit, keeps δ/d, within one bf16 ulp overall', async () => {
      const out = await run('dare', config('inverse'));
      const expected = perTensor(base, (name, b) => {
        const sparse = [0, 1].map((t) => {
          const d = ref.delta(b.values, fts[t].get(name)!.values);
          const key = streamKey(`./ft${t}`, name);
          const stream = { seedLo: 5, seedHi: 0, streamLo: key.lo, streamHi: key.hi };
          return d.map((v, i) => (uniformRef(stream, i) < density ? Math.fround(Math.fround(1 / density) * v) : 0));
        });
        return ref.combine(b.values, sparse, { weights: [1, 0.5], consensus: 'none', normalize: false, lambda: 1 });
      });
      assertClose(out, rounded(expected));
    });

    it('keeps a fraction within 3σ of the density', async () => {
      const out = await run('dare-single', { ...config('inverse'), models: [{ model: './ft0', parameters: { density, weight: 1 } }] });
      let kept = 0, total = 0;
      for (const [name, b] of base) {
        const o = out.get(name)!.values;
        const d = ref.delta(b.values, fts[0].get(name)!.values);
        for (let i = 0; i < o.length; i++) {
          if (d[i] === 0) continue;
          total++;
          if (o[i] !== b.values[i]) kept++;
        }
      }
      const sigma = Math.sqrt(total * density * (1 - density));
      assert.ok(Math.abs(kept - density * total) < 3 * sigma + 0.01 * total, `kept ${kept} of ${total}`);
    });

    it('the same seed gives identical bytes at 1 and 2 threads; another seed differs', async () => {
      await run('seed-a1', config('inverse', 9), { threads: 1 });
      await run('seed-a2', config('inverse', 9), { threads: 2 });
      await run('seed-b', config('inverse', 10));
      const bytes = (n: string) => fs.readFileSync(path.join(dir, `out-${n}`, 'model.safetensors'));
      assert.ok(bytes('seed-a1').equals(bytes('seed-a2')));
      assert.ok(!bytes('seed-a1').equals(bytes('seed-b')));
    });

    it('rescale l1 preserves the L1 norm of each δ', async () => {
      const out = await run('dare-l1', { ...config('l1'), models: [{ model: './ft0', parameters: { density, weight: 1 } }] });
      assertL1Restored(out, 0.02);
    });
  });

  /** DELLA's sparsified δ of ft t (float64 reference): row ranks, keep by u < p, then the rescale. */
  function dellaRef(name: string, b: ref.RefTensor, t: number, density: number, epsilon: number, rescale: 'inverse' | 'l1'): Float64Array {
    const rows = b.shape.length >= 2 ? b.shape[0] : 1;
    const d = ref.delta(b.values, fts[t].get(name)!.values);
    const m = d.length / rows;
    const key = streamKey(`./ft${t}`, name);
    const stream = { seedLo: 3, seedHi: 0, streamLo: key.lo, streamHi: key.hi };
    const kept = new Uint8Array(d.length), p = new Float64Array(d.length);
    for (let r = 0; r < rows; r++) {
      const idx = Array.from({ length: m }, (_, i) => r * m + i).sort((x, y) => Math.abs(d[x]) - Math.abs(d[y]) || x - y);
      idx.forEach((i, rank) => {
        const rhat = m === 1 ? 0.5 : rank / (m - 1);
        p[i] = Math.fround(density - epsilon + 2 * epsilon * rhat);
        kept[i] = uniformRef(stream, i) < p[i] ? 1 : 0;
      });
    }
    if (rescale === 'inverse') return d.map((x, i) => (kept[i] ? Math.fround(x / p[i]) : 0));
    // l1: kept · ‖δ‖₁ / ‖kept‖₁, skipped when either norm is below 1e-7.
    let all = 0, keptSum = 0;
    d.forEach((x, i) => {
      all += Math.abs(x);
      if (kept[i]) keptSum += Math.abs(x);
    });
    const factor = all < 1e-7 || keptSum < 1e-7 ? 1 : Math.fround(all / keptSum);
    return d.map((x, i) => (kept[i] ? Math.fround(factor * x) : 0));
  }

  for (const rescale of ['inverse', 'l1'] as const) {
    it(`della keeps by row rank with p = d − ε + 2ε·r̂, rescale ${rescale}${rescale === 'l1' ? ' (kept · ‖δ‖₁/‖kept‖₁)' : ' (kept / p)'}`, async () => {
      const out = await run(`della-${rescale}`, {
        merge_method: 'della_linear', base_model: './base',
        models: [{ model: './ft0', parameters: { density: 0.4, epsilon: 0.1 } }, { model: './ft1', parameters: { density: 0.5, epsilon: 0.2, weight: 0.5 } }],
        parameters: { seed: 3, rescale },
      });
      const params = [{ d: 0.4, e: 0.1 }, { d: 0.5, e: 0.2 }];
      const expected = perTensor(base, (name, b) => {
        const sparse = [0, 1].map((t) => dellaRef(name, b, t, params[t].d, params[t].e, rescale));
        return ref.combine(b.values, sparse, { weights: [1, 0.5], consensus: 'none', normalize: false, lambda: 1 });
      });
      assertClose(out, rounded(expected));
      if (rescale !== 'l1') return;
      // The rescale restores each large tensor's ‖δ‖₁ (to within the bf16 rounding of the output).
      const single = await run('della-l1-single', {
        merge_method: 'della_linear', base_model: './base',
        models: [{ model: './ft0', parameters: { density: 0.4, epsilon: 0.1 } }], parameters: { seed: 3, rescale },
      });
      assertL1Restored(single, 0.03);
    });
  }

  it('pcb (scope: model) reports its statistics passes as progress: two reads of every merged tensor (a third announced when needed), then the merge', async () => {
    const events: Array<{ phase: string; done: number; total: number }> = [];
    await merge(
      { merge_method: 'pcb', base_model: './base', models: [{ model: './ft0' }, { model: './ft1' }], parameters: { pcb_ratio: 0.3 } },
      path.join(dir, 'out-pcb-progress'),
      { baseDir: dir, overwrite: true, onProgress: (e) => events.push({ phase: e.phase, done: e.done, total: e.total }) },
    );
    const statistics = events.filter((e) => e.phase === 'statistics');
    const merged = events.filter((e) => e.phase === 'merge');
    const tensors = merged[merged.length - 1].total;
    assert.ok(statistics.length > 0, 'a statistics phase');
    assert.equal(statistics[0].total, 2 * tensors);
    const last = statistics[statistics.length - 1];
    assert.ok(last.total === 2 * tensors || last.total === 3 * tensors, `2 or 3 reads per tensor, not ${last.total / tensors}`);
    assert.equal(last.done, last.total, 'every announced read done');
    // One step per read, in order (an announcement repeats the count with the larger total).
    const steps = statistics.map((e) => e.done).filter((d, i, all) => i === 0 || d !== all[i - 1]);
    assert.deepEqual(steps, Array.from({ length: last.total + 1 }, (_, i) => i), 'one step per read, in order');
    assert.ok(statistics.every((e) => e.done <= e.total), 'never more reads than announced');
    assert.ok(events.findIndex((e) => e.phase === 'merge') > events.findIndex((e) => e.phase === 'statistics' && e.done === e.total), 'then the merge');
  });

  for (const scope of ['tensor', 'model'] as const) {
    it(`pcb (scope: ${scope}) follows the float64 reference: clip, balance, keep the top scores as weights`, async () => {
      const ratio = 0.3;
      const out = await run(`pcb-${scope}`, {
        merge_method: 'pcb', base_model: './base', models: [{ model: './ft0' }, { model: './ft1' }, { model: './ft2' }],
        parameters: { pcb_ratio: ratio, scope, lambda: 0.9 },
      });
      const names = [...base.keys()];
      const groups = scope === 'tensor' ? names.map((n) => [n]) : [names];
      const expected: ref.RefModel = new Map();
      for (const group of groups) {
        const deltas = fts.map((ft) => group.map((n) => ref.delta(base.get(n)!.values, ft.get(n)!.values)));
        const flat = deltas.map((ds) => Float64Array.from(ds.flatMap((d) => Array.from(d))));
        const quantile = (sorted: Float64Array, q: number) => {
          const p = q * (sorted.length - 1), lo = Math.floor(p), hi = Math.ceil(p);
          return sorted[lo] + (p - lo) * (sorted[hi] - sorted[lo]);
        };
        const clipped = flat.map((x) => {
          const sorted = Float64Array.from(x).sort();
          const [lo, hi] = [quantile(sorted, 0.0001), quantile(sorted, 0.9999)];
          return x.map((v) => Math.min(hi, Math.max(lo, v)));
        });
        const n = clipped[0].length;
        const score = clipped.map((x) => {
          const abs = x.map(Math.abs);
          const min = Math.min(...abs), max = Math.max(...abs);
          return x.map((v, i) => {
            const sum = clipped.reduce((s, c) => s + c[i], 0);
            const norm = max > min ? (Math.abs(v) - min) / (max - min) : 0;
            return Math.exp(3 * norm * norm) * Math.tanh(v * sum);
          });
        });
        const weights = score.map((b) => {
          const sorted = Float64Array.from(b).sort();
          const threshold = sorted[n - Math.floor(ratio * n)];
          const top = sorted[n - 1];
          return b.map((v) => (v >= threshold ? (top > threshold ? (v - threshold) / (top - threshold) : 1) : 0));
        });
        let offset = 0;
        for (const name of group) {
          const b = base.get(name)!;
          const start = offset;
          expected.set(name, { shape: b.shape, values: b.values.map((v, i) => {
            let num = 0, den = 0;
            for (let t = 0; t < 3; t++) { num += weights[t][start + i] * clipped[t][start + i]; den += weights[t][start + i]; }
            return v + 0.9 * (den > 0 ? num / den : 0);
          }) });
          offset += b.values.length;
        }
      }
      let bad = 0, total = 0;
      for (const [name, e] of expected) {
        bad += ref.countBeyondUlp(out.get(name)!.values, e.values.map(ref.roundBf16));
        total += e.values.length;
      }
      // Scores are float32 in the implementation: elements at the keep threshold may fall either way.
      assert.ok(bad <= total * 0.002, `${bad} of ${total} beyond one bf16 ulp`);
    });
  }

  it('breadcrumbs drops the top γ and the bottom, and γ = 0 drops no outliers', async () => {
    for (const gamma of [0.05, 0]) {
      const out = await run(`crumbs-${gamma}`, {
        merge_method: 'breadcrumbs', base_model: './base',
        models: [{ model: './ft0', parameters: { density: 0.4, gamma } }, { model: './ft1', parameters: { density: 0.3, gamma } }],
      });
      const expected = perTensor(base, (name, b) => {
        const sparse = [0, 1].map((t) => {
          const d = ref.delta(b.values, fts[t].get(name)!.values);
          const n = d.length;
          const top = Math.floor(n * gamma);
          const keep = Math.min(n - top, Math.floor(n * [0.4, 0.3][t]));
          const order = Array.from(d.keys()).sort((x, y) => Math.abs(d[y]) - Math.abs(d[x]) || x - y);
          const rank = new Float64Array(n);
          order.forEach((idx, r) => (rank[idx] = r));
          return d.map((v, i) => (rank[i] >= top && rank[i] < top + keep ? v : 0));
        });
        return ref.combine(b.values, sparse, { weights: [1, 1], consensus: 'none', normalize: false, lambda: 1 });
      });
      assertClose(out, rounded(expected));
    }
  });

  it('a global weight is every model\'s weight (mergekit), a per-model one overrides it', async () => {
    await run('w-global', { merge_method: 'task_arithmetic', base_model: './base', models: [{ model: './ft0' }, { model: './ft1', parameters: { weight: 0.25 } }], parameters: { weight: 0.5 } });
    await run('w-model', { merge_method: 'task_arithmetic', base_model: './base', models: [{ model: './ft0', parameters: { weight: 0.5 } }, { model: './ft1', parameters: { weight: 0.25 } }] });
    const bytes = (n: string) => fs.readFileSync(path.join(dir, `out-${n}`, 'model.safetensors'));
    assert.ok(bytes('w-global').equals(bytes('w-model')));
  });

  it('linear is the weighted average', async () => {
    const out = await run('linear', {
      merge_method: 'linear',
      models: [{ model: './ft0', parameters: { weight: 1 } }, { model: './ft1', parameters: { weight: 3 } }],
    });
    const expected = perTensor(base, (name) => {
      const a = fts[0].get(name)!.values, b = fts[1].get(name)!.values;
      return a.map((v, i) => (v + 3 * b[i]) / 4);
    });
    assertClose(out, rounded(expected));
  });

  it('slerp with t = 0 returns the base exactly, and follows the reference for a t gradient', async () => {
    const zero = await run('slerp0', {
      merge_method: 'slerp', base_model: './base', models: [{ model: './base' }, { model: './ft0' }], parameters: { t: 0 },
    });
    for (const [name, b] of base) assert.deepEqual(Array.from(zero.get(name)!.values), Array.from(b.values), name);

    const out = await run('slerp', {
      merge_method: 'slerp', base_model: './base', models: [{ model: './base' }, { model: './ft0' }],
      parameters: { t: [{ filter: 'mlp', value: [0.2, 0.8] }, { value: 0.5 }] },
    });
    const expected = perTensor(base, (name, b) => {
      const layer = /layers\.(\d+)\./.exec(name);
      const t = name.includes('mlp') ? 0.2 + 0.6 * Number(layer![1]) : 0.5;
      const v0 = b.values, v1 = fts[0].get(name)!.values;
      const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i], 0);
      const n0 = Math.sqrt(dot(v0, v0)), n1 = Math.sqrt(dot(v1, v1));
      const cos = dot(v0, v1) / (n0 * n1);
      if (Math.abs(cos) > 0.9995) return v0.map((v, i) => (1 - t) * v + t * v1[i]);
      const th = Math.acos(cos);
      return v0.map((v, i) => (Math.sin((1 - t) * th) * v + Math.sin(t * th) * v1[i]) / Math.sin(th));
    });
    assertClose(out, rounded(expected));
  });

  it('model_stock of two identical fine-tunes returns that fine-tune; three follow the reference', async () => {
    const twin = path.join(dir, 'ft0-twin');
    fs.cpSync(path.join(dir, 'ft0'), twin, { recursive: true });
    const same = await run('stock2', { merge_method: 'model_stock', base_model: './base', models: [{ model: './ft0' }, { model: './ft0-twin' }] });
    for (const [name, t] of fts[0]) assert.deepEqual(Array.from(same.get(name)!.values), Array.from(t.values), name);

    const out = await run('stock3', {
      merge_method: 'model_stock', base_model: './base', models: [{ model: './ft0' }, { model: './ft1' }, { model: './ft2' }],
    });
    const expected = perTensor(base, (name, b) => {
      const ds = fts.map((ft) => ref.delta(b.values, ft.get(name)!.values));
      const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i], 0);
      let cos = 0;
      for (const [i, j] of [[0, 1], [0, 2], [1, 2]]) cos += dot(ds[i], ds[j]) / Math.sqrt(dot(ds[i], ds[i]) * dot(ds[j], ds[j]));
      cos /= 3;
      const t = (3 * cos) / (1 + 2 * cos);
      return b.values.map((v, i) => (t * (fts[0].get(name)!.values[i] + fts[1].get(name)!.values[i] + fts[2].get(name)!.values[i])) / 3 + (1 - t) * v);
    });
    assertClose(out, rounded(expected));
  });

  it('passthrough slices stack and renumber layers and rewrite num_hidden_layers', async () => {
    const outDir = path.join(dir, 'out-stack');
    await merge({
      merge_method: 'passthrough',
      slices: [{ sources: [{ model: './ft0', layer_range: [0, 2] }] }, { sources: [{ model: './ft1', layer_range: [1, 2] }] }],
    }, outDir, { baseDir: dir, overwrite: true });
    const out = await ref.loadModel(outDir);
    const config = JSON.parse(fs.readFileSync(path.join(outDir, 'config.json'), 'utf8'));
    assert.equal(config.num_hidden_layers, 3);
    const q = 'self_attn.q_proj.weight';
    assert.deepEqual(Array.from(out.get(`model.layers.1.${q}`)!.values), Array.from(fts[0].get(`model.layers.1.${q}`)!.values));
    assert.deepEqual(Array.from(out.get(`model.layers.2.${q}`)!.values), Array.from(fts[1].get(`model.layers.1.${q}`)!.values));
    assert.deepEqual(Array.from(out.get('model.embed_tokens.weight')!.values), Array.from(fts[0].get('model.embed_tokens.weight')!.values));
  });

  it('magnitude with scope: row keeps floor(d·row) per row', async () => {
    const out = await run('rows', {
      merge_method: 'ties', base_model: './base', models: [{ model: './ft0', parameters: { density: 0.25 } }, { model: './ft1', parameters: { density: 0.25 } }],
      parameters: { scope: 'row', consensus: 'none', normalize: false },
    });
    const expected = perTensor(base, (name, b) => {
      const rows = b.shape.length >= 2 ? b.shape[0] : 1;
      const sparse = [0, 1].map((t) => {
        const d = ref.delta(b.values, fts[t].get(name)!.values);
        const m = d.length / rows;
        const outRow = new Float64Array(d.length);
        for (let r = 0; r < rows; r++) {
          const row = d.subarray(r * m, (r + 1) * m);
          const keep = ref.topK(row, Math.floor(0.25 * m));
          row.forEach((v, i) => (outRow[r * m + i] = keep[i] ? v : 0));
        }
        return outRow;
      });
      return ref.combine(b.values, sparse, { weights: [1, 1], consensus: 'none', normalize: false, lambda: 1 });
    });
    assertClose(out, rounded(expected));
  });

  it('magnitude with scope: model keeps the top floor(d·N) of the whole model, ties in model order', async () => {
    const out = await run('model-scope', {
      merge_method: 'ties', base_model: './base', models: [{ model: './ft0', parameters: { density: 0.2 } }],
      parameters: { scope: 'model', consensus: 'none', normalize: false },
    });
    const names = orderTensorNames([...base.keys()]);
    const deltas = names.map((n) => ref.delta(base.get(n)!.values, fts[0].get(n)!.values));
    const all = new Float64Array(deltas.reduce((s, d) => s + d.length, 0));
    let offset = 0;
    for (const d of deltas) { all.set(d, offset); offset += d.length; }
    const keep = ref.topK(all, Math.floor(0.2 * all.length));
    offset = 0;
    const expected: ref.RefModel = new Map();
    names.forEach((n, j) => {
      const b = base.get(n)!;
      const start = offset;
      expected.set(n, { shape: b.shape, values: b.values.map((v, i) => v + (keep[start + i] ? deltas[j][i] : 0)) });
      offset += deltas[j].length;
    });
    assertClose(out, rounded(expected));
    // Some tensors keep far more than 20% and some far less: the threshold is the model's.
    const fractions = names.map((n, j) => deltas[j].filter((_, i) => out.get(n)!.values[i] !== base.get(n)!.values[i]).length / deltas[j].length);
    assert.ok(Math.max(...fractions) - Math.min(...fractions) > 0.2, fractions.join(' '));
  });

  it('sparsify: dp and owl_layer prune at DP densities inside task arithmetic', async () => {
    for (const sparsify of ['dp', 'owl_layer']) {
      const out = await run(`ta-${sparsify}`, {
        merge_method: 'task_arithmetic', base_model: './base',
        models: [{ model: './ft0', parameters: { density: 0.3 } }],
        parameters: { sparsify },
      });
      const offsets = ref.dpOffsets(base, fts[0], 0.08, 5, 3, sparsify === 'dp');
      const expected = perTensor(base, (name, b) => {
        const d = ref.delta(b.values, fts[0].get(name)!.values);
        if (!ref.isPrunable(name, b.shape)) return b.values.map((v, i) => v + d[i]);
        const keep = ref.topK(d, Math.floor(ref.clampDensity(0.3 + offsets.get(name)!) * d.length));
        return b.values.map((v, i) => v + (keep[i] ? d[i] : 0));
      });
      assertClose(out, rounded(expected));
    }
  });
});

describe('41 methods: mergekit-format configs run as written', function () {
  this.timeout(300000);
  const fixtures = path.join(repoRoot, 'test', 'fixtures', 'configs');

  it('every fixture config parses and merges on a generated family', async () => {
    const dir = tmpDir('fixtures');
    await writeLlamaFamily(dir, {
      layers: 32, hidden: 16, intermediate: 24, vocab: 32, heads: 2, fineTunes: ['ft0', 'ft1', 'ft2', 'math', 'code'],
      dtype: 'BF16', seed: 3,
    });
    const ran: string[] = [];
    for (const file of fs.readdirSync(fixtures).filter((f) => f.endsWith('.yml'))) {
      fs.copyFileSync(path.join(fixtures, file), path.join(dir, file));
      const out = path.join(dir, `out-${file}`);
      const report = await plan(path.join(dir, file));
      assert.ok(report.tensors > 0 && report.bytesToRead > 0, `plan of ${file}`);
      await merge(path.join(dir, file), out);
      assert.ok(fs.existsSync(path.join(out, 'config.json')), file);
      ran.push(file);
    }
    assert.ok(ran.length >= 9, ran.join(', '));
  });
});
