/**
 * 80: faults around the output and the inputs. An existing output is never written into
 * without --overwrite, and with it is replaced only once the new model is complete; stale
 * temporary folders of killed runs are cleaned at the next run's start; a full disk (a 2 MB
 * tmpfs) and an input truncated after it was opened are clean E_IO errors that leave no
 * temporary folder; NaN/Inf inputs are E_NONFINITE naming the model, tensor and count
 * (--allow-nonfinite merges anyway); a tensor too large for --max-memory is E_MEMORY before
 * any work starts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RUNTIME_OVERHEAD_BYTES } from '../lib/run/memory';
import { inspect, merge, DppaError } from '../lib/index';
import { tmpDir } from './hooks';
import * as ref from './ref/merge-ref';
import {
  copyFolder, deadPid, family, folderDifference, injectBf16, methodConfig, runCli, tempsBeside, writeConfig,
} from './80.helpers';

const isCode = (code: string) => (e: unknown) => e instanceof DppaError && e.code === code;

describe('80 faults: existing output, --overwrite and stale temporary folders', function () {
  this.timeout(120000);
  let dir: string;
  let config: string;
  let reference: string;

  before(async () => {
    dir = await family(tmpDir('80-family'));
    config = writeConfig(dir, 'ta', methodConfig('task_arithmetic'));
    reference = path.join(dir, 'reference');
    await merge(config, reference);
  });

  function oldModel(name: string): string {
    const target = path.join(dir, name);
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'OLD-MODEL'), 'the previous model');
    return target;
  }

  it('refuses an existing folder or file without --overwrite and leaves it untouched', async () => {
    const target = oldModel('existing');
    const r = runCli(['merge', config, target]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /already exists.*--overwrite/);
    assert.deepEqual(fs.readdirSync(target), ['OLD-MODEL']);
    assert.deepEqual(tempsBeside(target), []);

    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a model');
    await assert.rejects(merge(config, file), isCode('E_EXISTS'));
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a model');
    assert.deepEqual(tempsBeside(file), []);
  });

  it('with --overwrite, a run that fails midway leaves the old model intact', async () => {
    const target = oldModel('overwrite-fail');
    const controller = new AbortController();
    let merged = 0;
    await assert.rejects(
      merge(config, target, {
        overwrite: true,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'merge' && ++merged === 5) controller.abort();
        },
      }),
      isCode('E_ABORTED'),
    );
    assert.ok(merged >= 5, 'the abort came during the merge pass');
    assert.deepEqual(fs.readdirSync(target), ['OLD-MODEL']);
    assert.deepEqual(tempsBeside(target), []);
  });

  it('with --overwrite, the old folder is replaced by the complete new model', () => {
    const target = oldModel('overwrite-ok');
    const r = runCli(['merge', config, target, '--overwrite']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!fs.existsSync(path.join(target, 'OLD-MODEL')));
    assert.equal(folderDifference(target, reference), undefined);
    assert.deepEqual(tempsBeside(target), []);
  });

  it('removes temporary folders of dead runs at the start of the next run, keeps those of live ones', async () => {
    const target = path.join(dir, 'stale');
    fs.rmSync(target, { recursive: true, force: true });
    const dead = deadPid();
    const staleTmp = path.join(dir, `.stale.dppa-tmp-${dead}-0123abcd`);
    const liveTmp = path.join(dir, `.stale.dppa-tmp-${process.pid}-89abcdef`);
    for (const d of [staleTmp, liveTmp]) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'model-00001-of-00002.safetensors'), 'half-written');
    }
    await merge(config, target);
    assert.ok(!fs.existsSync(staleTmp), `${staleTmp} of dead pid ${dead} should have been removed`);
    assert.ok(fs.existsSync(liveTmp), 'a live process\'s temporary folder is never touched');
    assert.equal(folderDifference(target, reference), undefined);
    fs.rmSync(liveTmp, { recursive: true });
  });

  it('a run killed between the two renames of an overwrite: the old model is put back', async () => {
    // The state such a kill leaves: no target, the old model in a dppa-old folder of a dead pid.
    const target = path.join(dir, 'between');
    fs.rmSync(target, { recursive: true, force: true });
    const aside = path.join(dir, `.between.dppa-old-${deadPid()}-0badf00d`);
    fs.mkdirSync(aside);
    fs.writeFileSync(path.join(aside, 'OLD-MODEL'), 'the previous model');
    // Without --overwrite: the old model comes back, and is not replaced.
    const r = runCli(['merge', config, target]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists/);
    assert.deepEqual(fs.readdirSync(target), ['OLD-MODEL']);
    assert.deepEqual(tempsBeside(target), []);
  });
});

describe('80 faults: full disk, inputs that change under the reader', function () {
  this.timeout(120000);
  let dir: string;
  let mountPoint: string | undefined;

  before(async () => {
    // ~4 MB of output: more than the 2 MB tmpfs holds.
    dir = await family(tmpDir('80-medium'), { hidden: 256, intermediate: 768, vocab: 512, heads: 4, shardBytes: 1_000_000 });
  });

  after(() => {
    if (mountPoint) spawnSync('umount', [mountPoint]);
  });

  it('a full disk (2 MB tmpfs) is a clean E_IO saying so, and the temporary folder is removed', async function () {
    const mnt = tmpDir('80-tmpfs');
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      console.log('      skipped: mounting a tmpfs needs root');
      return this.skip();
    }
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.log(`      skipped: mount -t tmpfs failed: ${(m.stderr || m.error?.message || '').trim()}`);
      return this.skip();
    }
    mountPoint = mnt;
    const config = writeConfig(dir, 'ta', methodConfig('task_arithmetic'));
    const target = path.join(mnt, 'merged');
    let error: unknown;
    try {
      await merge(config, target);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof DppaError, `expected a DppaError, got ${error}`);
    assert.equal(error.code, 'E_IO', error.message);
    assert.match(error.message, /no space/i, 'the message says the disk is full');
    assert.deepEqual(fs.readdirSync(mnt), [], 'nothing left on the full file system');
    // And through the CLI: one line, exit 1, no stack trace.
    const r = runCli(['merge', config, target]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no space/i);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.deepEqual(fs.readdirSync(mnt), []);
  });

  it('an input truncated after it was opened is a clean E_IO, no output, no temporary folder', async () => {
    const broken = tmpDir('80-truncated');
    for (const m of ['base', 'ft0', 'ft1']) copyFolder(path.join(dir, m), path.join(broken, m));
    const config = writeConfig(broken, 'ta', methodConfig('task_arithmetic'));
    const shards = fs.readdirSync(path.join(broken, 'ft1')).filter((f) => f.endsWith('.safetensors')).sort();
    const last = path.join(broken, 'ft1', shards[shards.length - 1]);
    const target = path.join(broken, 'out');
    let truncated = false;
    await assert.rejects(
      merge(config, target, {
        onProgress: (e) => {
          // Once the plan has opened and validated every file: cut the last shard short.
          if (!truncated && e.phase === 'merge') {
            fs.truncateSync(last, Math.floor(fs.statSync(last).size / 2));
            truncated = true;
          }
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof DppaError, String(e));
        assert.equal(e.code, 'E_IO', e.message);
        assert.match(e.message, /truncated|ended/);
        assert.ok(e.message.includes(last), 'names the file');
        return true;
      },
    );
    assert.ok(truncated);
    assert.ok(!fs.existsSync(target));
    assert.deepEqual(tempsBeside(target), []);
  });
});

describe('80 faults: NaN and Inf in the inputs', function () {
  this.timeout(120000);
  let dir: string;
  const tensor = 'model.layers.1.mlp.up_proj.weight';

  before(async () => {
    const clean = await family(tmpDir('80-family'));
    dir = tmpDir('80-nonfinite');
    for (const m of ['base', 'ft0', 'ft1']) copyFolder(path.join(clean, m), path.join(dir, m));
    // Three NaNs and two infinities in ft1, at scattered positions.
    await injectBf16(path.join(dir, 'ft1'), tensor, [0, 17, 4000], 0x7fc0);
    await injectBf16(path.join(dir, 'ft1'), tensor, [5], 0x7f80);
    await injectBf16(path.join(dir, 'ft1'), tensor, [8191], 0xff80);
  });

  for (const method of ['ties', 'dppa', 'task_arithmetic', 'pcb'] as const) {
    it(`${method}: E_NONFINITE naming the model, the tensor and the count; --allow-nonfinite merges`, () => {
      const config = writeConfig(dir, method, methodConfig(method));
      const target = path.join(dir, `out-${method}`);
      let r = runCli(['merge', config, target]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /ft1/, 'names the model');
      assert.ok(r.stderr.includes(tensor), `names the tensor: ${r.stderr}`);
      assert.match(r.stderr, /\b5 NaN\/Inf/, 'gives the count');
      assert.match(r.stderr, /--allow-nonfinite/);
      assert.ok(!fs.existsSync(target));
      assert.deepEqual(tempsBeside(target), []);
      r = runCli(['merge', config, target, '--allow-nonfinite']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(fs.existsSync(path.join(target, 'config.json')));
    });
  }

  it('pcb with --allow-nonfinite: the NaN/Inf neither poison the model-wide statistics nor reach the output', async () => {
    const config = writeConfig(dir, 'pcb', methodConfig('pcb'));
    const target = path.join(dir, 'out-pcb-allowed');
    await merge(config, target, { allowNonfinite: true, overwrite: true });
    // A NaN min/max or score maximum (spread by a careless reduction) would keep nothing, and
    // every output would equal the base.
    const [out, base] = await Promise.all([ref.loadModel(target), ref.loadModel(path.join(dir, 'base'))]);
    for (const [name, b] of base) {
      const o = out.get(name)!.values;
      let changed = 0;
      for (let i = 0; i < o.length; i++) {
        assert.ok(Number.isFinite(o[i]), `${name}[${i}] = ${o[i]}`);
        if (o[i] !== b.values[i]) changed++;
      }
      assert.ok(changed > 0.05 * o.length, `${name}: only ${changed} of ${o.length} elements merged`);
    }
  });

  it('non-finite values in the base are reported too', async () => {
    const baseDir = tmpDir('80-nonfinite-base');
    for (const m of ['base', 'ft0', 'ft1']) copyFolder(path.join(dir, '..', '80-family', m), path.join(baseDir, m));
    await injectBf16(path.join(baseDir, 'base'), tensor, [3], 0x7f80);
    const config = writeConfig(baseDir, 'ties', methodConfig('ties'));
    await assert.rejects(merge(config, path.join(baseDir, 'out')), (e: unknown) => {
      assert.ok(e instanceof DppaError && e.code === 'E_NONFINITE', String(e));
      assert.ok(e.message.includes(tensor), e.message);
      return true;
    });
  });
});

describe('80 faults: a memory budget too small for one tensor', function () {
  this.timeout(60000);

  it('is E_MEMORY before any work starts: no progress, no temporary folder, no output', async () => {
    const dir = await family(tmpDir('80-family'));
    const config = writeConfig(dir, 'dppa', methodConfig('dppa'));
    const target = path.join(dir, 'out-memory');
    const events: string[] = [];
    await assert.rejects(
      merge(config, target, { maxMemory: RUNTIME_OVERHEAD_BYTES + 1000, onProgress: (e) => events.push(e.phase) }),
      (e: unknown) => {
        assert.ok(e instanceof DppaError && e.code === 'E_MEMORY', String(e));
        assert.match(e.message, /model\.embed_tokens\.weight|lm_head\.weight|mlp/, 'names the tensor');
        assert.match(e.message, /--max-memory/);
        return true;
      },
    );
    assert.deepEqual(events, [], 'not even the statistics pass started');
    assert.ok(!fs.existsSync(target));
    assert.deepEqual(tempsBeside(target), []);
    const r = runCli(['merge', config, target, '--max-memory', String(RUNTIME_OVERHEAD_BYTES + 1000)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /memory budget/);
    assert.ok(!fs.existsSync(target));
  });

  it('counts PCB\'s work buffers: a budget its tensor buffers fit but not with them is E_MEMORY naming them; TIES fits it', async () => {
    const dir = await family(tmpDir('80-family'));
    const sizes = (await inspect(path.join(dir, 'base'))).tensors.map((t) => t.shape.reduce((a, b) => a * b, 1));
    const largest = Math.max(...sizes);
    const total = sizes.reduce((a, b) => a + b, 0);
    // The largest tensor's buffers: base + 2 fine-tunes + output, bf16; PCB's work: (2·2 + 1)
    // float32 arrays of the largest tensor, and the statistics' sample (every 8th element of this
    // small model) of both tasks' δ and scores.
    const tensorBytes = 4 * 2 * largest, workBytes = 5 * 4 * largest + 2 * 8 * Math.ceil(total / 8);
    const budget = RUNTIME_OVERHEAD_BYTES + tensorBytes + Math.floor(workBytes / 2);
    const pcbConfig = writeConfig(dir, 'pcb-memory', methodConfig('pcb'));
    await assert.rejects(merge(pcbConfig, path.join(dir, 'out-pcb-memory'), { maxMemory: budget }), (e: unknown) => {
      assert.ok(e instanceof DppaError && e.code === 'E_MEMORY', String(e));
      assert.match(e.message, /for pcb's work buffers/);
      return true;
    });
    await merge(pcbConfig, path.join(dir, 'out-pcb-memory'), { maxMemory: budget + workBytes });
    await merge(writeConfig(dir, 'ties-memory', methodConfig('ties')), path.join(dir, 'out-ties-memory'), { maxMemory: budget });
  });
});
