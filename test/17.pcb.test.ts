// 17: PCB-Merging's native kernels: pcbScores and pcbMerge against the float64 formulas of
// lib/methods/pcb.ts written out in JS (Math.exp, Math.tanh), on awkward sizes, 1 to 3 tasks,
// with clipping, non-finite values and zero ranges; orderHistogram against a JS count of order
// keys, orderTails against a sort and its extremes against a JS scan, and the |clip(τ)| range
// derived from the extremes against a
// scan of every value; the model-scope statistics (clip quantiles from the tails, sampled score
// bins, and the extra pass when the sample misleads) against sorts and scans; all identical at 1 and 2 threads; argument checks.
import * as assert from 'assert';
import { ClipRangeExtremes, pcbStatistics } from '../lib/methods/pcb';
import { native } from '../lib/native';
import * as ref from './ref/kernels-ref';

interface Params {
  clipLow: number;
  clipHigh: number;
  absMin: number;
  absMax: number;
}

function scoresRef(deltas: Float32Array[], params: Params[]): Float32Array[] {
  const tasks = deltas.length;
  const n = deltas[0].length;
  const out = deltas.map(() => new Float32Array(n));
  const clipped = new Float32Array(tasks);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let t = 0; t < tasks; t++) {
      const { clipLow, clipHigh } = params[t];
      const x = deltas[t][i];
      clipped[t] = x < clipLow ? clipLow : x > clipHigh ? clipHigh : x;
      sum += clipped[t];
    }
    for (let t = 0; t < tasks; t++) {
      const range = params[t].absMax - params[t].absMin;
      const normalized = range > 0 ? (Math.abs(clipped[t]) - params[t].absMin) / range : 0;
      out[t][i] = Math.exp(tasks * normalized * normalized) * Math.tanh(clipped[t] * sum);
    }
  }
  return out;
}

/** Elements whose float32 bits differ, and those further apart than one ulp (NaN equal to NaN). */
function compare(actual: Float32Array, expected: Float32Array): { differ: number; beyondUlp: number } {
  const a = new Int32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Int32Array(expected.buffer, expected.byteOffset, expected.length);
  let differ = 0, beyondUlp = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) continue;
    differ++;
    if (Math.abs(a[i] - e[i]) > 1) beyondUlp++;
  }
  return { differ, beyondUlp };
}

function paramsArray(params: Params[]): Float64Array {
  return Float64Array.from(params.flatMap((p) => [p.clipLow, p.clipHigh, p.absMin, p.absMax]));
}

