import * as assert from 'assert';
import { parseConfig, parseConfigObject } from '../lib/config';

/** Problems for a YAML config (baseDir '/'). */
function problemsOf(text: string): string[] {
  const result = parseConfig(text, { file: 'merge.yml', baseDir: '/' });
  if (result.problems.length === 0) assert.ok(result.config, 'no problems but no config');
  else assert.strictEqual(result.config, undefined);
  return result.problems;
}

function warningsOf(text: string): string[] {
  const result = parseConfig(text, { file: 'merge.yml', baseDir: '/' });
  assert.deepStrictEqual(result.problems, []);
  return result.warnings;
}

/** Exactly one problem, matching every pattern. */
function expectOne(text: string, ...patterns: RegExp[]): string {
  const problems = problemsOf(text);
  assert.strictEqual(problems.length, 1, `expected one problem, got:\n${problems.join('\n')}`);
  for (const pattern of patterns) assert.match(problems[0], pattern);
  return problems[0];
}

const TIES_HEAD = 'merge_method: ties\nbase_model: ./base\n';

describe('config: validation rules', () => {
  describe('names', () => {
    it('unknown merge_method, normalising - and case: dare-ties → dare_ties', () => {
      expectOne('merge_method: dare-ties\nbase_model: b\nmodels: [{model: a}]\n',
        /^merge\.yml:1: merge_method: unknown merge_method "dare-ties"; did you mean dare_ties\?/);
      expectOne('merge_method: TIES\nbase_model: b\nmodels: [{model: a}]\n', /did you mean ties\?/);
      expectOne('merge_method: task_arithmatic\nbase_model: b\nmodels: [{model: a}]\n', /did you mean task_arithmetic\?/);
      expectOne('merge_method: sleerp\nbase_model: b\nmodels: [{model: a}]\n', /did you mean slerp\?/);
    });

    it('no suggestion when nothing is close', () => {
      const problem = expectOne('merge_method: frobnicate\nmodels: [{model: a}]\n', /unknown merge_method "frobnicate" \(valid: /);
      assert.doesNotMatch(problem, /did you mean/);
    });

    it('missing merge_method', () => {
      expectOne('models: [{model: a}]\n', /merge_method: missing merge_method \(one of .*ties/);
    });

    it('unknown top-level key with suggestion and line', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nbase_modle: x\n`, /^merge\.yml:4: base_modle: unknown top-level key "base_modle"; did you mean base_model\?/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nout-dtype: float16\n`, /out-dtype: .*did you mean out_dtype\?/);
    });

    it('known but unsupported mergekit keys say so', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nmodules: {}\n`, /modules: modules \(multi-module merges\) is not supported yet/);
    });

    it('unknown per-model key with suggestion', () => {
      expectOne(`${TIES_HEAD}models:\n  - model: a\n    paramters: {weight: 1}\n`,
        /^merge\.yml:5: models\[0\]\.paramters: unknown model key "paramters"; did you mean parameters\?/);
    });

    it('unknown parameter name with suggestion and field path', () => {
      expectOne(`${TIES_HEAD}models:\n  - model: a\n  - model: b\n    parameters:\n      densty: 0.5\n`,
        /^merge\.yml:7: models\[1\]\.parameters\.densty: unknown parameter "densty" for ties; did you mean density\?/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters:\n  normalise: true\n`, /parameters\.normalise: .*did you mean normalize\?/);
    });

    it('parameters of another method are unknown', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {t: 0.5}\n`, /parameters\.t: unknown parameter "t" for ties/);
    });
  });

  describe('scope', () => {
    it('a global-only parameter given per model', () => {
      expectOne(`${TIES_HEAD}models:\n  - model: a\n    parameters: {normalize: true}\n`,
        /models\[0\]\.parameters\.normalize: normalize can only be given globally/);
      expectOne('merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n    parameters: {t: 0.5}\nparameters: {t: 0.5}\n',
        /models\[1\]\.parameters\.t: t can only be given globally/);
    });

    it('a per-model-only parameter given globally', () => {
      expectOne('merge_method: passthrough\nmodels: [{model: a}]\nparameters: {scale: 0.5}\n', /parameters\.scale: scale is a per-model parameter/);
    });

    it('a both-scoped parameter is fine at either level (a global weight is every model\'s, as mergekit)', () => {
      assert.deepStrictEqual(problemsOf(`${TIES_HEAD}models:\n  - model: a\n    parameters: {density: 0.3}\nparameters: {density: 0.5}\n`), []);
      assert.deepStrictEqual(problemsOf(`${TIES_HEAD}models: [{model: a}]\nparameters: {weight: 0.5}\n`), []);
    });
  });

  describe('types and ranges', () => {
    it('density out of [0, 1], also inside gradients and filters', () => {
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: 1.2}}]\n`, /models\[0\]\.parameters\.density: density must be in \[0, 1\], got 1\.2/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [0.1, -0.5]}}]\n`, /models\[0\]\.parameters\.density\[1\]: density must be in \[0, 1\], got -0\.5/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [{filter: mlp, value: [0.5, 2]}, {value: 0.5}]}}]\n`,
        /models\[0\]\.parameters\.density\[0\]\.value\[1\]: density must be in \[0, 1\], got 2/);
    });

    it('weights must be finite numbers', () => {
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {weight: .inf}}]\n`, /models\[0\]\.parameters\.weight: weight must be finite/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {weight: heavy}}]\n`, /weight must be a number, got the string "heavy"/);
      const problems = problemsOf(`${TIES_HEAD}models: [{model: a, parameters: {weight: -1}}]\n`);
      assert.deepStrictEqual(problems, [], 'negative weights subtract a task vector');
    });

    it('booleans', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {normalize: maybe}\n`, /parameters\.normalize: normalize must be true or false/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {normalize: 2}\n`, /normalize must be true or false, got number 2/);
    });

    it('string choices with suggestion', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {consensus: summ}\n`, /parameters\.consensus: consensus must be one of none, sum, count, got "summ"; did you mean sum\?/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {sparsify: magnitude-outliers}\n`, /did you mean magnitude_outliers\?/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {rescale: 3}\n`, /rescale must be one of inverse, l1, none/);
    });

    it('gradients only where the parameter varies per tensor', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {dp_lambda: [0.1, 0.2], sparsify: dp}\n`, /parameters\.dp_lambda: dp_lambda takes a single number, not a list/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {seed: [{filter: mlp, value: 1}]}\n`, /parameters\.seed: seed cannot vary per tensor/);
      expectOne(`${TIES_HEAD}models: [{model: a}]\nparameters: {seed: 1.5}\n`, /seed must be an integer/);
    });

    it('empty gradients, mixed lists, bad filter entries', () => {
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: []}}]\n`, /density: an empty gradient list has no value/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [0.5, {filter: mlp, value: 1}]}}]\n`, /density\[0\]: expected \{filter, value\}/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [{filter: mlp}]}}]\n`, /density\[0\]: a \{filter, value\} entry needs a value/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [{filtr: mlp, value: 1}]}}]\n`, /density\[0\]\.filtr: unknown key "filtr"; did you mean filter\?/);
      expectOne(`${TIES_HEAD}models: [{model: a, parameters: {density: [{filter: 3, value: 1}]}}]\n`, /density\[0\]\.filter: filter must be a string/);
    });

    it('a single {filter, value} mapping is a one-entry filter list (mergekit)', () => {
      const result = parseConfig(`${TIES_HEAD}models: [{model: a, parameters: {density: {filter: mlp, value: 0.3}}}]\n`, { baseDir: '/' });
      assert.deepStrictEqual(result.problems, []);
      assert.deepStrictEqual(result.config!.models[0].parameters.density, [{ filter: 'mlp', value: 0.3 }]);
    });

    it('a catch-all entry before other entries draws a warning', () => {
      const warnings = warningsOf(`${TIES_HEAD}models: [{model: a, parameters: {density: [{value: 0.5}, {filter: mlp, value: 0.3}]}}]\n`);
      assert.match(warnings.join('\n'), /density\[0\]: an entry without filter matches every tensor/);
    });

    it('dtype and out_dtype, with aliases', () => {
      expectOne(`${TIES_HEAD}models: [{model: a}]\ndtype: bfloat61\n`, /dtype: dtype must be one of float32, bfloat16, float16, got "bfloat61"; did you mean bfloat16\?/);
      const result = parseConfig(`${TIES_HEAD}models: [{model: a}]\ndtype: bf16\nout_dtype: fp16\n`, { baseDir: '/' });
      assert.strictEqual(result.config!.dtype, 'bfloat16');
      assert.strictEqual(result.config!.outDtype, 'float16');
      assert.strictEqual(parseConfig(`${TIES_HEAD}models: [{model: a}]\n`, { baseDir: '/' }).config!.dtype, 'float32');
    });
  });

  describe('dppa partitions and amplify', () => {
    const DPPA = 'merge_method: dppa\nbase_model: ./base\nmodels: [{model: a}]\n';

    it('partitions strictly increasing in (0, 1]', () => {
      expectOne(`${DPPA}parameters: {partitions: [0.2, 0.1], amplify: [1, 1]}\n`, /parameters\.partitions: partitions must be densities strictly increasing in \(0, 1\]/);
      expectOne(`${DPPA}parameters: {partitions: [0.1, 0.1], amplify: [1, 1]}\n`, /strictly increasing/);
      expectOne(`${DPPA}parameters: {partitions: [0, 0.1], amplify: [1, 1]}\n`, /strictly increasing/);
      expectOne(`${DPPA}parameters: {partitions: [0.1, 1.5], amplify: [1, 1]}\n`, /parameters\.partitions\[1\]: partitions must be in \[0, 1\], got 1\.5/);
    });

    it('amplify has the length of partitions and is ≥ 0', () => {
      expectOne(`${DPPA}parameters: {partitions: [0.1, 0.2, 0.3]}\n`, /amplify needs one factor per partition for a: partitions has 3, amplify has 2/);
      expectOne(`${DPPA}parameters: {amplify: [1.8]}\n`, /parameters\.amplify: amplify needs one factor per partition for a: the default partitions have 2, amplify has 1/);
      expectOne(`${DPPA}parameters: {amplify: [1.8, -1]}\n`, /parameters\.amplify\[1\]: amplify must be in ≥ 0, got -1/);
    });

    it('density alone means one partition; amplify then needs one factor', () => {
      assert.deepStrictEqual(problemsOf(`${DPPA}parameters: {density: 0.2}\n`), []);
      assert.deepStrictEqual(problemsOf(`${DPPA}parameters: {density: 0.2, amplify: [1.5]}\n`), []);
      expectOne(`${DPPA}parameters: {density: 0.2, amplify: [1.5, 1]}\n`, /density means 1 partition, amplify has 2/);
    });

    it('partitions given per model are checked per model', () => {
      expectOne('merge_method: dppa\nbase_model: ./base\nmodels:\n  - model: a\n    parameters: {partitions: [0.3, 0.2]}\nparameters: {amplify: [1, 1]}\n',
        /models\[0\]\.parameters\.partitions: partitions must be densities strictly increasing/);
    });

    it('a lone number is a one-element list', () => {
      const result = parseConfig(`${DPPA}parameters: {partitions: 0.1, amplify: 2}\n`, { baseDir: '/' });
      assert.deepStrictEqual(result.problems, []);
      assert.deepStrictEqual(result.config!.parameters.partitions, [0.1]);
      assert.deepStrictEqual(result.config!.parameters.amplify, [2]);
    });
  });

  describe('models, base and slices', () => {
    it('missing base_model when the method needs one', () => {
      expectOne('merge_method: ties\nmodels: [{model: a}, {model: b}]\n', /base_model: ties needs a base_model/);
      assert.deepStrictEqual(problemsOf('merge_method: linear\nmodels: [{model: a}, {model: b}]\n'), []);
    });

    it('slerp takes exactly two models, counting the base, and needs t', () => {
      expectOne('merge_method: slerp\nbase_model: a\nmodels: [{model: a}, {model: b}, {model: c}]\nparameters: {t: 0.5}\n',
        /^merge\.yml:3: models: slerp takes exactly 2 models \(counting base_model\), got 3/);
      expectOne('merge_method: slerp\nbase_model: a\nmodels: [{model: a}]\nparameters: {t: 0.5}\n', /slerp needs at least 2 models \(counting base_model\), got 1/);
      expectOne('merge_method: slerp\nbase_model: a\nmodels: [{model: b}]\n', /parameters: slerp needs parameter t/);
      assert.deepStrictEqual(problemsOf('merge_method: slerp\nbase_model: a\nmodels: [{model: b}]\nparameters: {t: 0.5}\n'), []);
    });

    it('a needs-base method needs at least one model besides the base', () => {
      expectOne('merge_method: dppa\nbase_model: a\nmodels: [{model: a}]\n', /dppa needs at least 2 models \(counting base_model\), got 1/);
      expectOne('merge_method: model_stock\nbase_model: a\nmodels: [{model: b}]\n', /model_stock needs at least 3 models/);
    });

    it('models must be a list of {model, parameters}', () => {
      expectOne(`${TIES_HEAD}models: a\n`, /models: models must be a list of \{model, parameters\}, got the string "a"/);
      expectOne(`${TIES_HEAD}models: [a]\n`, /models\[0\]: write a model as \{model: a\}, not a bare string/);
      expectOne(`${TIES_HEAD}models: [{parameters: {weight: 1}}]\n`, /models\[0\]\.model: missing model/);
      expectOne(`${TIES_HEAD}models: [{model: 3}]\n`, /models\[0\]\.model: model must be a path string, got number 3/);
      expectOne(`${TIES_HEAD}models: [{model: a}, {model: ./a}]\n`, /models\[1\]\.model: \.\/a is listed twice \(also models\[0\]\)/);
    });

    it('models or slices, exactly one', () => {
      expectOne(`${TIES_HEAD}`, /models: missing models/);
      expectOne('merge_method: passthrough\nmodels: [{model: a}]\nslices: [{sources: [{model: a, layer_range: [0, 2]}]}]\n', /slices: give either models or slices, not both/);
    });

    it('layer ranges', () => {
      expectOne('merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [4, 2]\n',
        /^merge\.yml:5: slices\[0\]\.sources\[0\]\.layer_range: layer_range \[4, 2\] must satisfy 0 ≤ start < end/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0.5, 2]}]}]\n', /layer_range must hold two integers/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1, 2]}]}]\n', /layer_range must be \[start, end\]/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a}]}]\n', /slices\[0\]\.sources\[0\]\.layer_range: missing layer_range/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a, layer_rnage: [0, 2]}]}]\n', /layer_rnage: unknown source key "layer_rnage"; did you mean layer_range\?/);
    });

    it('slice sources must span the same number of layers; passthrough takes one per slice', () => {
      expectOne('merge_method: slerp\nbase_model: a\nparameters: {t: 0.5}\nslices: [{sources: [{model: a, layer_range: [0, 4]}, {model: b, layer_range: [0, 5]}]}]\n',
        /slices\[0\]\.sources: all sources of a slice must span the same number of layers, got 4, 5/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 4]}, {model: b, layer_range: [0, 4]}]}]\n',
        /slices\[0\]\.sources: passthrough copies one model per slice/);
      expectOne('merge_method: passthrough\nmodels: [{model: a}, {model: b}]\n', /models: passthrough copies a single model/);
    });

    it('several slices only with passthrough; per-slice parameters not yet', () => {
      expectOne(`${TIES_HEAD}slices:\n  - sources: [{model: a, layer_range: [0, 2]}]\n  - sources: [{model: b, layer_range: [2, 4]}]\n`,
        /slices: several slices are only supported with passthrough/);
      expectOne('merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 2]}], parameters: {scale: 1}}]\n',
        /slices\[0\]\.parameters: per-slice parameters are not supported yet/);
    });
  });

  describe('tokenizer', () => {
    const HEAD = `${TIES_HEAD}models: [{model: ./ft0}]\n`;

    it('union is a clear problem', () => {
      expectOne(`${HEAD}tokenizer_source: union\n`, /tokenizer_source: union is not supported yet; use base or a model name/);
      expectOne(`${HEAD}tokenizer: {source: union}\n`, /tokenizer\.source: union is not supported yet/);
    });

    it('base, a model as written, or another spelling of a model path', () => {
      const check = (source: string, expected: string) => {
        const result = parseConfig(`${HEAD}tokenizer_source: ${source}\n`, { baseDir: '/' });
        assert.deepStrictEqual(result.problems, []);
        assert.strictEqual(result.config!.tokenizerSource, expected);
      };
      check('base', 'base');
      check('./ft0', './ft0');
      check('ft0', './ft0');
      check('./base', './base');
    });

    it('an unknown model with suggestion', () => {
      expectOne(`${HEAD}tokenizer_source: ./ft1\n`, /tokenizer_source: tokenizer source "\.\/ft1" is neither base nor one of the models; did you mean \.\/ft0\?/);
    });

    it('tokenizer and tokenizer_source together', () => {
      expectOne(`${HEAD}tokenizer_source: base\ntokenizer: {source: base}\n`, /tokenizer: give either tokenizer_source or tokenizer, not both/);
    });

    it('tokenizer keys: source read, tokens ignored with a warning', () => {
      expectOne(`${HEAD}tokenizer: {sorce: base}\n`, /tokenizer\.sorce: unknown tokenizer key "sorce"; did you mean source\?/);
      const warnings = warningsOf(`${HEAD}tokenizer: {source: base, tokens: {x: {source: base}}}\n`);
      assert.match(warnings.join('\n'), /tokenizer\.tokens: tokens is accepted but ignored/);
    });
  });

  describe('cross-parameter rules', () => {
    it('della needs 0 < density ± epsilon < 1', () => {
      expectOne('merge_method: della\nbase_model: b\nmodels: [{model: a, parameters: {density: 0.9, epsilon: 0.15}}]\n',
        /models\[0\]\.parameters\.density: della_magprune needs 0 < density ± epsilon < 1 for a, got density 0\.9, epsilon 0\.15/);
    });

    it('breadcrumbs needs density + gamma ≤ 1', () => {
      expectOne('merge_method: breadcrumbs\nbase_model: b\nmodels: [{model: a, parameters: {density: 0.995}}]\nparameters: {gamma: 0.01}\n',
        /magnitude_outliers needs density \+ gamma ≤ 1 for a, got density 0\.995, gamma 0\.01/);
    });

    it('parameters on the base model entry draw a warning', () => {
      const warnings = warningsOf('merge_method: ties\nbase_model: ./b\nmodels: [{model: b, parameters: {weight: 1}}, {model: a}]\n');
      assert.match(warnings.join('\n'), /models\[0\]\.parameters: the parameters of the base model are ignored by ties/);
    });

    it('options the chosen sparsifier ignores draw a warning', () => {
      const warnings = warningsOf(`${TIES_HEAD}models: [{model: a, parameters: {gamma: 0.1}}]\nparameters: {dp_lambda: 0.1}\n`);
      assert.match(warnings.join('\n'), /models\[0\]\.parameters\.gamma: gamma has no effect with sparsify: magnitude/);
      assert.match(warnings.join('\n'), /parameters\.dp_lambda: dp_lambda has no effect/);
      const none = warningsOf('merge_method: task_arithmetic\nbase_model: b\nmodels: [{model: a, parameters: {density: 0.5}}]\n');
      assert.match(none.join('\n'), /density has no effect with sparsify: none/);
      assert.deepStrictEqual(warningsOf(`${TIES_HEAD}models: [{model: a}]\nparameters: {sparsify: dp, dp_lambda: 0.1}\n`), []);
    });
  });

  describe('every problem at once', () => {
    it('collects problems from every part of the config', () => {
      const problems = problemsOf([
        'merge_method: ties',
        'base_model: ./base',
        'models:',
        '  - model: ./ft0',
        '    parameters:',
        '      densty: 0.5',
        '      weight: [1, x]',
        '  - model: ./ft1',
        '    parmeters: {}',
        'parameters:',
        '  normalize: sometimes',
        '  consensus: summ',
        'dtype: float64',
        'tokenizer_source: union',
        'extra: 1',
        '',
      ].join('\n'));
      const joined = problems.join('\n');
      assert.strictEqual(problems.length, 8, joined);
      assert.match(joined, /merge\.yml:6: models\[0\]\.parameters\.densty: .*did you mean density\?/);
      assert.match(joined, /merge\.yml:7: models\[0\]\.parameters\.weight\[1\]: weight must be a number/);
      assert.match(joined, /merge\.yml:9: models\[1\]\.parmeters: .*did you mean parameters\?/);
      assert.match(joined, /merge\.yml:11: parameters\.normalize: /);
      assert.match(joined, /merge\.yml:12: parameters\.consensus: .*did you mean sum\?/);
      assert.match(joined, /merge\.yml:13: dtype: /);
      assert.match(joined, /merge\.yml:14: tokenizer_source: union is not supported yet/);
      assert.match(joined, /merge\.yml:15: extra: unknown top-level key/);
      const lines = problems.map((problem) => Number(/^merge\.yml:(\d+):/.exec(problem)![1]));
      assert.deepStrictEqual(lines, [...lines].sort((a, b) => a - b), 'problems come in file order');
    });

    it('still reports parameter shape problems when merge_method is unknown', () => {
      const problems = problemsOf('merge_method: tie\nbase_model: b\nmodels: [{model: a, extra: 1}]\n');
      assert.strictEqual(problems.length, 2, problems.join('\n'));
      assert.match(problems.join('\n'), /did you mean ties\?/);
      assert.match(problems.join('\n'), /models\[0\]\.extra: unknown model key/);
    });

    it('object input: paths without lines', () => {
      const result = parseConfigObject({ merge_method: 'ties', base_model: 'b', models: [{ model: 'a', parameters: { densty: 0.5 } }] }, { baseDir: '/' });
      assert.deepStrictEqual(result.problems, ['models[0].parameters.densty: unknown parameter "densty" for ties; did you mean density? (valid: weight, density, gamma, epsilon, lambda, normalize, int8_mask, sparsify, scope, ties, rescale, consensus, seed, dp_lambda, dp_module_outlier, dp_layer_outlier, prune_dense)']);
      const notObject = parseConfigObject([1, 2], { baseDir: '/' });
      assert.match(notObject.problems[0], /a config must be a mapping/);
    });
  });
});
