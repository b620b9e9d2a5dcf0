/**
 * DP's invariants (algorithms.md §2) and DPA's band values (§3), on the pure density
 * function and on whole merges.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { merge, plan } from '../lib/index';
import { native } from '../lib/native';
import { planMerge } from '../lib/plan/plan';
import { RUNTIME_OVERHEAD_BYTES } from '../lib/run/memory';
import { ProgressReporter } from '../lib/run/progress';
import { gatherDpOffsets } from '../lib/run/statistics';
import { computeDpOffsets, dpDensity, ModuleStatistics } from '../lib/methods/dp-densities';
import { bandFactors } from '../lib/methods/sparsify/dp';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';
import { rng } from './ref/kernels-ref';
import * as ref from './ref/merge-ref';

function randomModules(layers: number, perLayer: number, numel: (j: number) => number, seed: number): ModuleStatistics[] {
  const random = rng(seed);
  const modules: ModuleStatistics[] = [];
  for (let l = 0; l < layers; l++) {
    for (let j = 0; j < perLayer; j++) {
      const n = numel(j);
      modules.push({
        name: `model.layers.${l}.m${j}.weight`, layer: l, numel: n,
        moduleOutliers: Math.floor(random() * 0.05 * n), layerOutliers: Math.floor(random() * 0.03 * n),
      });
    }
  }
  return modules;
}

describe('42 DP densities', () => {
  it('with equal-size layers the numel-weighted mean density is 1 − s (before clamping)', () => {
    for (const seed of [1, 2, 3]) {
      const modules = randomModules(6, 7, (j) => [4096, 4096, 1024, 1024, 11008, 11008, 11008][j] * 8, seed);
      const offsets = computeDpOffsets(modules, { lambda: 0.08, moduleOffsets: true });
      for (const d of [0.1, 0.2, 0.5]) {
        let weighted = 0, total = 0;
        for (const m of modules) {
          weighted += m.numel * (d + offsets.offsetOf.get(m.name)!);
          total += m.numel;
        }
        assert.ok(Math.abs(weighted / total - d) < 1e-12, `seed ${seed}, d ${d}: ${weighted / total}`);
      }
    }
  });

  it('the largest offset of each kind is exactly λ, and all-equal statistics give no offsets', () => {
    const modules = randomModules(4, 3, () => 1000, 9);
    const offsets = computeDpOffsets(modules, { lambda: 0.08, moduleOffsets: true });
    const layerOffsets = [...offsets.layerOffset.values()];
    assert.ok(Math.abs(Math.max(...layerOffsets.map(Math.abs)) - 0.08) < 1e-15);
    const flat = modules.map((m) => ({ ...m, moduleOutliers: 10, layerOutliers: 10 }));
    const none = computeDpOffsets(flat, { lambda: 0.08, moduleOffsets: true });
    for (const m of flat) assert.equal(none.offsetOf.get(m.name), 0);
  });

  it('densities at two rates differ by the rates\' difference, so masks are nested; clamped to [0, 1]', () => {
    const modules = randomModules(5, 4, (j) => 500 * (j + 1), 4);
    const offsets = computeDpOffsets(modules, { lambda: 0.3, moduleOffsets: true });
    for (const m of modules) {
      const o = offsets.offsetOf.get(m.name)!;
      const loose = dpDensity(0.5, o), tight = dpDensity(0.4, o);
      if (0.4 + o >= 0 && 0.5 + o <= 1) assert.ok(Math.abs(loose - tight - 0.1) < 1e-12);
      assert.ok(loose >= tight, 'nested');
      assert.ok(dpDensity(0.05, o) >= 0 && dpDensity(0.98, o) <= 1);
    }
    assert.equal(dpDensity(0.1, -0.5), 0);
    assert.equal(dpDensity(0.9, 0.5), 1);
  });

  it('band factors are the running maxima of α from the loose end', () => {
    assert.deepEqual(Array.from(bandFactors([1.8, 1.0])), [1.8, 1.0]);
    assert.deepEqual(Array.from(bandFactors([1.0, 1.5])), [1.5, 1.5]);
    assert.deepEqual(Array.from(bandFactors([0, 1.2, 0])), [1.2, 1.2, 0]);
  });
});

describe('42 DP and DPA on whole merges', function () {
  this.timeout(120000);
  let dir: string;
  let base: ref.RefModel, ft: ref.RefModel;

  before(async () => {
    dir = tmpDir('dp');
    await writeLlamaFamily(dir, { layers: 3, hidden: 32, intermediate: 72, vocab: 48, heads: 4, fineTunes: 1, dtype: 'F32', seed: 21 });
    base = await ref.loadModel(path.join(dir, 'base'));
    ft = await ref.loadModel(path.join(dir, 'ft0'));
  });

  const single = (parameters: object) => ({
    merge_method: 'dppa', base_model: './base', models: [{ model: './ft0' }], parameters, out_dtype: 'float32',
  });

  async function run(name: string, parameters: object): Promise<ref.RefModel> {
    const out = path.join(dir, name);
    await merge(single(parameters), out, { baseDir: dir, overwrite: true });
    return ref.loadModel(out);
  }

  function keptMask(out: ref.RefModel, name: string): boolean[] {
    const b = base.get(name)!.values, o = out.get(name)!.values;
    return Array.from(o, (v, i) => v !== b[i]);
  }

  it('the statistics pass gives the same offsets however its reads are laid out (two fine-tunes read ahead, one, one tensor at a time)', async () => {
    const family2 = tmpDir('dp-layouts');
    await writeLlamaFamily(family2, { layers: 3, hidden: 32, intermediate: 72, vocab: 48, heads: 4, fineTunes: 3, dtype: 'BF16', seed: 5 });
    const config = {
      merge_method: 'dppa', base_model: './base',
      models: [{ model: './ft0' }, { model: './ft1' }, { model: './ft2' }],
      parameters: { partitions: [0.1, 0.2], amplify: [1.8, 1] },
    };
    const mergePlan = await planMerge(config, { baseDir: family2, native: native() });
    try {
      // One layer's prunable bf16 tensors, each page-rounded (4 attention, 3 MLP): budgets and
      // scratch buffers are picked on either side of each layout's need.
      const layerBytes = 4 * 4096 + 3 * 8192;
      const gather = (budget: number, scratchBytes?: number) =>
        gatherDpOffsets(mergePlan, {
          progress: new ProgressReporter(undefined),
          allowNonfinite: false,
          budget: RUNTIME_OVERHEAD_BYTES + budget,
          scratch: scratchBytes === undefined ? undefined : () => new Uint8Array(scratchBytes),
        });
      const aheadTwo = await gather(1e9, 1e6);
      assert.equal(aheadTwo.length, 3);
      assert.ok(aheadTwo.every((o) => o !== undefined));
      assert.deepEqual(await gather(1e9, layerBytes * 2.5), aheadTwo, 'a scratch with room for one fine-tune layer');
      assert.deepEqual(await gather(layerBytes), aheadTwo, 'a budget below one layer of base and fine-tune: one tensor at a time');
      assert.deepEqual(await gather(1e9), aheadTwo, 'no scratch buffer');
    } finally {
      await mergePlan.close();
    }
  });

  it('masks at 0.1 ⊆ masks at 0.2 for every prunable tensor', async () => {
    const tight = await run('tight', { partitions: [0.1], amplify: [1] });
    const loose = await run('loose', { partitions: [0.2], amplify: [1] });
    for (const [name, b] of base) {
      if (!ref.isPrunable(name, b.shape)) continue;
      const t = keptMask(tight, name), l = keptMask(loose, name);
      t.forEach((kept, i) => assert.ok(!kept || l[i], `${name}[${i}] kept at 0.1 but not at 0.2`));
      assert.ok(t.filter(Boolean).length < l.filter(Boolean).length, name);
    }
  });

  it('λ = 0 is plain magnitude pruning at the uniform density', async () => {
    const out = await run('lambda0', { partitions: [0.2], amplify: [1], dp_lambda: 0 });
    for (const [name, b] of base) {
      if (!ref.isPrunable(name, b.shape)) continue;
      const d = ref.delta(b.values, ft.get(name)!.values);
      const keep = ref.topK(d, Math.floor(0.2 * d.length));
      const o = out.get(name)!.values;
      o.forEach((v, i) => assert.equal(v, Math.fround(b.values[i] + (keep[i] ? d[i] : 0)), `${name}[${i}]`));
    }
  });

  it('α = [1, 1] equals DP at the loosest rate, and bands get max(α_k..α_K)·δ', async () => {
    const dp = await run('dp-loose', { partitions: [0.2], amplify: [1] });
    const both = await run('dpa-11', { partitions: [0.1, 0.2], amplify: [1, 1] });
    for (const [name] of base) assert.deepEqual(Array.from(both.get(name)!.values), Array.from(dp.get(name)!.values), name);

    const amplified = await run('dpa-2-05', { partitions: [0.1, 0.2], amplify: [2, 0.5] });
    const tight = await run('dp-tight', { partitions: [0.1], amplify: [1] });
    for (const [name, b] of base) {
      const d = ref.delta(b.values, ft.get(name)!.values);
      const o = amplified.get(name)!.values;
      if (!ref.isPrunable(name, b.shape)) {
        o.forEach((v, i) => assert.equal(v, Math.fround(b.values[i] + Math.fround(2 * d[i])), `${name} dense ×max(α)`));
        continue;
      }
      const inTight = keptMask(tight, name), inLoose = keptMask(dp, name);
      o.forEach((v, i) => {
        const factor = inTight[i] ? 2 : inLoose[i] ? 0.5 : 0;
        assert.equal(v, Math.fround(b.values[i] + Math.fround(factor * d[i])), `${name}[${i}]`);
      });
    }
  });

  it('plan reports per-partition densities that differ by the partitions\' difference', async () => {
    const report = await plan(single({ partitions: [0.1, 0.3], amplify: [1.8, 1] }), { statistics: true, baseDir: dir });
    const densities = Object.values(report.densities!)[0];
    assert.equal(Object.keys(densities).length, 21);
    for (const [name, [a, b]] of Object.entries(densities)) {
      if (a > 0 && b < 1) assert.ok(Math.abs(b - a - 0.2) < 1e-12, name);
    }
  });
});