describe('17 pcb: native scores', () => {
  const SIZES = [0, 1, 7, 4097, 65536 * 2 + 5];

  for (const tasks of [1, 2, 3]) {
    // Scale 0.02: δ-sized values, c·S far below 2^-5 (tanh by its series); scale 20: c·S mostly
    // above it (tanh from the library).
    it(`${tasks} task(s): the float64 formula on sizes ${SIZES.join(', ')}, small and large products, at 1 and 2 threads`, async () => {
      const n = native();
      const threads = n.getThreads();
      try {
        for (const [size, scale] of SIZES.flatMap((s) => [[s, 0.02], [s, 20]])) {
          const deltas = Array.from({ length: tasks }, (_, t) => {
            const r = ref.rng(31 * size + t);
            return Float32Array.from({ length: size }, () => 0.02 * (r() + r() + r() - 1.5));
          });
          if (size > 7) {
            deltas[0][3] = NaN;
            deltas[tasks - 1][5] = Infinity;
            deltas[0][6] = -Infinity;
          }
          // Clips that bite (about 1% of each side), and one task whose |τ| range is 0.
          let params: Params[] = deltas.map((_, t) => ({ clipLow: -0.021 - 0.001 * t, clipHigh: 0.0205, absMin: 0.0001, absMax: 0.0209 }));
          if (tasks > 1) params[1] = { ...params[1], absMin: 0.01, absMax: 0.01 };
          if (scale !== 0.02) {
            const k = scale / 0.02;
            for (const d of deltas) for (let i = 0; i < d.length; i++) d[i] *= k;
            params = params.map((p) => ({ clipLow: p.clipLow * k, clipHigh: p.clipHigh * k, absMin: p.absMin * k, absMax: p.absMax * k }));
          }
          const expected = scoresRef(deltas, params);
          for (const t of [1, 2]) {
            n.setThreads(t);
            const scores = deltas.map(() => new Float32Array(size).fill(12345));
            await n.pcbScores(deltas, paramsArray(params), scores);
            for (let task = 0; task < tasks; task++) {
              const { differ, beyondUlp } = compare(scores[task], expected[task]);
              const what = `size ${size}, scale ${scale}, task ${task}, ${t} thread(s)`;
              assert.strictEqual(beyondUlp, 0, `${what}: ${beyondUlp} scores beyond one float32 ulp`);
              // exp and tanh of the C library and of V8 may differ in the last bit of a double,
              // which reaches the float32 result once in ~2^29 elements.
              assert.ok(differ <= 2, `${what}: ${differ} scores differ in the last bit`);
            }
          }
        }
      } finally {
        n.setThreads(threads);
      }
    });
  }

  it('scores reach the weights: a larger |τ| that agrees with the others scores higher', async () => {
    const deltas = [Float32Array.of(0.01, 0.02, -0.005), Float32Array.of(0.01, 0.01, 0.01)];
    const params: Params[] = deltas.map(() => ({ clipLow: -1, clipHigh: 1, absMin: 0, absMax: 0.02 }));
    const scores = deltas.map(() => new Float32Array(3));
    await native().pcbScores(deltas, paramsArray(params), scores);
    assert.ok(scores[0][1] > scores[0][0], 'larger agreeing |τ|');
    assert.ok(scores[0][2] < 0, 'against the sign of the sum: negative');
  });

  it('rejects bad arguments with a TypeError naming them', () => {
    const n = native();
    const d = new Float32Array(4);
    const p = new Float64Array(4);
    const cases: Array<[() => unknown, RegExp]> = [
      [() => n.pcbScores([], p, []), /deltas\) must hold 1 to 64 arrays/],
      [() => n.pcbScores([d, new Float32Array(5)], new Float64Array(8), [d, d]), /deltas\)\[1\] has 5 elements/],
      [() => n.pcbScores([d], p, [new Float32Array(3)]), /scores\)\[0\] has 3 elements|scores\) must be 1 arrays of 4/],
      [() => n.pcbScores([d], p, [d, d]), /scores\) must be 1 arrays of 4 elements/],
      [() => n.pcbScores([d], new Float64Array(3), [d]), /params\) has 3 entries, expected 4 per task/],
      [() => n.pcbScores([d], Float64Array.of(0, 1, NaN, 1), [d]), /params\)\[2\] is NaN/],
      [() => n.pcbScores([new Float64Array(4) as never], p, [d]), /deltas\)\[0\].*Float32Array/],
      [() => n.pcbScores(d as never, p, [d]), /deltas\) must be an array/],
    ];
    for (const [fn, pattern] of cases) assert.throws(fn, (e: Error) => e instanceof TypeError && pattern.test(e.message), String(pattern));
  });
});

