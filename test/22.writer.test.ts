/**
 * 22: the output writer. Shards respect their limit, the index is right, writes may come in
 * any order, and the target is either the complete new model or untouched: an existing
 * target is refused without --overwrite, and abort or any failure leaves nothing behind.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ModelSource } from '../lib/io/model';
import { ModelWriter, parseByteSize, formatByteSize, removeStaleTemps, type TensorSpec } from '../lib/io/writer';
import { planShards } from '../lib/io/shard-plan';
import { tmpDir } from './hooks';
import { patternBytes, rejectsWith, throwsWith, writeBytes } from './20.helpers';

/** Tensors of assorted sizes (bytes: 40, 4, 400, 8, 0, 2, 160, 24). */
const specs: TensorSpec[] = [
  { name: 'w0', dtype: 'F32', shape: [10] },
  { name: 'scalar', dtype: 'F32', shape: [] },
  { name: 'big', dtype: 'BF16', shape: [10, 20] },
  { name: 'i64', dtype: 'I64', shape: [1] },
  { name: 'empty', dtype: 'F16', shape: [0, 3] },
  { name: 'f8', dtype: 'F8_E5M2', shape: [2] },
  { name: 'mid', dtype: 'F16', shape: [8, 10] },
  { name: 'last', dtype: 'F32', shape: [2, 3] },
];
const byteLength = (t: TensorSpec) => t.shape.reduce((a, b) => a * b, 1) * { F32: 4, BF16: 2, I64: 8, F16: 2, F8_E5M2: 1 }[t.dtype as 'F32'];
const contentOf = (t: TensorSpec, i: number) => patternBytes(byteLength(t), i * 13);

/** Parent folder entries other than the ones named: temp folders left behind show up here. */
function leftovers(parent: string, ...expected: string[]): string[] {
  return fs.readdirSync(parent).filter((n) => !expected.includes(n));
}

async function writeAll(target: string, order: number[], options: { maxShardBytes?: number; overwrite?: boolean } = {}) {
  const writer = await ModelWriter.create(target, { tensors: specs, ...options });
  await Promise.all(order.map((i) => writer.writeTensor(specs[i].name, contentOf(specs[i], i))));
  return writer;
}

async function checkContents(target: string): Promise<void> {
  const model = await ModelSource.open(target);
  try {
    assert.deepStrictEqual([...model.tensors.keys()], specs.map((s) => s.name));
    for (const [i, spec] of specs.entries()) {
      const info = model.info(spec.name);
      assert.strictEqual(info.dtype, spec.dtype);
      assert.deepStrictEqual(info.shape, spec.shape);
      assert.deepStrictEqual([...(await model.read(spec.name))], [...contentOf(spec, i)], spec.name);
    }
  } finally {
    await model.close();
  }
}

