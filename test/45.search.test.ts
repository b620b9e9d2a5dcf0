/**
 * The DPA factor search (algorithms.md §3): greedy coordinate ascent in steps of 0.1 from
 * [1.8, 0], every point logged, the best config written; through the API and the CLI.
 * The evaluator scores closeness to a merge made with known factors, so the path is known.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { merge, searchAmplification } from '../lib/index';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';
import * as ref from './ref/merge-ref';

const repoRoot = path.resolve(__dirname, '..', '..');

describe('45 DPA factor search', function () {
  this.timeout(300000);
  let dir: string;
  let target: ref.RefModel;
  const config = {
    merge_method: 'dppa', base_model: './base', models: [{ model: './ft0' }, { model: './ft1' }],
    parameters: { partitions: [0.1, 0.2] },
  };

  before(async () => {
    dir = tmpDir('search');
    await writeLlamaFamily(dir, { layers: 2, hidden: 32, intermediate: 64, vocab: 32, heads: 2, fineTunes: 2, dtype: 'F32', seed: 8 });
    await merge({ ...config, parameters: { ...config.parameters, amplify: [2.1, 1.3] } }, path.join(dir, 'target'), { baseDir: dir });
    target = await ref.loadModel(path.join(dir, 'target'));
  });

  /** Minus the squared distance to the target merge: 0 exactly at α = [2.1, 1.3]. */
  async function closeness(modelDir: string): Promise<number> {
    const model = await ref.loadModel(modelDir);
    let distance = 0;
    for (const [name, t] of target) {
      const values = model.get(name)!.values;
      t.values.forEach((v, i) => (distance += (values[i] - v) ** 2));
    }
    return -distance;
  }

  it('walks coordinate by coordinate from [1.8, 0] to the best factors, logging every point', async () => {
    const steps: number[][] = [];
    const result = await searchAmplification({
      config, baseDir: dir, evaluate: closeness, onStep: (s) => steps.push(s.factors),
      bestConfigPath: path.join(dir, 'best.yml'), keepBest: path.join(dir, 'best'),
    });
    assert.deepEqual(result.factors, [2.1, 1.3]);
    assert.ok(result.score === 0, String(result.score));
    assert.deepEqual(steps, [
      [1.8, 0], [1.9, 0], [2, 0], [2.1, 0], [2.2, 0], // α₁ raised while the score improves, then one step back
      [2.1, 1], [2.1, 1.1], [2.1, 1.2], [2.1, 1.3], [2.1, 1.4], // α₂ starts at 1.0
    ]);
    assert.equal(result.evaluations.length, steps.length);
    assert.deepEqual(parse(fs.readFileSync(path.join(dir, 'best.yml'), 'utf8')).parameters.amplify, [2.1, 1.3]);
    assert.ok((await closeness(path.join(dir, 'best'))) === 0, 'the best candidate is kept');
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.dppa-search-')), [], 'candidates are cleaned up');
  });

  it('dppa search on the CLI, with an evaluator module', () => {
    const evaluator = path.join(dir, 'evaluate.mjs');
    fs.writeFileSync(evaluator, `
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const { ModelSource } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'index.js'))});
// Higher is better: a stand-in score, the closeness of one tensor's sum to 0.
export default async function evaluate(modelDir) {
  const model = await ModelSource.open(modelDir);
  const bytes = await model.read('model.layers.0.self_attn.q_proj.weight');
  await model.close();
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  let sum = 0;
  for (const v of values) sum += v;
  return -Math.abs(sum - ${JSON.stringify(0)});
}
`);
    const file = path.join(dir, 'search.yml');
    fs.writeFileSync(file, 'merge_method: dppa\nbase_model: ./base\nmodels:\n  - model: ./ft0\nparameters:\n  partitions: [0.1, 0.2]\n');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'dppa.js'), 'search', file, '--evaluator', evaluator], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /#0 amplify \[1\.8, 0\.0\] score/);
    assert.match(r.stdout, /best amplify \[/);
    const best = parse(fs.readFileSync(path.join(dir, 'search.best.yml'), 'utf8'));
    assert.equal(best.parameters.amplify.length, 2);
    assert.deepEqual(best.parameters.partitions, [0.1, 0.2], 'the rest of the config is kept');
  });

  it('refuses a config that is not dppa, and an evaluator without a function', async () => {
    await assert.rejects(searchAmplification({ config: { ...config, merge_method: 'ties', parameters: {} }, baseDir: dir, evaluate: closeness }), /tunes dppa/);
    const bad = path.join(dir, 'bad.mjs');
    fs.writeFileSync(bad, 'export const x = 1;\n');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'dppa.js'), 'search', path.join(dir, 'search.yml'), '--evaluator', bad], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /default async function/);
  });
});