/** The order key of float32 bits, as orderHistogram defines it (a branch, unlike the kernel). */
function orderKeyRef(bits: number): number {
  return bits >= 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

describe('17 pcb: order histograms', () => {
  it('counts order keys (high bits, then low bits under a prefix) as a JS count, sizes 0..131077, 1 and 2 threads', async () => {
    const n = native();
    const threads = n.getThreads();
    try {
      for (const size of [0, 1, 7, 4097, 65536 * 2 + 5]) {
        const r = ref.rng(size + 99);
        const values = Float32Array.from({ length: size }, () => (r() - 0.5) * 0.04);
        // Special values: both zeros, infinities, NaN, the extremes of float32.
        const specials = [0, -0, Infinity, -Infinity, NaN, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45];
        specials.forEach((v, i) => {
          if (i < size) values[i] = v;
        });
        const bits = new Uint32Array(values.buffer);
        const keys = Array.from(bits, orderKeyRef);
        // The bin of the median key, for a prefix that selects one high bin.
        const median = [...keys].sort((a, b) => a - b)[size >> 1] ?? 0;
        const cases: Array<[number, number, number, number]> = [
          // [bins, shift, prefixMask, prefixValue]
          [65536, 16, 0, 0],
          [65536, 0, 0xffff0000, (median & 0xffff0000) >>> 0],
          [2048, 21, 0, 0],
          [1, 0, 0, 0],
          [256, 8, 0x80000000, 0], // negatives only
        ];
        for (const [bins, shift, prefixMask, prefixValue] of cases) {
          const expected = new Float64Array(bins).fill(0.5);  // the kernel adds to what is there
          for (const key of keys) if (((key & prefixMask) >>> 0) === prefixValue) expected[(key >>> shift) & (bins - 1)]++;
          for (const t of [1, 2]) {
            n.setThreads(t);
            const counts = new Float64Array(bins).fill(0.5);
            await n.orderHistogram(values, counts, shift, prefixMask, prefixValue);
            assert.deepStrictEqual(Array.from(counts), Array.from(expected), `size ${size}, bins ${bins}, shift ${shift}, mask ${prefixMask}, ${t} thread(s)`);
          }
        }
      }
    } finally {
      n.setThreads(threads);
    }
  });

  it('orderTails gathers the extremes (least, largest, largest signed, least unsigned; NaN skipped) as a JS scan, running across calls', async () => {
    const n = native();
    const threads = n.getThreads();
    const signBit = (x: number) => x < 0 || Object.is(x, -0);
    try {
      for (const size of [0, 1, 7, 4097, 65536 * 2 + 5]) {
        for (const mix of ['mixed', 'positive', 'negative', 'infinite', 'nan'] as const) {
          const r = ref.rng(size * 7 + mix.length);
          const values = Float32Array.from({ length: size }, () => {
            const u = (r() - 0.5) * 0.04;
            if (mix === 'positive') return Math.abs(u);
            if (mix === 'negative') return -Math.abs(u) - 1e-30;
            if (mix === 'infinite') return r() < 0.5 ? Infinity : -Infinity;
            if (mix === 'nan') return r() < 0.9 ? NaN : u;
            return u;
          });
          if (mix === 'mixed') [-0, 0, NaN, -1e-45, 1e-45].forEach((v, i) => i < size && (values[i] = v));
          // Two calls over halves: the entries are running extremes.
          const expected = Float64Array.of(Infinity, -Infinity, -Infinity, Infinity);
          for (const x of values) {
            if (Number.isNaN(x)) continue;
            expected[0] = Math.min(expected[0], x);
            expected[1] = Math.max(expected[1], x);
            // Among signed values -0 is the largest; among unsigned ones +0 the least.
            if (signBit(x)) expected[2] = x > expected[2] || Object.is(expected[2], -Infinity) ? x : expected[2];
            else expected[3] = x < expected[3] ? x : expected[3];
          }
          for (const t of [1, 2]) {
            n.setThreads(t);
            const extremes = Float64Array.of(Infinity, -Infinity, -Infinity, Infinity);
            const half = size >> 1;
            const tails = () => [new Uint32Array(4), new Uint32Array(4), new Float64Array(2)] as const;
            await n.orderTails(values.subarray(0, half), ...tails(), extremes);
            await n.orderTails(values.subarray(half), ...tails(), extremes);
            const label = `size ${size}, ${mix}, ${t} thread(s)`;
            // Object.is: -0 and +0 are different answers here.
            for (let k = 0; k < 4; k++) assert.ok(Object.is(extremes[k], expected[k]), `${label}: entry ${k} is ${extremes[k]}, expected ${expected[k]}`);
          }
        }
      }
    } finally {
      n.setThreads(threads);
    }
  });

  it('the |clip(τ)| range from the extremes equals a scan of every value, for any clip bounds (NaN and ±Inf included)', async () => {
    const scan = (values: Float32Array, low: number, high: number): [number, number] => {
      let least = Infinity, most = 0;
      for (const x of values) {
        const a = Math.abs(x < low ? low : x > high ? high : x);
        if (a < least) least = a;
        if (a > most) most = a;
      }
      return [least, most];
    };
    const r = ref.rng(1717);
    const sets: Float32Array[] = [
      new Float32Array(0),
      Float32Array.of(NaN, NaN),
      Float32Array.of(-0),
      Float32Array.of(0, -0),
      Float32Array.of(-Infinity),
      Float32Array.of(Infinity, 3),
      Float32Array.of(-Infinity, Infinity, NaN),
      Float32Array.from({ length: 200 }, () => (r() - 0.5) * 4),
      Float32Array.from({ length: 200 }, () => r() * 4 + 0.5),
      Float32Array.from({ length: 200 }, () => -r() * 4 - 0.5),
      Float32Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? NaN : i % 5 === 0 ? -Infinity : (r() - 0.7) * 4)),
    ];
    const bounds = [-Infinity, -3, -1, -0.25, -0, 0, 0.25, 1, 3, Infinity, NaN];
    for (const [s, values] of sets.entries()) {
      const extremes = new ClipRangeExtremes();
      await native().orderTails(values, new Uint32Array(1), new Uint32Array(1), new Float64Array(2), extremes.values);
      for (const low of bounds) {
        for (const high of bounds) {
          if (low > high) continue; // quantiles: low <= high, or NaN
          assert.deepStrictEqual(extremes.absClipRange(low, high), scan(values, low, high), `set ${s}, clip [${low}, ${high}]`);
        }
      }
    }
  });

  it('orderTails keeps the k smallest and largest keys (NaN, ±0, ±Inf, ties) as a sort, running across calls, 1 and 2 threads', async () => {
    const n = native();
    const threads = n.getThreads();
    try {
      for (const size of [0, 1, 7, 4097, 65536 * 2 + 5]) {
        for (const k of [1, 3, 50, 5000]) {
          const r = ref.rng(size + k);
          // Few distinct values (ties at the cut), and the specials.
          const values = Float32Array.from({ length: size }, () => Math.round((r() - 0.5) * 64) / 16);
          [NaN, -NaN, Infinity, -Infinity, 0, -0, 3.4028234663852886e38, -1e-45].forEach((v, i) => i < size && (values[size - 1 - 3 * i] = v));
          const keys = Array.from(new Uint32Array(values.buffer), orderKeyRef).sort((a, b) => a - b);
          for (const t of [1, 2]) {
            n.setThreads(t);
            const low = new Uint32Array(k), high = new Uint32Array(k), counts = new Float64Array(2);
            // In three calls: the tails run on across them.
            const cuts = [0, size >> 2, (size >> 1) + 1, size];
            for (let c = 0; c < 3; c++) await n.orderTails(values.subarray(cuts[c], cuts[c + 1]), low, high, counts);
            const kept = Math.min(k, size);
            const label = `size ${size}, k ${k}, ${t} thread(s)`;
            assert.deepStrictEqual(Array.from(counts), [kept, kept], `${label}: counts`);
            assert.deepStrictEqual(Array.from(low.subarray(0, kept)), keys.slice(0, kept), `${label}: low`);
            assert.deepStrictEqual(Array.from(high.subarray(0, kept)), keys.slice(size - kept), `${label}: high`);
          }
        }
      }
    } finally {
      n.setThreads(threads);
    }
  });

  it('orders keys like the floats they come from', async () => {
    const values = Float32Array.of(-Infinity, -2, -1e-45, -0, 0, 1e-45, 0.5, 2, Infinity);
    const counts = new Float64Array(65536);
    const order: number[] = [];
    for (let i = 0; i < values.length; i++) {
      // One value at a time: the (shift 16) bin it lands in must not decrease along the list.
      counts.fill(0);
      await native().orderHistogram(values.subarray(i, i + 1), counts, 16, 0, 0);
      order.push(counts.findIndex((c) => c === 1));
    }
    for (let i = 1; i < order.length; i++) assert.ok(order[i] >= order[i - 1], `bin of ${values[i]} (${order[i]}) below that of ${values[i - 1]}`);
    assert.ok(order[3] < order[4], '-0 sorts below +0');
  });

  it('rejects bad arguments with a TypeError naming them', () => {
    const n = native();
    const v = new Float32Array(4);
    const cases: Array<[() => unknown, RegExp]> = [
      [() => n.orderHistogram(v, new Float64Array(3), 0, 0, 0), /counts\) must have a power of two <= 65536 entries, has 3/],
      [() => n.orderHistogram(v, new Float64Array(131072), 0, 0, 0), /power of two <= 65536/],
      [() => n.orderHistogram(v, new Float64Array(0), 0, 0, 0), /power of two/],
      [() => n.orderHistogram(v, new Float64Array(16), 32, 0, 0), /shift/],
      [() => n.orderHistogram(v, new Float64Array(16), 0, -1, 0), /prefixMask/],
      [() => n.orderHistogram(new Float64Array(4) as never, new Float64Array(16), 0, 0, 0), /values\).*Float32Array/],
      [() => n.orderHistogram(v, new Float32Array(16) as never, 0, 0, 0), /counts\).*Float64Array/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(3), new Float64Array(2), new Float64Array(3)), /extremes\) must have 4 entries, has 3/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(3), new Float64Array(2), new Float32Array(4) as never), /extremes\).*Float64Array/],
      [() => n.orderTails(v, new Uint32Array(0), new Uint32Array(0), new Float64Array(2)), /same length k >= 1/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(4), new Float64Array(2)), /same length k >= 1, have 3 and 4/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(3), new Float64Array(3)), /counts\) must have 2 entries/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(3), Float64Array.of(4, 0)), /whole numbers 0..k/],
      [() => n.orderTails(v, new Uint32Array(3), new Uint32Array(3), Float64Array.of(0.5, 0)), /whole numbers 0..k/],
      [() => n.orderTails(v, new Int32Array(3) as never, new Uint32Array(3), new Float64Array(2)), /low\).*Uint32Array/],
    ];
    for (const [fn, pattern] of cases) assert.throws(fn, (e: Error) => e instanceof TypeError && pattern.test(e.message), String(pattern));
  });
});

