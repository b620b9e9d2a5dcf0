/**
 * Tokenizers and embeddings: vocabularies that differ are merged over the common rows and
 * the base's further rows kept; tied embeddings get no lm_head; tokenizer_source picks the
 * folder whose tokenizer files are copied.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { merge } from '../lib/index';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';
import * as ref from './ref/merge-ref';

describe('43 vocabularies, tied embeddings, tokenizer source', function () {
  this.timeout(120000);

  it('merges embeddings and head over the common rows, keeps the base\'s extra rows, and warns with the sizes', async () => {
    const dir = tmpDir('vocab');
    // The base has 72 rows (say, padded); the fine-tunes 64 and 80.
    await writeLlamaFamily(path.join(dir, 'b'), { layers: 2, hidden: 16, intermediate: 32, vocab: 72, heads: 2, fineTunes: 0, dtype: 'F32', seed: 1 });
    await writeLlamaFamily(path.join(dir, 'f'), {
      layers: 2, hidden: 16, intermediate: 32, vocab: 72, heads: 2, fineTunes: 2, vocabPerModel: [64, 80], dtype: 'F32', seed: 1,
    });
    const warnings: string[] = [];
    const summary = await merge({
      merge_method: 'task_arithmetic', base_model: './b/base',
      models: [{ model: './f/ft0' }, { model: './f/ft1' }],
    }, path.join(dir, 'out'), { baseDir: dir });
    warnings.push(...summary.warnings);
    const base = await ref.loadModel(path.join(dir, 'b', 'base'));
    const ft0 = await ref.loadModel(path.join(dir, 'f', 'ft0'));
    const ft1 = await ref.loadModel(path.join(dir, 'f', 'ft1'));
    const out = await ref.loadModel(path.join(dir, 'out'));
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const b = base.get(name)!, o = out.get(name)!;
      assert.deepEqual(o.shape, [72, 16], name);
      for (let i = 0; i < 64 * 16; i++) {
        const expected = Math.fround(b.values[i] + Math.fround(Math.fround(ft0.get(name)!.values[i] - b.values[i]) + Math.fround(ft1.get(name)!.values[i] - b.values[i])));
        assert.ok(Math.abs(o.values[i] - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `${name}[${i}]`);
      }
      for (let i = 64 * 16; i < 72 * 16; i++) assert.equal(o.values[i], b.values[i], `${name}[${i}] is the base's row`);
      assert.ok(warnings.some((w) => w.includes(name) && w.includes('72') && w.includes('64')), warnings.join('\n'));
    }
  });

  it('a base with tie_word_embeddings writes no lm_head', async () => {
    const dir = tmpDir('tied');
    await writeLlamaFamily(dir, { layers: 1, hidden: 16, intermediate: 32, vocab: 32, heads: 2, fineTunes: 1, tieEmbeddings: true, dtype: 'BF16', seed: 2 });
    await merge({ merge_method: 'task_arithmetic', base_model: './base', models: [{ model: './ft0' }] }, path.join(dir, 'out'), { baseDir: dir });
    const out = await ref.loadModel(path.join(dir, 'out'));
    assert.ok(!out.has('lm_head.weight'));
    assert.ok(out.has('model.embed_tokens.weight'));
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'config.json'), 'utf8'));
    assert.equal(config.tie_word_embeddings, true);
  });

  it('tokenizer_source copies that model\'s tokenizer; union is refused with a clear message', async () => {
    const dir = tmpDir('tokenizer');
    await writeLlamaFamily(dir, { layers: 1, hidden: 16, intermediate: 32, vocab: 32, heads: 2, fineTunes: 1, dtype: 'BF16', seed: 3 });
    const marker = '{"marker": "ft0 tokenizer"}';
    fs.writeFileSync(path.join(dir, 'ft0', 'tokenizer_config.json'), marker);
    const config = { merge_method: 'task_arithmetic', base_model: './base', models: [{ model: './ft0' }] };
    await merge({ ...config, tokenizer_source: './ft0' }, path.join(dir, 'from-ft0'), { baseDir: dir });
    assert.equal(fs.readFileSync(path.join(dir, 'from-ft0', 'tokenizer_config.json'), 'utf8'), marker);
    await merge({ ...config, tokenizer_source: 'base' }, path.join(dir, 'from-base'), { baseDir: dir });
    assert.notEqual(fs.readFileSync(path.join(dir, 'from-base', 'tokenizer_config.json'), 'utf8'), marker);
    await assert.rejects(merge({ ...config, tokenizer_source: 'union' }, path.join(dir, 'union'), { baseDir: dir }), /union/);
    assert.ok(!fs.existsSync(path.join(dir, 'union')));
  });
});
