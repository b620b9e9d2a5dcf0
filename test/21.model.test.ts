/**
 * 21: model folders. Every layout opens to the same tensor map; every broken index or folder
 * is refused with a message naming the path.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ModelSource } from '../lib/io/model';
import { ModelWriter } from '../lib/io/writer';
import { tmpDir } from './hooks';
import { craftSafetensors, goldenDir, llamaNames, patternBytes, rejectsWith, writeBytes } from './20.helpers';

const entry = (dtype: string, shape: number[], offsets: [number, number]) => ({ dtype, shape, data_offsets: offsets });

/** Write a small sharded model (3 tensors of 16 bytes, shards of 32 bytes) and return its folder. */
async function writeSharded(dir: string): Promise<string> {
  const tensors = ['a', 'b', 'c'].map((name) => ({ name, dtype: 'F32' as const, shape: [4] }));
  const writer = await ModelWriter.create(dir, { tensors, maxShardBytes: 32 });
  for (const [i, t] of tensors.entries()) await writer.writeTensor(t.name, patternBytes(16, i));
  await writer.finish({ config: { model_type: 'llama' } });
  return dir;
}

function editIndex(dir: string, edit: (index: { metadata: unknown; weight_map: Record<string, unknown> }) => unknown): void {
  const file = path.join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(file, 'utf8'));
  const replaced = edit(index);
  fs.writeFileSync(file, JSON.stringify(replaced ?? index));
}