describe('17 pcb: weighted mean', () => {
  interface MergeParams {
    clipLow: number;
    clipHigh: number;
    threshold: number;
    max: number;
  }
  function mergeRef(deltas: Float32Array[], scores: Float32Array[], params: MergeParams[]): Float32Array {
    const out = new Float32Array(deltas[0].length);
    for (let i = 0; i < out.length; i++) {
      let weighted = 0, total = 0;
      for (let t = 0; t < deltas.length; t++) {
        const p = params[t];
        if (!(scores[t][i] >= p.threshold)) continue;
        const range = p.max - p.threshold;
        const w = range > 0 ? (scores[t][i] - p.threshold) / range : 1;
        const x = deltas[t][i];
        weighted += w * Math.fround(x < p.clipLow ? p.clipLow : x > p.clipHigh ? p.clipHigh : x);
        total += w;
      }
      out[i] = total > 0 ? weighted / total : 0;
    }
    return out;
  }

  for (const tasks of [1, 2, 3]) {
    it(`${tasks} task(s): Σ w·c / Σ w over the scores at or above each threshold, bit for bit, and the NaN/Inf per task, sizes 0..131077, 1 and 2 threads`, async () => {
      const n = native();
      const threads = n.getThreads();
      try {
        for (const size of [0, 1, 7, 4097, 65536 * 2 + 5]) {
          const r = ref.rng(7 * size + tasks);
          const deltas = Array.from({ length: tasks }, () => Float32Array.from({ length: size }, () => 0.02 * (r() + r() + r() - 1.5)));
          const scores = Array.from({ length: tasks }, () => Float32Array.from({ length: size }, () => 2 * r() - 0.5));
          if (size > 7) {
            scores[0][2] = NaN;
            deltas[tasks - 1][4] = NaN;
            deltas[0][5] = Infinity;
          }
          // Task 1 (when there): a zero score range, every kept one weighs 1; task 2: keeps none.
          const params: MergeParams[] = Array.from({ length: tasks }, (_, t) => ({ clipLow: -0.02, clipHigh: 0.019 + 0.001 * t, threshold: 0.9, max: 1.5 }));
          if (tasks > 1) params[1] = { ...params[1], threshold: 0.8, max: 0.8 };
          if (tasks > 2) params[2] = { ...params[2], threshold: Infinity, max: -Infinity };
          const expected = mergeRef(deltas, scores, params);
          const flat = Float64Array.from(params.flatMap((p) => [p.clipLow, p.clipHigh, p.threshold, p.max]));
          for (const t of [1, 2]) {
            n.setThreads(t);
            const out = new Float32Array(size).fill(7);
            const { nonFinite } = await n.pcbMerge(deltas, scores, flat, out);
            assert.deepStrictEqual(new Uint32Array(out.buffer), new Uint32Array(expected.buffer), `size ${size}, ${t} thread(s)`);
            const expectedNonFinite = deltas.map((d) => d.filter((x) => !Number.isFinite(x)).length);
            assert.deepStrictEqual(Array.from(nonFinite), expectedNonFinite, `size ${size}, ${t} thread(s): NaN/Inf per task`);
          }
        }
      } finally {
        n.setThreads(threads);
      }
    });
  }

  it('rejects bad arguments with a TypeError naming them', () => {
    const n = native();
    const d = new Float32Array(4);
    const p = new Float64Array(4);
    const cases: Array<[() => unknown, RegExp]> = [
      [() => n.pcbMerge([], [], p, d), /deltas\) must hold 1 to 64 arrays/],
      [() => n.pcbMerge([d], [d, d], p, d), /scores\) must be 1 arrays of 4 elements/],
      [() => n.pcbMerge([d], [new Float32Array(3)], p, d), /scores\) must be 1 arrays of 4 elements/],
      [() => n.pcbMerge([d], [d], new Float64Array(8), d), /params\) has 8 entries, expected 4 per task/],
      [() => n.pcbMerge([d], [d], Float64Array.of(0, 1, 0, NaN), d), /params\)\[3\] is NaN/],
      [() => n.pcbMerge([d], [d], p, new Float32Array(5)), /out\) has 5 elements, expected 4/],
      [() => n.pcbMerge([d], [d], p, new Float64Array(4) as never), /out\).*Float32Array/],
    ];
    for (const [fn, pattern] of cases) assert.throws(fn, (e: Error) => e instanceof TypeError && pattern.test(e.message), String(pattern));
  });
});

