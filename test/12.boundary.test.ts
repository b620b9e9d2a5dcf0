// 12: the N-API boundary. Bad arguments throw a TypeError synchronously; nothing is queued.
import * as assert from 'assert';
import { native } from '../lib/native';
import type { DeltaInput, MergeJob } from '../lib/binding';

function detachedUint8(n: number): Uint8Array {
  const array = new Uint8Array(n);
  structuredClone(array.buffer, { transfer: [array.buffer] });
  return array;
}

function throwsTypeError(fn: () => unknown, pattern: RegExp, what: string) {
  assert.throws(fn, (e: Error) => e instanceof TypeError && pattern.test(e.message), what);
}

describe('12 native boundary: argument checks', () => {
  const good = { data: new Uint8Array(8), dtype: 'F32' as const };

  it('reports the SIMD paths and thread count, and rejects unsupported settings', () => {
    const n = native();
    assert.ok(n.simd.available.includes('scalar'));
    assert.ok(n.simd.available.includes(n.simd.active));
    assert.throws(() => n.setSimd('neon' as never));
    throwsTypeError(() => n.setThreads(0), /setThreads/, 'zero threads');
    throwsTypeError(() => n.setThreads('2' as never), /setThreads/, 'string threads');
    assert.strictEqual(typeof n.cuda.available, 'boolean');
    assert.ok(n.cuda.available || /^unavailable: /.test(n.cuda.description));
  });

  it('wrong types', () => {
    const n = native();
    throwsTypeError(() => n.decode({ data: new Float32Array(2) as never, dtype: 'F32' }, new Float32Array(2)), /Uint8Array/, 'data not Uint8Array');
    throwsTypeError(() => n.decode(good, new Float64Array(2) as never), /Float32Array/, 'out not Float32Array');
    throwsTypeError(() => n.decode(null as never, new Float32Array(2)), /object/, 'null tensor');
    throwsTypeError(() => n.encode([1, 2] as never, 'F16', new Uint8Array(4)), /Float32Array/, 'array src');
    throwsTypeError(() => n.absStats({ ft: good }, [1] as never), /Float64Array/, 'thresholds array');
    throwsTypeError(() => n.gram({} as never), /array/, 'gram not array');
    throwsTypeError(() => n.selectThresholds({ ft: good }, new Float64Array([1]), { rule: 'nearest' as never }), /rule/, 'rule');
    throwsTypeError(() => n.randomUniform({ seedLo: -1, seedHi: 0, streamLo: 0, streamHi: 0 }, 0, new Float32Array(1)), /seedLo/, 'negative seed');
  });

  it('unknown dtypes, and dtypes that cannot be encoded', () => {
    const n = native();
    throwsTypeError(() => n.decode({ data: new Uint8Array(4), dtype: 'F4' as never }, new Float32Array(1)), /unknown dtype/, 'F4');
    throwsTypeError(() => n.encode(new Float32Array(1), 'F64' as never, new Uint8Array(8)), /cannot encode/, 'encode F64');
  });

  it('lengths that disagree with dtype sizes', () => {
    const n = native();
    throwsTypeError(() => n.decode({ data: new Uint8Array(6), dtype: 'F32' }, new Float32Array(1)), /multiple/, 'ragged bytes');
    throwsTypeError(() => n.decode(good, new Float32Array(3)), /expected 2/, 'out length');
    throwsTypeError(() => n.encode(new Float32Array(3), 'BF16', new Uint8Array(4)), /expected 6/, 'encode out');
    throwsTypeError(() => n.delta({ base: { data: new Uint8Array(6), dtype: 'BF16' }, ft: good }, new Float32Array(2)), /base has 3/, 'base vs ft');
    throwsTypeError(() => n.copy(new Uint8Array(3), new Uint8Array(4)), /bytes/, 'copy');
    throwsTypeError(() => n.selectThresholds({ ft: good }, new Float64Array([3])), /integer in \[0, 2\]/, 'k > n');
    throwsTypeError(() => n.selectThresholds({ ft: good }, new Float64Array([1]), { rows: 3 }), /rows/, 'rows');
    const ks1 = { ks: new Float64Array([1]) };
    throwsTypeError(() => n.selectThresholdsShared({ fts: [] }, []), /non-empty array/, 'no fine-tunes');
    throwsTypeError(() => n.selectThresholdsShared({ base: good, fts: [good, { data: new Uint8Array(12), dtype: 'F32' }] }, [ks1, ks1]), /fts\[1\] has 3 elements, base has 2/, 'ft size');
    throwsTypeError(() => n.selectThresholdsShared({ base: good, fts: [good] }, [ks1, ks1]), /one entry per fine-tune/, 'requests count');
    throwsTypeError(() => n.selectThresholdsShared({ fts: [good] }, [{ ks: new Float64Array([3]) }]), /requests\[0\]\)\.ks\[0\] = 3\.0+ must be an integer in \[0, 2\]/, 'shared k > n');
    throwsTypeError(() => n.selectThresholdsShared({ fts: [good] }, [{ ks: new Float64Array([1]), rule: 'near' as never }]), /rule/, 'shared rule');
    throwsTypeError(() => n.linearCombine([good], new Float64Array(2), new Uint8Array(8), 'F32'), /coeffs/, 'coeffs');
    const job: MergeJob = {
      base: good, models: [{ ...good, weight: 1, sparsify: { kind: 'bands', rules: { bits: new Uint32Array(2), cutoff: new Float64Array(1) }, factor: new Float64Array(2) } }],
      consensus: 'sum', normalize: false, lambda: 1, out: new Uint8Array(8), outDtype: 'F32',
    };
    throwsTypeError(() => n.mergeTensor(job), /bits has 2 entries, cutoff 1/, 'bands arrays');
    throwsTypeError(() => n.mergeTensor({ ...job, models: [{ ...good, weight: 1, sparsify: { kind: 'dense', factor: 1 } }], out: new Uint8Array(6) }), /expected 8/, 'merge out');
    throwsTypeError(() => n.mergeTensor({ ...job, models: [{ ...good, weight: 1, sparsify: { kind: 'dense', factor: 1 } }], consensus: 'majority' as never }), /consensus/, 'consensus');
    throwsTypeError(() => n.mergeTensor({ ...job, models: [{ data: new Uint8Array(4), dtype: 'F32', weight: 1, sparsify: { kind: 'dense', factor: 1 } }] }), /elements, base has/, 'model size');
  });

  it('detached buffers', () => {
    const n = native();
    throwsTypeError(() => n.decode({ data: detachedUint8(8), dtype: 'F32' }, new Float32Array(0)), /detached/, 'detached input');
    const out = new Float32Array(2);
    structuredClone(out.buffer, { transfer: [out.buffer] });
    throwsTypeError(() => n.decode(good, out), /detached/, 'detached output');
    const input: DeltaInput = { ft: { data: detachedUint8(8), dtype: 'F32' } };
    throwsTypeError(() => n.absStats(input, new Float64Array(0)), /detached/, 'absStats');
  });

  it('zero-length tensors resolve', async () => {
    const n = native();
    const empty = { data: new Uint8Array(0), dtype: 'BF16' as const };
    await n.decode(empty, new Float32Array(0));
    const s = await n.absStats({ ft: empty }, new Float64Array([0]));
    assert.strictEqual(s.sumAbs, 0);
    const r = await n.selectThresholds({ ft: empty }, new Float64Array([0]));
    assert.deepStrictEqual([r.bits[0], r.cutoff[0]], [0xffffffff, -1]);
  });
});