describe('21 model folders', function () {
  let dir: string;
  before(() => {
    dir = tmpDir('21-model');
  });

  it('opens the golden models with their config and the Llama tensor names', async () => {
    for (const name of ['base', 'ft0', 'ft1']) {
      const model = await ModelSource.open(path.join(goldenDir, 'models', name));
      assert.strictEqual(model.layout, 'single');
      assert.deepStrictEqual([...model.tensors.keys()].sort(), llamaNames(4));
      assert.strictEqual(model.config?.hidden_size, 64);
      assert.strictEqual(model.config?.torch_dtype, 'bfloat16');
      const bytes = await model.read('model.norm.weight');
      assert.strictEqual(bytes.byteLength, 128);
      const into = new Uint8Array(1000);
      assert.strictEqual((await model.read('model.norm.weight', into)).buffer, into.buffer);
      assert.strictEqual(model.totalBytes, fs.statSync(path.join(goldenDir, 'models', name, 'model.safetensors')).size - 8 - 4024);
      await model.close();
    }
  });

  it('opens a direct path to one .safetensors file', async () => {
    const file = path.join(goldenDir, 'expected', 'ties.safetensors');
    const model = await ModelSource.open(file);
    assert.strictEqual(model.layout, 'file');
    assert.strictEqual(model.dir, path.dirname(file));
    assert.deepStrictEqual([...model.tensors.keys()].sort(), llamaNames(4));
    await model.close();
  });

  it('opens a sharded folder through its index, and the index file directly', async () => {
    const sharded = await writeSharded(path.join(dir, 'sharded'));
    for (const p of [sharded, path.join(sharded, 'model.safetensors.index.json')]) {
      const model = await ModelSource.open(p);
      assert.strictEqual(model.layout, 'sharded');
      assert.strictEqual(model.files.length, 2);
      assert.deepStrictEqual([...model.tensors.keys()], ['a', 'b', 'c']);
      assert.strictEqual(path.basename(model.info('c').file), 'model-00002-of-00002.safetensors');
      assert.deepStrictEqual([...(await model.read('c'))], [...patternBytes(16, 2)]);
      assert.deepStrictEqual([...(await model.readPart('b', 4, new Uint8Array(4)))], [...patternBytes(16, 1).subarray(4, 8)]);
      assert.deepStrictEqual(model.config, { model_type: 'llama' });
      await model.close();
    }
  });

  it('opens a folder of several .safetensors without an index', async () => {
    const folder = path.join(dir, 'unindexed');
    writeBytes(folder, 'part-b.safetensors', craftSafetensors({ y: entry('U8', [2], [0, 2]) }, 2));
    writeBytes(folder, 'part-a.safetensors', craftSafetensors({ x: entry('U8', [3], [0, 3]) }, 3));
    writeBytes(folder, '.hidden.safetensors', craftSafetensors({ z: entry('U8', [1], [0, 1]) }, 1));
    const model = await ModelSource.open(folder);
    assert.strictEqual(model.layout, 'unindexed');
    assert.deepStrictEqual([...model.tensors.keys()], ['x', 'y']);
    assert.strictEqual(model.config, undefined);
    await model.close();
  });

  it('refuses a tensor found in two files of an unindexed folder', async () => {
    const folder = path.join(dir, 'dupes');
    writeBytes(folder, 'one.safetensors', craftSafetensors({ x: entry('U8', [2], [0, 2]) }, 2));
    writeBytes(folder, 'two.safetensors', craftSafetensors({ x: entry('U8', [2], [0, 2]) }, 2));
    await rejectsWith(ModelSource.open(folder), 'E_FORMAT', folder, '"x"', 'one.safetensors', 'two.safetensors');
  });

  it('refuses an index whose shard is missing, naming the shard', async () => {
    const sharded = await writeSharded(path.join(dir, 'missing-shard'));
    fs.unlinkSync(path.join(sharded, 'model-00002-of-00002.safetensors'));
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'model.safetensors.index.json', 'model-00002-of-00002.safetensors', 'not exist');
  });

  it('refuses an index whose weight_map is not an object', async () => {
    const sharded = await writeSharded(path.join(dir, 'bad-map'));
    editIndex(sharded, (index) => ({ ...index, weight_map: ['a'] }));
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'model.safetensors.index.json', 'weight_map');
  });

  it('refuses an index without a weight_map, or with an empty one', async () => {
    const sharded = await writeSharded(path.join(dir, 'no-map'));
    editIndex(sharded, () => ({ metadata: {} }));
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'weight_map');
    editIndex(sharded, () => ({ weight_map: {} }));
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'weight_map', 'empty');
  });

  it('refuses an index that is not JSON', async () => {
    const sharded = await writeSharded(path.join(dir, 'not-json'));
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), '{"weight_map": ');
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'model.safetensors.index.json', 'not valid JSON');
  });

  it('refuses a shard name that is not a string or leaves the folder', async () => {
    const sharded = await writeSharded(path.join(dir, 'escape'));
    editIndex(sharded, (index) => { index.weight_map.a = 7; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', '"weight_map"."a"');
    editIndex(sharded, (index) => { index.weight_map.a = '../sharded/model-00001-of-00002.safetensors'; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'inside the model folder');
    editIndex(sharded, (index) => { index.weight_map.a = '/etc/passwd'; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', 'inside the model folder');
  });

  it('refuses an index listing a tensor its shard does not contain', async () => {
    const sharded = await writeSharded(path.join(dir, 'absent'));
    editIndex(sharded, (index) => { index.weight_map.ghost = 'model-00001-of-00002.safetensors'; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', '"ghost"', 'does not contain');
  });

  it('refuses an index that puts a tensor in the wrong shard', async () => {
    const sharded = await writeSharded(path.join(dir, 'wrong-shard'));
    editIndex(sharded, (index) => { index.weight_map.a = 'model-00002-of-00002.safetensors'; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', '"a"', 'listed in shard model-00002-of-00002.safetensors', 'is in model-00001-of-00002.safetensors');
    // When the only reference to a shard moves, that shard is not opened: "does not contain".
    editIndex(sharded, (index) => { index.weight_map.a = 'model-00001-of-00002.safetensors'; index.weight_map.c = 'model-00001-of-00002.safetensors'; });
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', '"c"', 'does not contain');
  });

  it('refuses a tensor present in two shards', async () => {
    const sharded = await writeSharded(path.join(dir, 'two-shards'));
    writeBytes(sharded, 'model-00002-of-00002.safetensors', craftSafetensors({ a: entry('F32', [4], [0, 16]), c: entry('F32', [4], [16, 32]) }, 32));
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', '"a"', 'two files');
  });

  it('names the shard when a shard is malformed', async () => {
    const sharded = await writeSharded(path.join(dir, 'bad-shard'));
    const shard = path.join(sharded, 'model-00002-of-00002.safetensors');
    fs.truncateSync(shard, fs.statSync(shard).size - 1);
    await rejectsWith(ModelSource.open(sharded), 'E_FORMAT', shard);
  });

  it('says clearly when a folder has no safetensors, and why pickles are not read', async () => {
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty, { recursive: true });
    await rejectsWith(ModelSource.open(empty), 'E_FORMAT', empty, 'no safetensors', '.bin');
    const pickled = path.join(dir, 'pickled');
    writeBytes(pickled, 'pytorch_model.bin', new Uint8Array(10));
    await rejectsWith(ModelSource.open(pickled), 'E_FORMAT', 'pytorch_model.bin', 'arbitrary code');
    await rejectsWith(ModelSource.open(path.join(pickled, 'pytorch_model.bin')), 'E_FORMAT', 'pickles');
  });

  it('refuses a path that does not exist with E_IO', async () => {
    await rejectsWith(ModelSource.open(path.join(dir, 'nowhere')), 'E_IO', 'nowhere');
  });

  it('refuses a malformed config.json', async () => {
    const folder = path.join(dir, 'bad-config');
    writeBytes(folder, 'model.safetensors', craftSafetensors({ x: entry('U8', [1], [0, 1]) }, 1));
    fs.writeFileSync(path.join(folder, 'config.json'), '{ nope');
    await rejectsWith(ModelSource.open(folder), 'E_FORMAT', path.join(folder, 'config.json'));
    fs.writeFileSync(path.join(folder, 'config.json'), '[]');
    await rejectsWith(ModelSource.open(folder), 'E_FORMAT', 'config.json', 'object');
  });

  it('prefers model.safetensors over an index, like transformers', async () => {
    const folder = await writeSharded(path.join(dir, 'both'));
    writeBytes(folder, 'model.safetensors', craftSafetensors({ only: entry('U8', [1], [0, 1]) }, 1));
    const model = await ModelSource.open(folder);
    assert.strictEqual(model.layout, 'single');
    assert.deepStrictEqual([...model.tensors.keys()], ['only']);
    await rejectsWith(model.read('a'), 'E_ARGUMENT', '"a"');
    await model.close();
  });
});
