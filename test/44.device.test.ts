/**
 * Device selection: `device: cpu | cuda | auto` in the API and `--device` in the CLI. Where no
 * GPU is usable, 'cuda' is a clear error naming why and 'auto' runs on the CPU; where one is,
 * test/60.cuda.test.ts compares every GPU kernel with the CPU.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { merge } from '../lib/index';
import { native } from '../lib/native';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';

describe('44 device selection', function () {
  this.timeout(60000);
  const addon = native();
  afterEach(() => addon.setDevice('cpu'));

  it('cpu is the default; auto picks the GPU only when one is usable', () => {
    assert.equal(addon.device, 'cpu');
    assert.equal(addon.setDevice('auto'), addon.cuda.available ? 'cuda' : 'cpu');
    assert.equal(addon.setDevice('cpu'), 'cpu');
    assert.throws(() => addon.setDevice('tpu' as 'cpu'), TypeError);
  });

  it('cuda without a usable GPU is an error that says why, and changes nothing', function () {
    if (addon.cuda.available) this.skip();
    assert.throws(() => addon.setDevice('cuda'), (e: Error) => e.message.includes('unavailable'));
    assert.equal(addon.device, 'cpu');
  });

  it('merge(…, { device }) runs on the device asked for, or refuses before any work', async function () {
    const dir = tmpDir('device');
    await writeLlamaFamily(dir, { layers: 1, hidden: 16, intermediate: 32, vocab: 16, heads: 2, fineTunes: 2, dtype: 'BF16', seed: 5 });
    const config = { merge_method: 'ties', base_model: './base', models: [{ model: './ft0', parameters: { density: 0.5 } }, { model: './ft1', parameters: { density: 0.5 } }] };
    await merge(config, path.join(dir, 'auto'), { baseDir: dir, device: 'auto' });
    if (!addon.cuda.available) {
      await assert.rejects(merge(config, path.join(dir, 'cuda'), { baseDir: dir, device: 'cuda' }), (e: { code?: string; message: string }) =>
        e.code === 'E_ARGUMENT' && /cuda/.test(e.message));
    }
  });
});
