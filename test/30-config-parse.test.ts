import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { describeConfig, loadConfig, parseConfig } from '../lib/config';
import { DppaError } from '../lib/errors';
import { tmpDir } from './hooks';

const fixtures = path.resolve(__dirname, '../../test/fixtures/configs');

describe('config: parsing the mergekit fixtures', () => {
  const files = fs.readdirSync(fixtures).filter((file) => file.endsWith('.yml'));

  it('has a fixture for every method family the brief lists', () => {
    for (const name of ['ties', 'dare_ties', 'breadcrumbs', 'slerp', 'passthrough', 'dppa', 'task_arithmetic', 'linear', 'model_stock', 'della']) {
      assert.ok(files.includes(`${name}.yml`), `missing fixture ${name}.yml`);
    }
  });

  for (const file of files) {
    it(`parses ${file} with no problems`, () => {
      const config = loadConfig(path.join(fixtures, file));
      assert.strictEqual(config.mergeMethod, path.basename(file, '.yml'));
      assert.strictEqual(config.file, path.join(fixtures, file));
      assert.strictEqual(config.baseDir, fixtures);
    });
  }

  it('resolves model paths against the config folder and keeps the names as written', () => {
    const config = loadConfig(path.join(fixtures, 'ties.yml'));
    assert.strictEqual(config.baseModel, path.join(fixtures, 'base'));
    assert.strictEqual(config.baseModelName, './base');
    assert.deepStrictEqual(config.models.map((m) => m.name), ['./base', './ft0', './ft1', './ft2']);
    assert.deepStrictEqual(config.models.map((m) => m.model), ['base', 'ft0', 'ft1', 'ft2'].map((n) => path.join(fixtures, n)));
    assert.deepStrictEqual(config.models.map((m) => m.isBase), [true, false, false, false]);
    assert.strictEqual(config.dtype, 'float16');
  });

  it('keeps absolute model paths and resolves relative ones against an explicit baseDir', () => {
    const result = parseConfig('merge_method: linear\nmodels:\n  - model: /abs/a\n  - model: ../b\n', { baseDir: '/x/y' });
    assert.deepStrictEqual(result.problems, []);
    assert.deepStrictEqual(result.config!.models.map((m) => m.model), ['/abs/a', '/x/b']);
  });

  it('reads dppa per algorithms.md §5', () => {
    const config = loadConfig(path.join(fixtures, 'dppa.yml'));
    assert.deepStrictEqual(config.parameters.partitions, [0.1, 0.2]);
    assert.deepStrictEqual(config.parameters.amplify, [1.8, 1.0]);
    assert.strictEqual(config.parameters.consensus, 'none');
    assert.strictEqual(config.dtype, 'float32');
    assert.strictEqual(config.outDtype, 'bfloat16');
    assert.strictEqual(config.seed, 0);
    assert.deepStrictEqual(config.models[1].parameters, { weight: 1.0, density: 0.2 });
  });

  it('reads slices into a typed structure, models in first-appearance order, and a shared layer range', () => {
    const slerp = loadConfig(path.join(fixtures, 'slerp.yml'));
    assert.strictEqual(slerp.slices!.length, 1);
    assert.deepStrictEqual(slerp.layerRange, [0, 32]);
    assert.deepStrictEqual(slerp.models.map((m) => m.name), ['./ft0', './ft1']);
    assert.ok(slerp.models[0].isBase);

    const passthrough = loadConfig(path.join(fixtures, 'passthrough.yml'));
    assert.deepStrictEqual(passthrough.slices!.map((s) => s.sources.map((src) => [src.name, src.layerRange])), [
      [['./ft0', [0, 24]]],
      [['./ft1', [8, 32]]],
    ]);
    assert.strictEqual(passthrough.layerRange, undefined);
    assert.strictEqual(passthrough.slices![1].sources[0].model, path.join(fixtures, 'ft1'));
  });

  it('reads mergekit\'s boolean rescale and 1.0 booleans', () => {
    const della = loadConfig(path.join(fixtures, 'della.yml'));
    assert.strictEqual(della.parameters.rescale, 'inverse');
    const result = parseConfig('merge_method: ties\nbase_model: b\nmodels: [{model: a}]\nparameters: {normalize: 0, rescale: false}\n', { baseDir: '/' });
    assert.deepStrictEqual(result.problems, []);
    assert.strictEqual(result.config!.parameters.normalize, false);
    assert.strictEqual(result.config!.parameters.rescale, 'none');
  });

  it('accepts a plain object (API users), resolving paths against baseDir', () => {
    const config = loadConfig({
      merge_method: 'task_arithmetic',
      base_model: './base',
      models: [{ model: './ft0', parameters: { weight: 0.5 } }],
    }, { baseDir: '/models' });
    assert.strictEqual(config.baseModel, '/models/base');
    assert.strictEqual(config.models[0].model, '/models/ft0');
    assert.strictEqual(config.file, undefined);
  });

  it('loadConfig throws one E_CONFIG DppaError listing every problem', () => {
    const dir = tmpDir('config-load');
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(file, 'merge_method: dare-ties\nbase_model: ./base\nmodels:\n  - model: ./a\n    parameters:\n      densty: 0.5\ndtyp: float32\n');
    assert.throws(() => loadConfig(file), (error: unknown) => {
      assert.ok(error instanceof DppaError);
      assert.strictEqual(error.code, 'E_CONFIG');
      assert.strictEqual(error.problems.length, 2, error.message);
      assert.match(error.message, /2 problems/);
      assert.match(error.message, /merge_method: unknown merge_method "dare-ties"; did you mean dare_ties\?/);
      assert.match(error.message, /bad\.yml:7: dtyp: unknown top-level key "dtyp"; did you mean dtype\?/);
      return true;
    });
  });

  it('reports a file that cannot be read as E_IO', () => {
    assert.throws(() => loadConfig('/nonexistent/config.yml'), (error: unknown) => error instanceof DppaError && error.code === 'E_IO');
  });

  it('reports YAML syntax errors with their line', () => {
    const result = parseConfig('merge_method: ties\nmodels:\n  - model: a\n   bad: [\n', { file: 'c.yml', baseDir: '/' });
    assert.strictEqual(result.config, undefined);
    assert.ok(result.problems.length > 0);
    assert.match(result.problems[0], /^c\.yml:\d+: YAML syntax/);
  });

  it('reports duplicate keys', () => {
    const result = parseConfig('merge_method: ties\nmerge_method: linear\nmodels: [{model: a}]\n', { baseDir: '/' });
    assert.strictEqual(result.config, undefined);
    assert.match(result.problems.join('\n'), /line 2/);
  });

  it('collects warnings for accepted-but-ignored keys', () => {
    const result = parseConfig('merge_method: linear\nmodels: [{model: a}]\nchat_template: chatml\nname: my-merge\n', { baseDir: '/' });
    assert.deepStrictEqual(result.problems, []);
    assert.strictEqual(result.config!.name, 'my-merge');
    assert.match(result.warnings.join('\n'), /line 3: chat_template: .*ignored/);
  });

  it('describeConfig gives normalized YAML that parses back to the same config', () => {
    for (const file of ['ties.yml', 'slerp.yml', 'dppa.yml', 'passthrough.yml', 'della.yml']) {
      const config = loadConfig(path.join(fixtures, file));
      const text = describeConfig(config);
      assert.ok(!text.includes(fixtures), 'the model card must not leak local absolute paths');
      const again = parseConfig(text, { baseDir: fixtures });
      assert.deepStrictEqual(again.problems, [], text);
      assert.deepStrictEqual(again.config!.models, config.models);
      assert.deepStrictEqual(again.config!.parameters, config.parameters);
      assert.deepStrictEqual(again.config!.slices, config.slices);
      assert.strictEqual(again.config!.dtype, config.dtype);
    }
    const slerpText = describeConfig(loadConfig(path.join(fixtures, 'slerp.yml')));
    assert.match(slerpText, /layer_range: \[0, 32\]/);
    assert.match(slerpText, /- filter: self_attn\n\s+value: \[0, 0\.5, 0\.3, 0\.7, 1\]/);
  });
});
