import * as assert from 'assert';
import { damerauDistance, nearestName } from '../lib/config';
import { findParamSpec, methodNames, methodSchemas, requiredParams } from '../lib/methods/schemas';

function defaultOf(method: string, name: string): unknown {
  const spec = findParamSpec(method, name);
  assert.ok(spec, `${method} has no ${name}`);
  return spec.default;
}

describe('method schemas', () => {
  it('declares every method of the brief', () => {
    const expected = ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'della',
      'della_linear', 'linear', 'slerp', 'model_stock', 'pcb', 'dppa', 'passthrough'];
    assert.deepStrictEqual([...methodNames].sort(), [...expected].sort());
    for (const [key, schema] of Object.entries(methodSchemas)) assert.strictEqual(schema.name, key);
  });

  it('is internally consistent: unique names, help, defaults of the right kind and in range', () => {
    for (const schema of Object.values(methodSchemas)) {
      assert.ok(schema.summary.length > 0);
      const names = schema.params.map((spec) => spec.name);
      assert.strictEqual(new Set(names).size, names.length, `${schema.name} repeats a parameter`);
      for (const spec of schema.params) {
        const where = `${schema.name}.${spec.name}`;
        assert.ok(spec.help.length > 0, `${where} has no help`);
        if (spec.perTensor) assert.strictEqual(spec.kind, 'number', `${where}: only numbers vary per tensor`);
        if (spec.default === undefined) continue;
        switch (spec.kind) {
          case 'number':
            assert.strictEqual(typeof spec.default, 'number', where);
            if (spec.min !== undefined) assert.ok((spec.default as number) >= spec.min, where);
            if (spec.max !== undefined) assert.ok((spec.default as number) <= spec.max, where);
            break;
          case 'boolean':
            assert.strictEqual(typeof spec.default, 'boolean', where);
            break;
          case 'string':
            assert.ok(spec.choices?.includes(spec.default as string), `${where}: default not among the choices`);
            break;
          case 'numberList':
            assert.ok(Array.isArray(spec.default), where);
            break;
        }
      }
      for (const required of requiredParams[schema.name] ?? []) {
        assert.strictEqual(findParamSpec(schema.name, required)?.default, undefined, `${schema.name}.${required} is required and has a default`);
      }
    }
  });

  it('weight and density: per model or global (as mergekit), and per tensor', () => {
    for (const method of ['ties', 'dare_ties', 'task_arithmetic', 'dppa', 'linear']) {
      const weight = findParamSpec(method, 'weight')!;
      assert.strictEqual(weight.scope, 'both', method);
      assert.strictEqual(weight.perTensor, true, method);
    }
    for (const method of ['ties', 'dare_ties', 'dare_linear', 'breadcrumbs', 'della', 'dppa']) {
      const density = findParamSpec(method, 'density')!;
      assert.strictEqual(density.scope, 'both', method);
      assert.strictEqual(density.perTensor, true, method);
      assert.deepStrictEqual([density.min, density.max], [0, 1]);
    }
  });

  it('follows mergekit\'s presets (and algorithms.md for dare_ties)', () => {
    const presets: Record<string, [string, string, boolean, string]> = {
      task_arithmetic: ['none', 'none', false, 'none'],
      ties: ['magnitude', 'sum', true, 'none'],
      dare_linear: ['random', 'none', false, 'inverse'],
      dare_ties: ['random', 'sum', false, 'inverse'],
      breadcrumbs: ['magnitude_outliers', 'none', false, 'none'],
      breadcrumbs_ties: ['magnitude_outliers', 'sum', false, 'none'],
      della: ['della_magprune', 'sum', true, 'inverse'],
      della_linear: ['della_magprune', 'none', false, 'inverse'],
      dppa: ['dp', 'none', false, 'none'],
    };
    for (const [method, [sparsify, consensus, normalize, rescale]] of Object.entries(presets)) {
      assert.deepStrictEqual(
        [defaultOf(method, 'sparsify'), defaultOf(method, 'consensus'), defaultOf(method, 'normalize'), defaultOf(method, 'rescale')],
        [sparsify, consensus, normalize, rescale], method);
      assert.strictEqual(defaultOf(method, 'lambda'), 1.0);
      assert.strictEqual(defaultOf(method, 'int8_mask'), false);
      assert.strictEqual(defaultOf(method, 'ties'), 'index');
      assert.strictEqual(methodSchemas[method].needsBase, true);
    }
    assert.strictEqual(defaultOf('breadcrumbs', 'gamma'), 0.01);
    assert.strictEqual(defaultOf('della', 'epsilon'), 0.15);
    assert.strictEqual(defaultOf('della', 'scope'), 'row');
    assert.strictEqual(defaultOf('ties', 'scope'), 'tensor');
    assert.strictEqual(defaultOf('ties', 'density'), 1.0);
    assert.strictEqual(defaultOf('linear', 'normalize'), true);
    assert.strictEqual(defaultOf('model_stock', 'filter_wise'), false);
  });

  it('dppa per algorithms.md §5', () => {
    assert.deepStrictEqual(defaultOf('dppa', 'partitions'), [0.1, 0.2]);
    assert.deepStrictEqual(defaultOf('dppa', 'amplify'), [1.8, 1.0]);
    assert.strictEqual(defaultOf('dppa', 'dp_lambda'), 0.08);
    assert.strictEqual(defaultOf('dppa', 'dp_module_outlier'), 5);
    assert.strictEqual(defaultOf('dppa', 'dp_layer_outlier'), 3);
    assert.strictEqual(defaultOf('dppa', 'seed'), 0);
    assert.strictEqual(defaultOf('dppa', 'amplify_dense'), true);
    assert.strictEqual(defaultOf('dppa', 'prune_dense'), false);
    assert.strictEqual(defaultOf('dppa', 'density'), undefined, 'absent density means: use partitions');
    assert.strictEqual(findParamSpec('dppa', 'partitions')!.kind, 'numberList');
    assert.deepStrictEqual(findParamSpec('dppa', 'consensus')!.choices, ['none', 'sum', 'count']);
  });

  it('model counts (including the base) and bases', () => {
    const counts = Object.fromEntries(Object.values(methodSchemas).map((s) => [s.name, [s.needsBase, s.minModels, s.maxModels]]));
    assert.deepStrictEqual(counts.slerp, [true, 2, 2]);
    assert.deepStrictEqual(counts.linear, [false, 1, undefined]);
    assert.deepStrictEqual(counts.dppa, [true, 2, undefined]);
    assert.deepStrictEqual(counts.model_stock, [true, 3, undefined]);
    assert.deepStrictEqual(counts.passthrough, [false, 1, undefined]);
    assert.deepStrictEqual(requiredParams.slerp, ['t']);
    assert.strictEqual(findParamSpec('slerp', 't')!.perTensor, true);
    assert.strictEqual(findParamSpec('slerp', 't')!.scope, 'global');
  });

  it('generic options have their documented choices', () => {
    assert.deepStrictEqual(findParamSpec('ties', 'sparsify')!.choices,
      ['magnitude', 'random', 'magnitude_outliers', 'della_magprune', 'dp', 'owl_layer', 'none']);
    assert.deepStrictEqual(findParamSpec('ties', 'scope')!.choices, ['tensor', 'row', 'model']);
    assert.deepStrictEqual(findParamSpec('ties', 'ties')!.choices, ['index', 'drop']);
    assert.deepStrictEqual(findParamSpec('ties', 'rescale')!.choices, ['inverse', 'l1', 'none']);
  });
});

describe('config: name suggestions', () => {
  it('Damerau distance counts a transposition as one edit', () => {
    assert.strictEqual(damerauDistance('denstiy', 'density'), 1);
    assert.strictEqual(damerauDistance('densty', 'density'), 1);
    assert.strictEqual(damerauDistance('', 'abc'), 3);
    assert.strictEqual(damerauDistance('ties', 'ties'), 0);
  });

  it('normalises case and separators before comparing', () => {
    assert.strictEqual(nearestName('dare-ties', methodNames), 'dare_ties');
    assert.strictEqual(nearestName('Task Arithmetic', methodNames), 'task_arithmetic');
    assert.strictEqual(nearestName('DELLA', methodNames), 'della');
  });

  it('suggests nothing for unrelated names', () => {
    assert.strictEqual(nearestName('xyz', methodNames), undefined);
    assert.strictEqual(nearestName('completely_different', methodNames), undefined);
  });
});