describe('22 writer', function () {
  let dir: string;
  let n = 0;
  const fresh = () => {
    const parent = path.join(dir, `case${n++}`);
    fs.mkdirSync(parent);
    return { parent, target: path.join(parent, 'out') };
  };
  before(() => {
    dir = tmpDir('22-writer');
  });

  it('writes one model.safetensors when everything fits, readable back, with metadata and alignment', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, specs.map((_, i) => i));
    assert.ok(fs.existsSync(writer.tempDir));
    assert.ok(!fs.existsSync(target), 'nothing at the target before finish');
    const result = await writer.finish({ config: { torch_dtype: 'bfloat16' }, modelCard: '# merged\n' });
    assert.deepStrictEqual(fs.readdirSync(target).sort(), ['README.md', 'config.json', 'model.safetensors']);
    assert.deepStrictEqual(leftovers(parent, 'out'), []);
    assert.strictEqual(result.totalBytes, specs.reduce((s, t) => s + byteLength(t), 0));
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(target, 'config.json'), 'utf8')), { torch_dtype: 'bfloat16' });
    assert.strictEqual(fs.readFileSync(path.join(target, 'README.md'), 'utf8'), '# merged\n');
    const model = await ModelSource.open(target);
    assert.deepStrictEqual(model.files[0].metadata, { format: 'pt' });
    assert.strictEqual(model.files[0].headerLength % 8, 0);
    await model.close();
    await checkContents(target);
  });

  it('respects the shard limit, names shards like transformers and writes a correct index', async () => {
    const { target } = fresh();
    const limit = 200;
    const writer = await writeAll(target, specs.map((_, i) => i), { maxShardBytes: limit });
    await writer.finish();
    const plan = planShards(specs, limit, { format: 'pt' }); // the writer's default metadata
    assert.strictEqual(plan.length, 3); // [w0, scalar] [big] [i64, empty, f8, mid, last]
    for (const shard of plan) {
      assert.ok(shard.dataBytes <= limit || shard.tensors.length === 1, `${shard.fileName}: ${shard.dataBytes} bytes`);
    }
    const files = fs.readdirSync(target).sort();
    assert.deepStrictEqual(files, [
      'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(fs.readFileSync(path.join(target, 'model.safetensors.index.json'), 'utf8'));
    assert.strictEqual(index.metadata.total_size, specs.reduce((s, t) => s + byteLength(t), 0));
    assert.deepStrictEqual(Object.keys(index.weight_map), specs.map((s) => s.name).sort());
    assert.strictEqual(index.weight_map.big, 'model-00002-of-00003.safetensors');
    assert.strictEqual(index.weight_map.last, 'model-00003-of-00003.safetensors');
    assert.strictEqual(plan[2].dataBytes, 194);
    for (const shard of plan) {
      const size = fs.statSync(path.join(target, shard.fileName)).size;
      assert.strictEqual(size, shard.fileBytes);
      assert.ok(shard.dataBytes <= limit || shard.tensors.length === 1);
    }
    await checkContents(target);
  });

  it('gives a tensor larger than the limit a shard of its own', () => {
    const plan = planShards([{ name: 'a', dtype: 'U8', shape: [5] }, { name: 'huge', dtype: 'U8', shape: [50] }, { name: 'b', dtype: 'U8', shape: [5] }], 10);
    assert.deepStrictEqual(plan.map((s) => s.tensors.map((t) => t.name)), [['a'], ['huge'], ['b']]);
  });

  it('gives the same files whatever order, concurrency or pieces the tensors are written in', async () => {
    const inOrder = fresh();
    await (await writeAll(inOrder.target, specs.map((_, i) => i), { maxShardBytes: 200 })).finish();
    const reversed = fresh();
    await (await writeAll(reversed.target, specs.map((_, i) => specs.length - 1 - i), { maxShardBytes: 200 })).finish();
    const pieces = fresh();
    const writer = await ModelWriter.create(pieces.target, { tensors: specs, maxShardBytes: 200 });
    // Each tensor in pieces of 7 bytes, all issued at once in a scrambled order.
    const jobs: (() => Promise<void>)[] = [];
    specs.forEach((spec, i) => {
      const bytes = contentOf(spec, i);
      for (let at = 0; at < bytes.byteLength; at += 7) {
        jobs.push(() => writer.writeTensorPart(spec.name, at, bytes.subarray(at, at + 7)));
      }
    });
    const scrambled = jobs.map((job, i) => ({ job, key: (i * 7919) % jobs.length })).sort((a, b) => a.key - b.key);
    await Promise.all(scrambled.map(({ job }) => job()));
    await writer.finish();
    for (const other of [reversed.target, pieces.target]) {
      for (const name of fs.readdirSync(inOrder.target)) {
        assert.ok(fs.readFileSync(path.join(inOrder.target, name)).equals(fs.readFileSync(path.join(other, name))), `${other}/${name}`);
      }
    }
  });

  it('refuses wrong lengths, unknown names, double writes and overlapping pieces', async () => {
    const { parent, target } = fresh();
    const writer = await ModelWriter.create(target, { tensors: specs });
    await rejectsWith(writer.writeTensor('w0', new Uint8Array(39)), 'E_ARGUMENT', '"w0"', '39');
    await rejectsWith(writer.writeTensor('nope', new Uint8Array(4)), 'E_ARGUMENT', '"nope"');
    await writer.writeTensor('w0', contentOf(specs[0], 0));
    await rejectsWith(writer.writeTensor('w0', contentOf(specs[0], 0)), 'E_ARGUMENT', 'already written');
    await writer.writeTensorPart('big', 0, new Uint8Array(100));
    await rejectsWith(writer.writeTensorPart('big', 50, new Uint8Array(100)), 'E_ARGUMENT', 'already written');
    await rejectsWith(writer.writeTensorPart('big', 350, new Uint8Array(100)), 'E_ARGUMENT', 'outside');
    // Two concurrent writes of one tensor: exactly one wins.
    const results = await Promise.allSettled([
      writer.writeTensor('last', contentOf(specs[7], 7)),
      writer.writeTensor('last', contentOf(specs[7], 7)),
    ]);
    assert.deepStrictEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    await writer.abort();
    assert.deepStrictEqual(leftovers(parent), []);
  });

  it('refuses bad plans: duplicate names, __metadata__, bad shapes and dtypes, bad shard sizes', async () => {
    const { target } = fresh();
    const one = { name: 'a', dtype: 'F32' as const, shape: [1] };
    await rejectsWith(ModelWriter.create(target, { tensors: [one, one] }), 'E_ARGUMENT', 'twice');
    await rejectsWith(ModelWriter.create(target, { tensors: [{ ...one, name: '__metadata__' }] }), 'E_ARGUMENT', '__metadata__');
    await rejectsWith(ModelWriter.create(target, { tensors: [{ ...one, shape: [-1] }] }), 'E_ARGUMENT', 'shape');
    await rejectsWith(ModelWriter.create(target, { tensors: [{ ...one, dtype: 'F31' as never }] }), 'E_ARGUMENT', 'dtype');
    await rejectsWith(ModelWriter.create(target, { tensors: [one], maxShardBytes: 0 }), 'E_ARGUMENT', 'maxShardBytes');
    assert.ok(!fs.existsSync(target));
  });

  it('refuses an existing target without overwrite, with the --overwrite hint', async () => {
    const { parent, target } = fresh();
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'old');
    await rejectsWith(ModelWriter.create(target, { tensors: specs }), 'E_EXISTS', target, '--overwrite');
    assert.deepStrictEqual(leftovers(parent, 'out'), []);
    assert.strictEqual(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'old');
  });

  it('refuses at finish a target that appeared while writing, and leaves it alone', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, specs.map((_, i) => i));
    fs.mkdirSync(target);
    await rejectsWith(writer.finish(), 'E_EXISTS', '--overwrite');
    assert.deepStrictEqual(fs.readdirSync(target), []);
    assert.deepStrictEqual(leftovers(parent, 'out'), []);
  });

  it('overwrites only once the new model is complete, and leaves no old or temp folder', async () => {
    const { parent, target } = fresh();
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'old.txt'), 'old');
    const writer = await writeAll(target, specs.map((_, i) => i), { overwrite: true });
    assert.strictEqual(fs.readFileSync(path.join(target, 'old.txt'), 'utf8'), 'old', 'old model intact while writing');
    await writer.finish();
    assert.ok(!fs.existsSync(path.join(target, 'old.txt')));
    assert.deepStrictEqual(leftovers(parent, 'out'), []);
    await checkContents(target);
  });

  it('keeps the old model when an overwrite is aborted or fails', async () => {
    const { parent, target } = fresh();
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'old.txt'), 'old');
    const aborted = await writeAll(target, [0, 1], { overwrite: true });
    await aborted.abort();
    const failing = await writeAll(target, [0, 1], { overwrite: true });
    await rejectsWith(failing.finish(), 'E_ARGUMENT', 'were not written');
    assert.deepStrictEqual(fs.readdirSync(target), ['old.txt']);
    assert.deepStrictEqual(leftovers(parent, 'out'), []);
  });

  it('abort leaves nothing, whatever was written, and is idempotent', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, [2, 0, 5], { maxShardBytes: 100 });
    await writer.abort();
    await writer.abort();
    assert.deepStrictEqual(leftovers(parent), []);
    await rejectsWith(writer.writeTensor('w0', contentOf(specs[0], 0)), 'E_ARGUMENT', 'aborted');
    await rejectsWith(writer.finish(), 'E_ARGUMENT', 'aborted');
  });

  it('abortSync removes the temporary folder without awaiting', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, [0, 2]);
    writer.abortSync();
    assert.deepStrictEqual(leftovers(parent), []);
    await writer.abort(); // harmless afterwards
  });

  it('a finish with a missing tensor fails and leaves nothing at the target', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, [0, 1, 2, 3, 4, 5, 6]);
    await rejectsWith(writer.finish(), 'E_ARGUMENT', '1 tensor(s) were not written', '"last"');
    assert.deepStrictEqual(leftovers(parent), []);
  });

  it('a failure while finishing (unserializable config, failing copy) leaves nothing at the target', async () => {
    const { parent, target } = fresh();
    const writer = await writeAll(target, specs.map((_, i) => i));
    await rejectsWith(writer.finish({ config: { big: 1n } as never }), 'E_IO', 'finishing');
    assert.deepStrictEqual(leftovers(parent), []);

    const source = path.join(dir, 'copy-source');
    fs.mkdirSync(path.join(source, 'tokenizer.json'), { recursive: true }); // a folder: copying it fails
    const second = await writeAll(target, specs.map((_, i) => i));
    await rejectsWith(second.finish({ copyFiles: { from: source } }), 'E_IO', 'tokenizer.json');
    assert.deepStrictEqual(leftovers(parent, 'copy-source'), []);
  });

  it('a failed write leaves nothing at the target once aborted', async () => {
    const { parent, target } = fresh();
    const writer = await ModelWriter.create(target, { tensors: specs });
    // Sabotage: the temporary folder's shard is replaced by a folder, so opening it fails.
    const shard = path.join(writer.tempDir, 'model.safetensors');
    fs.unlinkSync(shard);
    fs.mkdirSync(shard);
    await rejectsWith(writer.writeTensor('w0', contentOf(specs[0], 0)), 'E_IO', 'model.safetensors');
    await writer.abort();
    assert.deepStrictEqual(leftovers(parent), []);
  });

  it('copies the tokenizer files that exist, and extra files', async () => {
    const { target } = fresh();
    const source = path.join(dir, 'tokenizer-source');
    writeBytes(source, 'tokenizer.json', new TextEncoder().encode('{"model":{}}'));
    writeBytes(source, 'generation_config.json', new TextEncoder().encode('{}'));
    writeBytes(source, 'config.json', new TextEncoder().encode('{"not":"copied"}'));
    const writer = await writeAll(target, specs.map((_, i) => i));
    const result = await writer.finish({ copyFiles: { from: source }, extraFiles: { 'notes.txt': 'hi' } });
    assert.deepStrictEqual(result.copied, ['tokenizer.json', 'generation_config.json']);
    assert.deepStrictEqual(fs.readdirSync(target).sort(), ['generation_config.json', 'model.safetensors', 'notes.txt', 'tokenizer.json']);
  });

  it('creates missing parent folders of the target', async () => {
    const target = path.join(dir, 'deep', 'er', 'out');
    const writer = await writeAll(target, specs.map((_, i) => i));
    await writer.finish();
    await checkContents(target);
  });

  it('removes stale temporary folders of dead processes only, and restores an interrupted overwrite', async () => {
    const { parent, target } = fresh();
    const deadPid = 4194305; // above Linux's pid_max: never alive
    const stale = path.join(parent, `.out.dppa-tmp-${deadPid}-abcd1234`);
    const live = path.join(parent, `.out.dppa-tmp-${process.pid}-abcd1234`);
    const otherModel = path.join(parent, `.other.dppa-tmp-${deadPid}-abcd1234`);
    const interrupted = path.join(parent, `.out.dppa-old-${deadPid}-00ff`);
    for (const d of [stale, live, otherModel, interrupted]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(interrupted, 'model.safetensors'), 'previous');
    const removed = await removeStaleTemps(target);
    assert.deepStrictEqual(removed, [stale]);
    assert.ok(fs.existsSync(live) && fs.existsSync(otherModel));
    assert.strictEqual(fs.readFileSync(path.join(target, 'model.safetensors'), 'utf8'), 'previous');
    // With the target present, a stale old folder is just removed.
    fs.mkdirSync(interrupted);
    assert.deepStrictEqual(await removeStaleTemps(target), [interrupted]);
    assert.deepStrictEqual(await removeStaleTemps(path.join(dir, 'no-such-parent', 'x')), []);
  });
});

