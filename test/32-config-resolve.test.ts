import * as assert from 'assert';
import * as path from 'path';
import {
  evaluateSetting, gradientPosition, interpolateGradient, loadConfig, parseConfig, requireNumber,
  resolveGlobalParam, resolveModelParam, resolveParam, resolveParamWithOrigin, resolveSourceParam,
} from '../lib/config';
import { partitionsOf } from '../lib/methods/dppa';
import { paramSource } from '../lib/plan/params';
import type { MergeConfig, TensorContext } from '../lib/config';
import { DppaError } from '../lib/errors';
import { findParamSpec } from '../lib/methods/schemas';
import type { ParamSpec } from '../lib/methods/types';

const fixtures = path.resolve(__dirname, '../../test/fixtures/configs');
const density = findParamSpec('ties', 'density')!;
const partitions = findParamSpec('dppa', 'partitions')!;

function layer(index: number, numLayers: number, tensorName = `model.layers.${index}.mlp.up_proj.weight`): TensorContext {
  return { tensorName, layerIndex: index, numLayers };
}

function configOf(text: string): MergeConfig {
  const result = parseConfig(text, { baseDir: '/' });
  assert.deepStrictEqual(result.problems, []);
  return result.config!;
}

describe('config: parameter resolution (mergekit semantics)', () => {
  describe('gradients', () => {
    it('a number is a constant everywhere', () => {
      for (let i = 0; i < 5; i++) assert.strictEqual(resolveParam(density, 0.3, layer(i, 5)), 0.3);
      assert.strictEqual(resolveParam(density, 0.3, { tensorName: 'lm_head.weight', layerIndex: null, numLayers: 5 }), 0.3);
    });

    it('[0, 1] at layer 1 of 3 is exactly 0.5', () => {
      assert.strictEqual(resolveParam(density, [0, 1], layer(1, 3)), 0.5);
      assert.strictEqual(resolveParam(density, [0, 1], layer(0, 3)), 0);
      assert.strictEqual(resolveParam(density, [0, 1], layer(2, 3)), 1);
    });

    it('a list of N values spans [0, 1] in N − 1 equal segments', () => {
      const gradient = [0.1, 0.5, 0.9];
      // 5 layers: t = 0, .25, .5, .75, 1 → scaled 0, .5, 1, 1.5, 2
      const expected = [0.1, 0.3, 0.5, 0.7, 0.9];
      for (let i = 0; i < 5; i++) {
        const value = resolveParam(density, gradient, layer(i, 5)) as number;
        assert.ok(Math.abs(value - expected[i]) < 1e-15, `layer ${i}: ${value} vs ${expected[i]}`);
      }
      // Knots are hit exactly (no float drift from t · (N − 1)).
      assert.strictEqual(resolveParam(density, gradient, layer(2, 5)), 0.5);
      assert.strictEqual(resolveParam(density, gradient, layer(4, 5)), 0.9);
    });

    it('knots are exact even where t · (N − 1) is not representable', () => {
      // 31 layers, 4 values: knots at layers 0, 10, 20, 30.
      const gradient = [0.7, 0.3, 0.1, 0.9];
      assert.strictEqual(interpolateGradient(gradient, layer(10, 31)), 0.3);
      assert.strictEqual(interpolateGradient(gradient, layer(20, 31)), 0.1);
      assert.strictEqual(interpolateGradient(gradient, layer(30, 31)), 0.9);
      const between = interpolateGradient(gradient, layer(15, 31));
      assert.ok(Math.abs(between - 0.2) < 1e-15);
    });

    it('matches mergekit\'s formula on many layer counts', () => {
      const gradient = [1, 0.7, 0.1, 0.4, 0.6];
      for (const numLayers of [2, 3, 7, 32, 80]) {
        for (let i = 0; i < numLayers; i++) {
          const t = i / (numLayers - 1);
          const scaled = t * (gradient.length - 1);
          const i0 = Math.min(Math.floor(scaled + 1e-12), gradient.length - 1);
          const i1 = Math.min(gradient.length - 1, i0 + 1);
          const frac = scaled - i0;
          const reference = (1 - frac) * gradient[i0] + frac * gradient[i1];
          const value = interpolateGradient(gradient, layer(i, numLayers));
          assert.ok(Math.abs(value - reference) < 1e-12, `${numLayers} layers, layer ${i}: ${value} vs ${reference}`);
        }
      }
    });

    it('one layer: t = 1 (mergekit); a one-value list is a constant', () => {
      assert.strictEqual(resolveParam(density, [0.2, 0.8], layer(0, 1)), 0.8);
      assert.strictEqual(resolveParam(density, [0.4], layer(3, 7)), 0.4);
    });

    it('outside the layers: embeddings at t = 0, the rest (norm, head) at t = 1, or as told', () => {
      const outside = (tensorName: string, position?: 'before' | 'after'): TensorContext =>
        position ? { tensorName, layerIndex: null, numLayers: 4, position } : { tensorName, layerIndex: null, numLayers: 4 };
      assert.strictEqual(gradientPosition(outside('model.embed_tokens.weight')), 0);
      assert.strictEqual(gradientPosition(outside('transformer.wte.weight')), 0);
      assert.strictEqual(gradientPosition(outside('model.norm.weight')), 1);
      assert.strictEqual(gradientPosition(outside('lm_head.weight')), 1);
      assert.strictEqual(gradientPosition(outside('lm_head.weight', 'before')), 0);
      assert.strictEqual(resolveParam(density, [0.2, 0.8], outside('model.embed_tokens.weight')), 0.2);
      assert.strictEqual(resolveParam(density, [0.2, 0.8], outside('lm_head.weight')), 0.8);
    });
  });

  describe('filters', () => {
    const filtered = [
      { filter: 'self_attn', value: [0, 1] },
      { filter: 'mlp', value: 0.25 },
      { filter: 'layers.1.', value: 0.9 },
      { value: 0.5 },
    ];

    it('the first entry whose filter is a substring of the tensor name wins', () => {
      assert.strictEqual(resolveParam(density, filtered, layer(1, 3, 'model.layers.1.mlp.up_proj.weight')), 0.25, 'mlp comes before layers.1.');
      assert.strictEqual(resolveParam(density, filtered, layer(1, 3, 'model.layers.1.input_layernorm.weight')), 0.9);
      assert.strictEqual(resolveParam(density, filtered, layer(2, 3, 'model.layers.2.input_layernorm.weight')), 0.5, 'fallback');
    });

    it('values inside filters may be gradients', () => {
      assert.strictEqual(resolveParam(density, filtered, layer(1, 3, 'model.layers.1.self_attn.q_proj.weight')), 0.5);
      assert.strictEqual(resolveParam(density, filtered, layer(2, 3, 'model.layers.2.self_attn.q_proj.weight')), 1);
    });

    it('no match and no fallback: absent, so the default applies', () => {
      const noFallback = [{ filter: 'mlp', value: 0.25 }];
      assert.strictEqual(evaluateSetting(density, noFallback, layer(0, 2, 'model.layers.0.self_attn.o_proj.weight')), undefined);
      assert.strictEqual(resolveParam(density, noFallback, layer(0, 2, 'model.layers.0.self_attn.o_proj.weight')), 1.0);
    });

    it('filter "*" matches everything (mergekit)', () => {
      assert.strictEqual(resolveParam(density, [{ filter: '*', value: 0.3 }], layer(0, 2)), 0.3);
    });

    it('the classic slerp example', () => {
      const config = loadConfig(path.join(fixtures, 'slerp.yml'));
      const t = (tensorName: string, index: number | null) => resolveGlobalParam(config, 't', { tensorName, layerIndex: index, numLayers: 32 });
      assert.strictEqual(t('model.layers.0.self_attn.q_proj.weight', 0), 0);
      assert.strictEqual(t('model.layers.31.self_attn.q_proj.weight', 31), 1);
      assert.strictEqual(t('model.layers.0.mlp.down_proj.weight', 0), 1);
      assert.strictEqual(t('model.layers.31.mlp.down_proj.weight', 31), 0);
      assert.strictEqual(t('model.layers.7.input_layernorm.weight', 7), 0.5);
      assert.strictEqual(t('model.embed_tokens.weight', null), 0.5);
      // 9 layers put the 5 knots of [0, .5, .3, .7, 1] at layers 0, 2, 4, 6, 8: layer 3 is halfway.
      const middle = resolveGlobalParam(config, 't', layer(3, 9, 'model.layers.3.self_attn.q_proj.weight')) as number;
      assert.ok(Math.abs(middle - 0.4) < 1e-15, String(middle));
      assert.strictEqual(resolveGlobalParam(config, 't', layer(4, 9, 'model.layers.4.self_attn.q_proj.weight')), 0.3);
    });
  });

  describe('precedence: per model over global over default', () => {
    const config = configOf([
      'merge_method: ties',
      'base_model: ./base',
      'models:',
      '  - model: ./a',
      '    parameters:',
      '      density: 0.3',
      '      weight: 2',
      '  - model: ./b',
      '    parameters:',
      '      density:',
      '        - filter: mlp',
      '          value: 0.7',
      '  - model: ./c',
      'parameters:',
      '  density: 0.5',
      '  lambda: 0.9',
    ].join('\n'));

    it('a per-model value wins', () => {
      assert.deepStrictEqual(resolveParamWithOrigin(config, 'density', 0, layer(0, 2)), { value: 0.3, origin: 'model' });
      assert.strictEqual(resolveModelParam(config, 'weight', 0), 2);
    });

    it('a per-model filter list with no match falls back to the global value', () => {
      assert.strictEqual(resolveModelParam(config, 'density', 1, layer(0, 2, 'model.layers.0.mlp.up_proj.weight')), 0.7);
      assert.deepStrictEqual(resolveParamWithOrigin(config, 'density', 1, layer(0, 2, 'model.layers.0.self_attn.q_proj.weight')), { value: 0.5, origin: 'global' });
    });

    it('global over default; default when neither', () => {
      assert.strictEqual(resolveModelParam(config, 'density', 2, layer(0, 2)), 0.5);
      assert.deepStrictEqual(resolveParamWithOrigin(config, 'weight', 2), { value: 1.0, origin: 'default' });
      assert.strictEqual(resolveGlobalParam(config, 'lambda'), 0.9);
    });

    it('defaults come from the method\'s schema (mergekit presets)', () => {
      assert.strictEqual(resolveGlobalParam(config, 'normalize'), true);
      assert.strictEqual(resolveGlobalParam(config, 'consensus'), 'sum');
      assert.strictEqual(resolveGlobalParam(config, 'sparsify'), 'magnitude');
      const dareTies = loadConfig(path.join(fixtures, 'dare_ties.yml'));
      assert.strictEqual(resolveGlobalParam(dareTies, 'normalize'), false);
      assert.strictEqual(resolveGlobalParam(dareTies, 'rescale'), 'inverse');
      assert.strictEqual(resolveGlobalParam(dareTies, 'seed'), 42);
      assert.strictEqual(dareTies.seed, 42);
      const taskArithmetic = loadConfig(path.join(fixtures, 'task_arithmetic.yml'));
      assert.strictEqual(resolveGlobalParam(taskArithmetic, 'normalize'), false);
      assert.strictEqual(resolveGlobalParam(taskArithmetic, 'consensus'), 'none');
      const dppa = loadConfig(path.join(fixtures, 'dppa.yml'));
      assert.strictEqual(resolveGlobalParam(dppa, 'amplify_dense'), true);
      assert.strictEqual(resolveGlobalParam(dppa, 'prune_dense'), false);
      assert.strictEqual(resolveGlobalParam(dppa, 'sparsify'), 'dp');
    });

    it('an unknown parameter name is a programming error (E_ARGUMENT)', () => {
      assert.throws(() => resolveGlobalParam(config, 'nope'), (error: unknown) => error instanceof DppaError && error.code === 'E_ARGUMENT');
    });

    it('requireNumber names the model and tensor when a value is missing', () => {
      const slerp = configOf('merge_method: slerp\nbase_model: a\nmodels: [{model: b}]\nparameters:\n  t: [{filter: mlp, value: 0.5}]\n');
      assert.strictEqual(requireNumber(slerp, 't', null, layer(0, 2, 'model.layers.0.mlp.up_proj.weight')), 0.5);
      assert.throws(() => requireNumber(slerp, 't', null, layer(0, 2, 'model.layers.0.self_attn.q_proj.weight')),
        (error: unknown) => error instanceof DppaError && error.code === 'E_CONFIG' && /t has no value for model\.layers\.0\.self_attn/.test(error.message));
    });
  });

  describe('number lists and dppa bands', () => {
    /** dppa's partitions for one model, as the method reads them (lib/methods/dppa.ts). */
    const resolveDppaBands = (config: MergeConfig, modelIndex: number, ctx: TensorContext = layer(0, 1)) => {
      const { densities, amplify } = partitionsOf(paramSource(config, modelIndex, ctx), 'test');
      return { partitions: densities, amplify };
    };

    it('a numberList is the value, not a gradient', () => {
      assert.deepStrictEqual(resolveParam(partitions, [0.1, 0.2], layer(1, 3)), [0.1, 0.2]);
      assert.deepStrictEqual(resolveParam(partitions, undefined, layer(1, 3)), [0.1, 0.2]);
    });

    it('explicit partitions, density alone, or the defaults', () => {
      const dppa = loadConfig(path.join(fixtures, 'dppa.yml'));
      assert.deepStrictEqual(resolveDppaBands(dppa, 0), { partitions: [0.1, 0.2], amplify: [1.8, 1.0] });
      const byDensity = configOf('merge_method: dppa\nbase_model: b\nmodels:\n  - model: a\n    parameters: {density: 0.3}\n  - model: c\n');
      assert.deepStrictEqual(resolveDppaBands(byDensity, 0), { partitions: [0.3], amplify: [1.0] });
      assert.deepStrictEqual(resolveDppaBands(byDensity, 1), { partitions: [0.1, 0.2], amplify: [1.8, 1.0] });
      const withFactor = configOf('merge_method: dppa\nbase_model: b\nmodels: [{model: a}]\nparameters: {density: 0.3, amplify: [2.0]}\n');
      assert.deepStrictEqual(resolveDppaBands(withFactor, 0), { partitions: [0.3], amplify: [2.0] });
      const gradient = configOf('merge_method: dppa\nbase_model: b\nmodels: [{model: a}]\nparameters: {density: [0.2, 0.4]}\n');
      assert.deepStrictEqual(resolveDppaBands(gradient, 0, layer(1, 3)), { partitions: [0.30000000000000004], amplify: [1.0] });
    });
  });

  it('slice sources: a source\'s own parameters over global over default', () => {
    const config = configOf([
      'merge_method: passthrough',
      'slices:',
      '  - sources: [{model: a, layer_range: [0, 4], parameters: {scale: 0.5}}]',
      '  - sources: [{model: a, layer_range: [2, 6]}]',
    ].join('\n'));
    assert.deepStrictEqual(resolveSourceParam(config, 'scale', 0, 0), { value: 0.5, origin: 'model' });
    assert.deepStrictEqual(resolveSourceParam(config, 'scale', 1, 0), { value: 1.0, origin: 'default' });
    assert.throws(() => resolveSourceParam(config, 'scale', 2, 0), (error: unknown) => error instanceof DppaError && error.code === 'E_ARGUMENT');
  });

  it('resolveParam works for a spec written by hand', () => {
    const spec: ParamSpec = { name: 'x', kind: 'number', scope: 'both', default: 7, perTensor: true, help: '' };
    assert.strictEqual(resolveParam(spec, undefined, layer(0, 2)), 7);
    assert.strictEqual(resolveParam(spec, [2, 4], layer(1, 2)), 4);
  });
});
