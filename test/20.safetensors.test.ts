/**
 * 20: the safetensors reader. A valid file opens and reads back exactly; every rule of the
 * format has a crafted file that breaks it, and each is refused with E_FORMAT naming the file.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SafetensorsFile } from '../lib/io/safetensors';
import { encodeShardHeader } from '../lib/io/shard-plan';
import { findDuplicateKey } from '../lib/io/header';
import { tmpDir } from './hooks';
import { craftSafetensors, goldenDir, llamaNames, patternBytes, rejectsWith, writeBytes } from './20.helpers';

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('20 safetensors: reading valid files', function () {
  let dir: string;
  before(() => {
    dir = tmpDir('20-valid');
  });

  it('opens a file, lists tensors in data order with absolute offsets, reads exact bytes', async () => {
    const tensors = [
      { name: 'b', dtype: 'F32', shape: [2, 3] },
      { name: 'a', dtype: 'BF16', shape: [5] },
      { name: 'scalar', dtype: 'I64', shape: [] },
      { name: 'empty', dtype: 'F16', shape: [0, 4] },
      { name: 'f8', dtype: 'F8_E4M3', shape: [3] },
    ];
    const offsets: [number, number][] = [[0, 24], [24, 34], [34, 42], [42, 42], [42, 45]];
    const header = encodeShardHeader(tensors, offsets, { format: 'pt', note: 'x' });
    const data = patternBytes(45);
    const bytes = new Uint8Array(header.byteLength + 45);
    bytes.set(header);
    bytes.set(data, header.byteLength);
    const file = writeBytes(dir, 'ok.safetensors', bytes);

    const st = await SafetensorsFile.open(file);
    try {
      assert.deepStrictEqual(st.names(), ['b', 'a', 'scalar', 'empty', 'f8']);
      assert.deepStrictEqual(st.metadata, { format: 'pt', note: 'x' });
      assert.strictEqual(header.byteLength % 8, 0, 'data section starts 8-byte aligned');
      const b = st.info('b');
      assert.deepStrictEqual(b, { name: 'b', dtype: 'F32', shape: [2, 3], numel: 6, file, byteOffset: header.byteLength, byteLength: 24 });
      assert.strictEqual(st.info('scalar').numel, 1);
      assert.strictEqual(st.info('empty').numel, 0);
      assert.deepStrictEqual([...(await st.read('a'))], [...data.subarray(24, 34)]);
      assert.deepStrictEqual([...(await st.read('f8'))], [...data.subarray(42, 45)]);
      assert.strictEqual((await st.read('empty')).byteLength, 0);

      // Reading into a caller's buffer: a view of exactly the tensor's length, same memory.
      const reused = new Uint8Array(100);
      const view = await st.read('b', reused);
      assert.strictEqual(view.buffer, reused.buffer);
      assert.strictEqual(view.byteLength, 24);
      assert.deepStrictEqual([...view], [...data.subarray(0, 24)]);
      const part = await st.readPart('b', 4, new Uint8Array(8));
      assert.deepStrictEqual([...part], [...data.subarray(4, 12)]);

      await rejectsWith(st.read('b', new Uint8Array(23)), 'E_ARGUMENT', 'too small');
      await rejectsWith(st.read('missing'), 'E_ARGUMENT', 'missing', file);
      await rejectsWith(st.readPart('b', 20, new Uint8Array(8)), 'E_ARGUMENT', 'outside');
    } finally {
      await st.close();
    }
    assert.ok(st.closed);
    await rejectsWith(st.read('b'), 'E_IO', 'closed', file);
    await st.close(); // twice is harmless
  });

  it('accepts a header without padding and without __metadata__, and a file with no tensors', async () => {
    const plain = writeBytes(dir, 'nopad.safetensors', craftSafetensors({ t: entry('U8', [3], [0, 3]) }, 3, { pad: false }));
    const st = await SafetensorsFile.open(plain);
    assert.deepStrictEqual(st.names(), ['t']);
    assert.deepStrictEqual(st.metadata, {});
    await st.close();
    const empty = await SafetensorsFile.open(writeBytes(dir, 'empty.safetensors', craftSafetensors({})));
    assert.strictEqual(empty.tensors.size, 0);
    await empty.close();
  });

  it('reads tensor names that are JSON escapes and prototype words as plain names', async () => {
    const header = '{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a\\u0062":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
    const st = await SafetensorsFile.open(writeBytes(dir, 'names.safetensors', craftSafetensors(header, 2)));
    assert.deepStrictEqual(st.names(), ['__proto__', 'ab']);
    await st.close();
  });

  it('reads large tensors in several chunks, into a reused buffer', async () => {
    const n = 3 * 1024 * 1024 + 5;
    const data = patternBytes(n, 11);
    const file = writeBytes(dir, 'big.safetensors', craftSafetensors({ big: entry('U8', [n], [0, n]) }, data));
    const st = await SafetensorsFile.open(file);
    const out = await st.read('big', new Uint8Array(n + 10));
    assert.strictEqual(Buffer.compare(Buffer.from(out), Buffer.from(data)), 0);
    await st.close();
  });

  it('fails a read with E_IO when the file was truncated after opening', async () => {
    const file = writeBytes(dir, 'shrinks.safetensors', craftSafetensors({ t: entry('F32', [256], [0, 1024]) }, 1024));
    const st = await SafetensorsFile.open(file);
    fs.truncateSync(file, 100);
    await rejectsWith(st.read('t'), 'E_IO', file, 'truncated');
    await st.close();
  });

  it('opens the golden models and finds the Llama tensor names', async () => {
    for (const model of ['base', 'ft0', 'ft1']) {
      const st = await SafetensorsFile.open(path.join(goldenDir, 'models', model, 'model.safetensors'));
      assert.deepStrictEqual(st.names().sort(), llamaNames(4));
      assert.deepStrictEqual(st.info('model.layers.0.mlp.down_proj.weight').shape, [64, 160]);
      assert.deepStrictEqual(st.info('model.embed_tokens.weight').shape, [128, 64]);
      for (const info of st.tensors.values()) {
        assert.strictEqual(info.dtype, 'BF16');
        assert.strictEqual((await st.read(info.name)).byteLength, info.numel * 2);
      }
      await st.close();
    }
    const expected = fs.readdirSync(path.join(goldenDir, 'expected')).filter((f) => f.endsWith('.safetensors'));
    assert.ok(expected.length >= 8);
    for (const name of expected) {
      const st = await SafetensorsFile.open(path.join(goldenDir, 'expected', name));
      assert.deepStrictEqual(st.names().sort(), llamaNames(4), name);
      const dtype = name.endsWith('.f32.safetensors') ? 'F32' : 'BF16';
      for (const info of st.tensors.values()) assert.strictEqual(info.dtype, dtype, `${name} ${info.name}`);
      await st.close();
    }
  });

  it('refuses a missing file or a folder with E_IO', async () => {
    await rejectsWith(SafetensorsFile.open(path.join(dir, 'nope.safetensors')), 'E_IO', 'nope.safetensors');
    await rejectsWith(SafetensorsFile.open(dir), 'E_IO', dir);
  });
});

describe('20 safetensors: every malformation is E_FORMAT naming the file', function () {
  let dir: string;
  before(() => {
    dir = tmpDir('20-invalid');
  });

  const good = (name = 't') => ({ [name]: entry('F32', [2], [0, 8]) });
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const cases: { title: string; bytes: () => Uint8Array; fragments: string[] }[] = [
    { title: 'a file shorter than the length field', bytes: () => new Uint8Array([1, 0, 0]), fragments: ['too short'] },
    { title: 'an empty file', bytes: () => new Uint8Array(0), fragments: ['too short'] },
    { title: 'an absurd header length (no allocation)', bytes: () => craftSafetensors(good(), 8, { length: 2n ** 62n }), fragments: ['100 MB'] },
    { title: 'a header length just above 100 MB', bytes: () => craftSafetensors(good(), 8, { length: 100_000_001 }), fragments: ['100 MB'] },
    { title: 'a header length beyond the file', bytes: () => craftSafetensors(good(), 8, { length: 1000 }), fragments: ['truncated'] },
    { title: 'a zero header length', bytes: () => craftSafetensors(good(), 8, { length: 0 }), fragments: ['too short'] },
    { title: 'invalid UTF-8', bytes: () => craftSafetensors(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), fragments: ['UTF-8'] },
    { title: 'a header that is not JSON', bytes: () => craftSafetensors('{"t": {"dtype": "F32",'), fragments: ['not valid JSON'] },
    { title: 'a JSON array header', bytes: () => craftSafetensors('[1,2]'), fragments: ['"{"'] },
    { title: 'a header with leading garbage', bytes: () => craftSafetensors(' {}'), fragments: ['"{"'] },
    { title: '__metadata__ that is not an object', bytes: () => craftSafetensors({ __metadata__: 'x', ...good() }, 8), fragments: ['__metadata__'] },
    { title: '__metadata__ with a non-string value', bytes: () => craftSafetensors({ __metadata__: { format: 1 }, ...good() }, 8), fragments: ['"__metadata__"."format"'] },
    { title: 'an entry that is not an object', bytes: () => craftSafetensors({ t: [1, 2] }), fragments: ['tensor "t"', 'object'] },
    { title: 'a missing dtype', bytes: () => craftSafetensors({ t: { shape: [2], data_offsets: [0, 8] } }, 8), fragments: ['tensor "t"', 'dtype'] },
    { title: 'an unknown dtype', bytes: () => craftSafetensors({ t: entry('F31', [2], [0, 8]) }, 8), fragments: ['tensor "t"', 'unknown dtype "F31"'] },
    { title: 'a dtype named like an Object method', bytes: () => craftSafetensors({ t: entry('toString', [2], [0, 8]) }, 8), fragments: ['tensor "t"', 'unknown dtype'] },
    { title: 'a shape that is not an array', bytes: () => craftSafetensors({ t: entry('F32', 2, [0, 8]) }, 8), fragments: ['tensor "t"', 'shape'] },
    { title: 'a negative dimension', bytes: () => craftSafetensors({ t: entry('F32', [-2], [0, 8]) }, 8), fragments: ['tensor "t"', 'shape'] },
    { title: 'a fractional dimension', bytes: () => craftSafetensors({ t: entry('F32', [2.5], [0, 10]) }, 10), fragments: ['tensor "t"', 'shape'] },
    { title: 'a dimension beyond safe integers', bytes: () => craftSafetensors('{"t":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}', 8), fragments: ['tensor "t"', 'shape'] },
    { title: 'a shape whose product overflows', bytes: () => craftSafetensors({ t: entry('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 8]) }, 8), fragments: ['tensor "t"', 'too large'] },
    { title: 'a string dimension', bytes: () => craftSafetensors({ t: entry('F32', ['2'], [0, 8]) }, 8), fragments: ['tensor "t"', 'shape'] },
    { title: 'missing data_offsets', bytes: () => craftSafetensors({ t: { dtype: 'F32', shape: [2] } }, 8), fragments: ['tensor "t"', 'data_offsets'] },
    { title: 'data_offsets of three numbers', bytes: () => craftSafetensors({ t: entry('F32', [2], [0, 8, 8]) }, 8), fragments: ['tensor "t"', 'data_offsets'] },
    { title: 'a negative offset', bytes: () => craftSafetensors({ t: entry('F32', [2], [-8, 0]) }, 8), fragments: ['tensor "t"', 'data_offsets'] },
    { title: 'offsets that end before they begin', bytes: () => craftSafetensors({ t: entry('F32', [0], [8, 0]) }, 8), fragments: ['tensor "t"', 'end before'] },
    { title: 'a byte length that disagrees with the shape', bytes: () => craftSafetensors({ t: entry('F32', [3], [0, 8]) }, 8), fragments: ['tensor "t"', 'needs 12'] },
    { title: 'a byte length that disagrees with the dtype', bytes: () => craftSafetensors({ t: entry('BF16', [2], [0, 8]) }, 8), fragments: ['tensor "t"', 'needs 4'] },
    { title: 'data that does not start at 0', bytes: () => craftSafetensors({ t: entry('F32', [2], [4, 12]) }, 12), fragments: ['tensor "t"', 'gap'] },
    {
      title: 'a gap between tensors',
      bytes: () => craftSafetensors({ a: entry('F32', [1], [0, 4]), b: entry('F32', [1], [8, 12]) }, 12),
      fragments: ['tensor "b"', 'gap'],
    },
    {
      title: 'overlapping tensors',
      bytes: () => craftSafetensors({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }, 12),
      fragments: ['tensor "b"', 'overlaps tensor "a"'],
    },
    {
      title: 'two tensors on the same bytes',
      bytes: () => craftSafetensors({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [0, 8]) }, 8),
      fragments: ['overlaps'],
    },
    { title: 'trailing bytes after the last tensor', bytes: () => craftSafetensors(good(), 12), fragments: ['trailing'] },
    { title: 'data shorter than the header says (truncated)', bytes: () => craftSafetensors(good(), 6), fragments: ['truncated'] },
    {
      title: 'a duplicated tensor name',
      bytes: () => craftSafetensors('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      fragments: ['tensor name "t" occurs twice'],
    },
    {
      title: 'a duplicated tensor name spelled with an escape',
      bytes: () => craftSafetensors('{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\\u0062":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
      fragments: ['"ab" occurs twice'],
    },
    {
      title: 'a duplicated key inside an entry',
      bytes: () => craftSafetensors('{"t":{"dtype":"F16","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8),
      fragments: ['key "dtype" occurs twice', 't'],
    },
    {
      title: 'a duplicated __metadata__',
      bytes: () => craftSafetensors('{"__metadata__":{},"__metadata__":{},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8),
      fragments: ['"__metadata__" occurs twice'],
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.title}`, async () => {
      const file = writeBytes(dir, `${c.title.replace(/[^a-z0-9]+/gi, '-')}.safetensors`, c.bytes());
      await rejectsWith(SafetensorsFile.open(file), 'E_FORMAT', file, ...c.fragments);
    });
  }

  it('finds duplicate keys only within one object, at any depth', () => {
    assert.strictEqual(findDuplicateKey('{"a":{"x":1},"b":{"x":2}}'), undefined);
    assert.strictEqual(findDuplicateKey('{"a":[{"x":1},{"x":1}],"x":"a,\\"x\\""}'), undefined);
    assert.deepStrictEqual(findDuplicateKey('{"a":{"b":{"c":1,"c":2}}}')?.key, 'c');
    assert.deepStrictEqual(findDuplicateKey('{"a":1, "b":"{\\"a\\":1}", "a":2}')?.key, 'a');
  });
});
