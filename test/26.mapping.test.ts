/**
 * Mapped inputs (NativeBinding.mapRange, SafetensorsFile.map, runMerge's mmap option) and the
 * writer's write-behind (writeback): the same bytes as positional reads and plain writes,
 * mappings released when done, bad ranges refused, and the read fallback when mapping fails.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { merge } from '../lib/index';
import { ModelSource } from '../lib/io/model';
import { SafetensorsFile } from '../lib/io/safetensors';
import { ModelWriter } from '../lib/io/writer';
import { native } from '../lib/native';
import { envSwitch, mappingEnabled, TensorInputs } from '../lib/run/inputs';
import { craftSafetensors, patternBytes, writeBytes } from './20.helpers';
import { family, folderDifference, methodConfig, writeConfig } from './80.helpers';
import { tmpDir } from './hooks';

describe('26 mapped inputs and write-behind', function () {
  let dir: string;
  let file: string;
  const data = patternBytes(3 * 4096 + 77, 5);

  before(() => {
    dir = tmpDir('26-mapping');
    // Tensors at offsets that are not page-aligned, one spanning several pages.
    const header = {
      a: { dtype: 'U8', shape: [13], data_offsets: [0, 13] },
      b: { dtype: 'U8', shape: [3 * 4096], data_offsets: [13, 13 + 3 * 4096] },
      c: { dtype: 'U8', shape: [64], data_offsets: [13 + 3 * 4096, 77 + 3 * 4096] },
    };
    file = writeBytes(dir, 'model.safetensors', craftSafetensors(header, data));
  });

  it('mapRange gives the bytes a positional read gives, at any offset', () => {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      for (const [offset, length] of [[0, 1], [1, 4096], [4095, 2], [100, 9000], [size - 5, 5], [0, size]]) {
        const view = native().mapRange(fd, offset, length);
        const expected = Buffer.alloc(length);
        fs.readSync(fd, expected, 0, length, offset);
        assert.equal(view.byteLength, length);
        assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(expected), `bytes at ${offset}+${length}`);
        assert.equal(native().unmapRange(view), true);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses ranges outside the file and bad arguments', () => {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      assert.throws(() => native().mapRange(fd, size - 4, 5), /outside the file/);
      assert.throws(() => native().mapRange(fd, size + 1, 0), /outside the file/);
      assert.throws(() => native().mapRange(fd, -1, 4), TypeError);
      assert.throws(() => native().mapRange(fd, 1.5, 4), TypeError);
      assert.equal(native().mapRange(fd, size, 0).byteLength, 0);
    } finally {
      fs.closeSync(fd);
    }
    assert.throws(() => native().unmapRange(42 as unknown as Uint8Array), TypeError);
  });

  it('releases a mapping at once with unmapRange (its views become empty), once only', () => {
    const fd = fs.openSync(file, 'r');
    try {
      const before = native().mappedStats();
      const view = native().mapRange(fd, 10, 5000);
      const sub = view.subarray(100, 200);
      assert.equal(native().mappedStats().mappings, before.mappings + 1);
      assert.equal(native().unmapRange(sub), true, 'any view of the mapping releases it');
      assert.equal(view.byteLength, 0);
      assert.equal(sub.byteLength, 0);
      assert.deepEqual(native().mappedStats(), before);
      assert.equal(native().unmapRange(view), false, 'already released');
      assert.equal(native().unmapRange(new Uint8Array(8)), false, 'not a mapping');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a file truncated under a live mapping ends the process with a clear E_IO message, not a bare SIGBUS', () => {
    const victim = writeBytes(dir, 'victim.bin', patternBytes(5 * 4096));
    const script = `
      const fs = require('fs');
      const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))});
      const fd = fs.openSync(${JSON.stringify(victim)}, 'r+');
      const view = native().mapRange(fd, 100, 4 * 4096);
      let sum = view[0];
      fs.ftruncateSync(fd, 0);
      for (let i = 0; i < view.byteLength; i += 4096) sum += view[i];
      console.log('survived', sum);
    `;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(result.status, 74, `exit status ${result.status} signal ${result.signal}: ${result.stderr}`);
    assert.match(result.stderr, /E_IO: an input model file shrank/);
    assert.doesNotMatch(result.stdout, /survived/);
  });

  it('SafetensorsFile.map: the tensor bytes read() gives; undefined when the mapper fails; refused after close', async () => {
    const st = await SafetensorsFile.open(file);
    try {
      const mapper = (fd: number, offset: number, length: number) => native().mapRange(fd, offset, length);
      for (const name of ['a', 'b', 'c']) {
        const mapped = st.map(name, mapper)!;
        assert.deepEqual(Buffer.from(mapped), Buffer.from(await st.read(name)));
        native().unmapRange(mapped);
      }
      assert.equal(st.map('b', () => { throw new Error('mmap refused'); }), undefined);
      assert.equal(st.map('b', () => new Uint8Array(3)), undefined, 'a view of the wrong size is not used');
      assert.throws(() => st.map('nope', mapper), /no tensor named/);
    } finally {
      await st.close();
    }
    assert.throws(() => st.map('a', () => new Uint8Array(13)), /after the file was closed/);
  });

  it('TensorInputs: maps and releases, or reads into the buffer given when mapping is off or fails', async () => {
    const source = await ModelSource.open(file);
    try {
      const held: Uint8Array[] = [];
      const before = native().mappedStats().mappings;
      const mapped = await new TensorInputs(native(), true).get(source, 'b', () => undefined, held);
      assert.equal(held.length, 1);
      assert.equal(native().mappedStats().mappings, before + 1);
      assert.deepEqual(Buffer.from(mapped), Buffer.from(await source.read('b')));
      new TensorInputs(native(), true).release(held);
      assert.equal(held.length, 0);
      assert.equal(native().mappedStats().mappings, before);

      const buffer = new Uint8Array(5 * 4096);
      const read = await new TensorInputs(native(), false).get(source, 'b', () => buffer, held);
      assert.equal(held.length, 0);
      assert.equal(read.buffer, buffer.buffer, 'read into the buffer given');
      assert.deepEqual(Buffer.from(read), Buffer.from(mapped.byteLength ? mapped : await source.read('b')));

      // A binding whose mapRange fails: the fallback reads.
      const failing = { ...native(), mapRange: () => { throw new Error('ENOMEM'); } } as unknown as ReturnType<typeof native>;
      const fallback = await new TensorInputs(failing, true).get(source, 'c', () => undefined, held);
      assert.equal(held.length, 0);
      assert.deepEqual(Buffer.from(fallback), Buffer.from(await source.read('c')));
    } finally {
      await source.close();
    }
  });

  it('switches: DPPA_MMAP (default off), DPPA_WRITEBACK (default on), an explicit option wins', () => {
    assert.equal(mappingEnabled(undefined, {}), false);
    assert.equal(mappingEnabled(undefined, { DPPA_MMAP: '1' }), true);
    assert.equal(mappingEnabled(false, { DPPA_MMAP: '1' }), false);
    assert.equal(mappingEnabled(true, { DPPA_MMAP: '0' }), true);
    assert.equal(envSwitch('DPPA_WRITEBACK', true, {}), true);
    assert.equal(envSwitch('DPPA_WRITEBACK', true, { DPPA_WRITEBACK: 'off' }), false);
    assert.equal(envSwitch('DPPA_WRITEBACK', true, { DPPA_WRITEBACK: 'bogus' }), true);
  });

  it('a merge gives the same bytes mapped or read, with or without write-behind, and leaves no mapping', async () => {
    const fam = await family(tmpDir('26-family'));
    for (const method of ['ties', 'dppa'] as const) {
      const config = writeConfig(fam, `26-${method}`, methodConfig(method));
      const before = native().mappedStats().mappings;
      const outs = [
        { mmap: false, writeback: false },
        { mmap: true, writeback: true },
        { mmap: true, writeback: false },
        { mmap: false, writeback: true },
      ].map((o, i) => ({ ...o, out: path.join(fam, `out-26-${method}-${i}`) }));
      for (const o of outs) await merge(config, o.out, { mmap: o.mmap, writeback: o.writeback, shardSize: 30_000 });
      assert.equal(native().mappedStats().mappings, before, 'every mapping was released');
      for (const o of outs.slice(1)) assert.equal(folderDifference(outs[0].out, o.out), undefined, `${method} ${JSON.stringify(o)}`);
    }
  });

  it('startWriteback / writeback on a real file: the bytes stay, bad arguments are refused', async () => {
    const file = path.join(dir, 'wb-real.bin');
    const bytes = patternBytes(3 * 4096 + 17, 5);
    fs.writeFileSync(file, bytes);
    const fd = fs.openSync(file, 'r+');
    try {
      assert.equal(native().startWriteback(fd, 0, bytes.byteLength), undefined);
      native().startWriteback(fd, 0, 0);
      await native().writeback(fd, 0, bytes.byteLength);
      assert.throws(() => native().startWriteback(fd, -1, 4), TypeError);
      assert.throws(() => native().startWriteback(fd, 0, 1.5), TypeError);
      assert.throws(() => native().startWriteback('x' as unknown as number, 0, 4), TypeError);
    } finally {
      fs.closeSync(fd);
    }
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), bytes);
  });

  it('the writer hands written pages to writeback in order, whole pages only until a shard is complete', async () => {
    const out = path.join(dir, 'wb-out');
    const calls: [number, number][] = [];
    const started: [number, number][] = [];
    const writer = await ModelWriter.create(out, {
      // x is larger than two of the writer's writeback stretches (16 MiB) and ends mid-page.
      tensors: [
        { name: 'x', dtype: 'BF16', shape: [20 * 1024 * 1024 + 61] },
        { name: 'y', dtype: 'BF16', shape: [38] },
      ],
      writeback: async (_fd, offset, length) => {
        calls.push([offset, length]);
      },
      startWriteback: (_fd, offset, length) => {
        // Started before it is waited for: the wait of the same stretch has not come yet.
        assert.equal(calls.length, started.length);
        started.push([offset, length]);
      },
    });
    const x = writer.tensor('x');
    const y = writer.tensor('y');
    await writer.writeTensor('y', patternBytes(y.byteLength, 1)); // out of order: nothing contiguous yet
    assert.equal(calls.length, 0);
    await writer.writeTensor('x', patternBytes(x.byteLength, 2));
    await writer.finish();
    const fileBytes = fs.statSync(path.join(out, 'model.safetensors')).size;
    assert.ok(calls.length >= 1);
    assert.equal(calls[0][0], 0);
    let end = 0;
    for (const [offset, length] of calls) {
      assert.equal(offset, end, 'contiguous, in order');
      end = offset + length;
    }
    assert.equal(end, fileBytes, 'the whole file, once complete');
    assert.deepEqual(started, calls, 'each stretch is started, then waited for');
    // x is written in pieces, each handed on as it lands: its first stretch ends inside x.
    assert.ok(calls.length >= 3 && calls[0][1] < x.byteLength, JSON.stringify(calls));
    const bytes = fs.readFileSync(path.join(out, 'model.safetensors'));
    assert.deepEqual(bytes.subarray(y.fileOffset, y.fileOffset + y.byteLength), Buffer.from(patternBytes(y.byteLength, 1)));
  });
});
