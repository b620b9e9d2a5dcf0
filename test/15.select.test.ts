// 15: whole-tensor selection on tensors large enough for the one-pass bracket path (a sample
// brackets the k-th value; the radix path is the fallback): exact, the same as the sort-based
// reference, on every SIMD path and thread count; heavy ties and many ks take the fallback.
import * as assert from 'assert';
import { native } from '../lib/native';
import type { BandRules, DeltaInput } from '../lib/binding';
import * as ref from './ref/kernels-ref';
import { everyPathAndThreads } from './10.convert.test';

/** Keep-rules of every k from one sort (abs bits descending, then index ascending). */
function selectAllRef(d: Float32Array, ks: number[], rule: 'index' | 'drop') {
  const n = d.length;
  const abs = new Uint32Array(n);
  for (let i = 0; i < n; ++i) abs[i] = ref.absBits(d[i]);
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((i, j) => abs[j] - abs[i] || i - j);
  return ks.map((k) => {
    if (k === 0) return { bits: 0xffffffff, cutoff: -1 };
    const bits = abs[order[k - 1]];
    if (rule === 'drop') return { bits, cutoff: -1 };
    let cutoff = -1;
    for (let r = k - 1; r >= 0 && abs[order[r]] === bits; --r) cutoff = Math.max(cutoff, order[r]);
    return { bits, cutoff };
  });
}

/** The keep-rules returned equal the reference's, bits and cutoffs. */
function assertSameRules(got: BandRules, expected: { bits: number; cutoff: number }[], what: string) {
  assert.deepStrictEqual(Array.from(got.bits), expected.map((e) => e.bits), `${what} bits`);
  assert.deepStrictEqual(Array.from(got.cutoff), expected.map((e) => e.cutoff), `${what} cutoff`);
}

async function check(input: DeltaInput, d: Float32Array, ks: number[], what: string) {
  for (const rule of ['index', 'drop'] as const) {
    const expected = selectAllRef(d, ks, rule);
    await everyPathAndThreads(async (label) => {
      const r = await native().selectThresholds(input, Float64Array.from(ks), { rule });
      assertSameRules(r, expected, `${what} ${rule} ${label}`);
    });
  }
}