describe('22 parseByteSize', function () {
  it('reads decimal units, binary units and plain numbers', () => {
    assert.strictEqual(parseByteSize('5G'), 5e9);
    assert.strictEqual(parseByteSize('5GB'), 5e9);
    assert.strictEqual(parseByteSize('500M'), 5e8);
    assert.strictEqual(parseByteSize('10K'), 10_000);
    assert.strictEqual(parseByteSize('10k'), 10_000);
    assert.strictEqual(parseByteSize('1.5T'), 1.5e12);
    assert.strictEqual(parseByteSize(' 123 '), 123);
    assert.strictEqual(parseByteSize('2GiB'), 2 * 1024 ** 3);
    assert.strictEqual(parseByteSize('4 MiB'), 4 * 1024 ** 2);
    assert.strictEqual(parseByteSize(4096), 4096);
  });

  it('refuses garbage with E_ARGUMENT', () => {
    for (const bad of ['', 'G', '5X', '-5G', '5 G B', '1e9', '0', '0.0001', 'abc', '5B', '5Gb5']) {
      throwsWith(() => parseByteSize(bad), 'E_ARGUMENT');
    }
    throwsWith(() => parseByteSize(0), 'E_ARGUMENT');
    throwsWith(() => parseByteSize(1.5), 'E_ARGUMENT');
    throwsWith(() => parseByteSize('5B'), 'E_ARGUMENT', 'ambiguous');
  });

  it('formats sizes for people', () => {
    assert.strictEqual(formatByteSize(7), '7 B');
    assert.strictEqual(formatByteSize(1500), '1.50 KB');
    assert.strictEqual(formatByteSize(5e9), '5.00 GB');
    assert.strictEqual(formatByteSize(320e6), '320 MB');
  });
});