describe('17 pcb: statistics of a scope', () => {
  /** torch.quantile's interpolation between order statistics of the sorted values. */
  function quantile(sorted: Float32Array, q: number): number {
    const position = q * (sorted.length - 1);
    const a = sorted[Math.floor(position)], b = sorted[Math.ceil(position)];
    return a + (position - Math.floor(position)) * (b - a);
  }

  async function check(deltas: Float32Array[], ratio: number, label: string): Promise<{ morePasses: number; visits: number }> {
    const n = native();
    const size = deltas[0].length;
    let morePasses = 0, visits = 0;
    // Three uneven chunks: the sample's positions run on across chunk ends.
    const cuts = [0, Math.floor(size / 3) + 5, Math.floor((2 * size) / 3) - 3, size];
    const stats = await pcbStatistics(
      n,
      async (visit) => {
        visits++;
        for (let c = 0; c < 3; c++) await visit(deltas.map((d) => d.subarray(cuts[c], cuts[c + 1])));
      },
      deltas.length,
      ratio,
      size,
      { morePasses: (p) => (morePasses += p) },
    );
    const clipped = stats.map((s) => ({ clipLow: s.clipLow, clipHigh: s.clipHigh, absMin: s.absMin, absMax: s.absMax }));
    const scores = deltas.map(() => new Float32Array(size));
    await n.pcbScores(deltas, paramsArray(clipped), scores);
    deltas.forEach((d, t) => {
      const sorted = Float32Array.from(d).sort();
      assert.strictEqual(stats[t].clipLow, quantile(sorted, 0.0001), `${label}: task ${t} clipLow`);
      assert.strictEqual(stats[t].clipHigh, quantile(sorted, 0.9999), `${label}: task ${t} clipHigh`);
      let absMin = Infinity, absMax = 0;
      for (const x of d) {
        const a = Math.abs(x < stats[t].clipLow ? stats[t].clipLow : x > stats[t].clipHigh ? stats[t].clipHigh : x);
        absMin = Math.min(absMin, a);
        absMax = Math.max(absMax, a);
      }
      assert.deepStrictEqual([stats[t].absMin, stats[t].absMax], [absMin, absMax], `${label}: task ${t} |τ| range`);
      const ranked = Float32Array.from(scores[t]).sort();
      const keep = Math.floor(ratio * size);
      assert.strictEqual(stats[t].scoreThreshold, ranked[size - keep], `${label}: task ${t} score threshold`);
      assert.strictEqual(stats[t].scoreMax, ranked[size - 1], `${label}: task ${t} largest score`);
    });
    return { morePasses, visits };
  }

  it('two passes when the sample points to the threshold\'s bins; a third, announced, when it misleads; exact either way', async () => {
    // Large enough for a sample (every 8th element) that narrows the threshold to a few bins.
    const size = (1 << 21) + 3;
    const r = ref.rng(2024);
    const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    const deltas = [0, 1, 2].map(() => Float32Array.from({ length: size }, () => gauss() * 0.01));
    const fair = await check(deltas, 0.1, 'fair sample');
    assert.deepStrictEqual(fair, { morePasses: 0, visits: 2 }, 'two passes, none announced');
    // Every 8th element (the sample's positions) zero: the sample's scores are all 0, the
    // threshold is not.
    const skewed = deltas.map((d) => d.map((x, i) => (i % 8 === 0 ? 0 : x)));
    const misled = await check(skewed, 0.1, 'misleading sample');
    assert.deepStrictEqual(misled, { morePasses: 1, visits: 3 }, 'a third pass, announced first');
  });
});