describe('15 select: large whole tensors (bracket path and fallback)', () => {
  it('F32 δ without base, with NaN/Inf/±0, ks from 1 to n', async () => {
    const n = 300007;
    const r = ref.rng(1);
    const values = Float32Array.from({ length: n }, () => (r() - 0.5) * (r() < 0.01 ? 100 : 1));
    values.set([NaN, Infinity, -Infinity, 0, -0], 1000);
    const input = { ft: ref.tensorOf(values, 'F32') } as unknown as DeltaInput;
    await check(input, values, [0, 1, 10, Math.floor(n * 0.1), Math.floor(n / 2), n - 1, n], 'F32');
  });

  it('BF16 base + ft (many natural ties), non-stationary magnitudes', async () => {
    const n = (1 << 20) + 3;
    const base = ref.randomTensor(n, 'BF16', 5);
    const b = ref.decodeRef(base.data, 'BF16');
    const r = ref.rng(6);
    // The first quarter has 10× larger deltas: chunks differ a lot from the sample's average.
    const ftValues = Float32Array.from({ length: n }, (_, i) => b[i] + (r() - 0.5) * (i < n / 4 ? 0.1 : 0.01));
    const ft = ref.tensorOf(ftValues, 'BF16');
    const d = ref.deltaRef(ft, base);
    const input = { base, ft } as unknown as DeltaInput;
    await check(input, d, [Math.floor(n * 0.01), Math.floor(n * 0.3), Math.floor(n * 0.9)], 'BF16');
  });

  it('F16 and F32 base + ft, and mixed dtypes (δ computed in registers or decoded first)', async function () {
    this.timeout(30000);
    const n = 300007;
    const pairs: [string, string][] = [['F16', 'F16'], ['F32', 'F32'], ['BF16', 'F32'], ['F32', 'F16']];
    for (const [bt, ftt] of pairs) {
      const base = ref.randomTensor(n, bt as 'F32', 11);
      const b = ref.decodeRef(base.data, bt as 'F32');
      const r = ref.rng(12);
      const ft = ref.tensorOf(Float32Array.from({ length: n }, (_, i) => b[i] + (r() - 0.5) * 0.01), ftt as 'F32');
      const d = ref.deltaRef(ft, base);
      await check({ base, ft } as unknown as DeltaInput, d, [1, Math.floor(n * 0.2), Math.floor(n * 0.6)], `${bt}/${ftt}`);
    }
  });

  it('heavy ties (5 levels) and more than 8 ks: the radix fallback, still exact', async () => {
    const n = 400003;
    const r = ref.rng(7);
    const levels = [0, 0.25, -0.25, 0.5, -1];
    const values = Float32Array.from({ length: n }, () => levels[Math.floor(r() * 5)]);
    const input = { ft: ref.tensorOf(values, 'F32') } as unknown as DeltaInput;
    await check(input, values, [1, Math.floor(n / 5), Math.floor(n / 3), n - 1], 'ties');
    const smooth = Float32Array.from({ length: n }, () => r() - 0.5);
    const ks = Array.from({ length: 10 }, (_, i) => Math.floor((n * (i + 1)) / 11));
    await check({ ft: ref.tensorOf(smooth, 'F32') } as unknown as DeltaInput, smooth, ks, '10 ks');
  });

  it('several fine-tunes over one base in one pass: each as its own selection, any mix of paths', async function () {
    this.timeout(60000);
    const n = 1 << 19;
    const base = ref.randomTensor(n, 'BF16', 21);
    const b = ref.decodeRef(base.data, 'BF16');
    const r = ref.rng(22);
    const scales = [0.01, 0.1, 0.002, 0.03];
    const fts = scales.map((scale) => ref.tensorOf(Float32Array.from({ length: n }, (_, i) => b[i] + (r() - 0.5) * scale), 'BF16'));
    // Fine-tune 2 hides its large δ between the sample's runs (n = 4096 runs × 128: the sample
    // reads elements i % 128 < 16 only), so its bracket misses and it alone falls back to the
    // radix selection.
    fts[2] = ref.tensorOf(Float32Array.from({ length: n }, (_, i) => b[i] + (i % 128 >= 16 && r() < 0.1 ? 0.5 : (r() - 0.5) * 0.001)), 'BF16');
    // Fine-tune 4 leaves about 2/3 of the weights as they were (δ = 0, as untouched embedding
    // rows do): its k-th value is 0 and the bracket degenerates to counting.
    fts.push(ref.tensorOf(Float32Array.from({ length: n }, (_, i) => (r() < 2 / 3 ? b[i] : b[i] + (r() - 0.5) * 0.05)), 'BF16'));
    const deltas = fts.map((ft) => ref.deltaRef(ft, base));
    // 2 + 7 + 1 + 9 + 1 positive ks: more than one pass's 16 brackets, so the models go in groups.
    const ksOf = [
      [Math.floor(n * 0.1), Math.floor(n * 0.2)],
      [0, 1, 17, Math.floor(n * 0.05), Math.floor(n * 0.3), Math.floor(n * 0.5), n - 1, n],
      [Math.floor(n / 100)],
      Array.from({ length: 9 }, (_, i) => Math.floor((n * (i + 1)) / 10)),
      [Math.floor(n / 2)],
    ];
    const rules = ['index', 'drop', 'index', 'index', 'index'] as const;
    const expected = deltas.map((d, t) => selectAllRef(d, ksOf[t], rules[t]));
    await everyPathAndThreads(async (label) => {
      const results = await native().selectThresholdsShared(
        { base, fts } as never,
        ksOf.map((ks, t) => ({ ks: Float64Array.from(ks), rule: rules[t] })),
      );
      results.forEach((got, t) => {
        assertSameRules(got, expected[t], `model ${t} ${label}`);
      });
    });
    // Without a base, and with dtypes that differ (δ decoded before bracketing).
    const mixed = [ref.tensorOf(deltas[0], 'F32'), ref.tensorOf(deltas[1], 'F16')];
    const mixedD = mixed.map((t) => ref.decodeRef(t.data, t.dtype as 'F32'));
    const ks = [Math.floor(n * 0.2), Math.floor(n * 0.7)];
    const got = await native().selectThresholdsShared({ fts: mixed } as never, [{ ks: Float64Array.from(ks) }, { ks: Float64Array.from(ks) }]);
    got.forEach((g, t) => {
      const e = selectAllRef(mixedD[t], ks, 'index');
      assertSameRules(g, e, `no base ${t}`);
    });
  });

  it('the register-resident shapes (1–4 fine-tunes × 1 or 2 ks) on every dtype and path', async function () {
    this.timeout(120000);
    const n = 262144 + 4099;
    for (const dtype of ['BF16', 'F16', 'F32'] as const) {
      const base = ref.randomTensor(n, dtype, 31);
      const b = ref.decodeRef(base.data, dtype);
      const r = ref.rng(32);
      const fts = [0.01, 0.03, 0.002, 0.02].map((scale) => ref.tensorOf(Float32Array.from({ length: n }, (_, i) => b[i] + (r() - 0.5) * scale), dtype));
      const deltas = fts.map((ft) => ref.deltaRef(ft, base));
      for (const models of [1, 3, 4]) {
        for (const ks of [[Math.floor(n * 0.2)], [Math.floor(n * 0.1), Math.floor(n * 0.3)]]) {
          const expected = deltas.slice(0, models).map((d) => selectAllRef(d, ks, 'index'));
          await everyPathAndThreads(async (label) => {
            const got = await native().selectThresholdsShared(
              { base, fts: fts.slice(0, models) } as never,
              fts.slice(0, models).map(() => ({ ks: Float64Array.from(ks) })),
            );
            got.forEach((g, t) => {
              const what = `${dtype} ${models} models × ${ks.length} ks, model ${t} ${label}`;
              assertSameRules(g, expected[t], what);
            });
          });
        }
      }
    }
  });

  it('a heavily repeated lower bound (δ = 0 on 60%) is counted, not collected: k inside and below it', async function () {
    this.timeout(60000);
    const n = 1 << 20;
    const base = ref.randomTensor(n, 'BF16', 51);
    const b = ref.decodeRef(base.data, 'BF16');
    const r = ref.rng(52);
    // Exactly 2 of every 5 weights move, by at least 0.05 (never rounding back to δ = 0).
    const ft = ref.tensorOf(Float32Array.from({ length: n }, (_, i) => (i % 5 < 2 ? b[i] + (r() < 0.5 ? -1 : 1) * (0.05 + 0.05 * r()) : b[i])), 'BF16');
    const d = ref.deltaRef(ft, base);
    const moved = d.reduce((c, x) => c + (x !== 0 ? 1 : 0), 0);
    const ks = [moved - 1000, moved + 1000, moved + 5];
    const expected = selectAllRef(d, ks, 'index');
    assert.strictEqual(expected[1].bits, 0, 'the k-th of moved + 1000 is a zero');
    await everyPathAndThreads(async (label) => {
      const [got] = await native().selectThresholdsShared({ base, fts: [ft] } as never, [{ ks: Float64Array.from(ks) }]);
      assertSameRules(got, expected, label);
    });
  });

  it('many fine-tunes in one pass, one of them with four entries (no register shape): exact', async function () {
    this.timeout(120000);
    const n = 1 << 18;
    const r = ref.rng(62);
    // δ without a base. Fine-tune 0: 0.25 exactly on 3 of every 5 elements, so one k has that
    // value as its counted lower bound and the other has it as its k-th value, each bracket
    // taking two entries; the other nine select once.
    const values = [Float32Array.from({ length: n }, (_, i) => (i % 5 < 2 ? 0.5 + 0.5 * r() : 0.25))];
    for (let t = 1; t < 10; t++) values.push(Float32Array.from({ length: n }, () => (r() - 0.5) * t));
    const fts = values.map((v) => ref.tensorOf(v, 'F32'));
    const moved = values[0].reduce((c, x) => c + (x !== 0.25 ? 1 : 0), 0);
    const ksOf = fts.map((_, t) => (t === 0 ? [moved - 500, moved + 500] : [Math.floor(n * 0.1 * (t % 5 + 1))]));
    const expected = values.map((d, t) => selectAllRef(d, ksOf[t], 'index'));
    await everyPathAndThreads(async (label) => {
      const got = await native().selectThresholdsShared({ fts } as never, ksOf.map((ks) => ({ ks: Float64Array.from(ks) })));
      got.forEach((g, t) => assertSameRules(g, expected[t], `model ${t} ${label}`));
    });
  });
});
