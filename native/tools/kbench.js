// kbench.js: quick kernel throughput vs the copy yardstick, in one process (native/ owner's tool;
// the project's benchmark is bench/). Usage: node native/tools/kbench.js [threads] [million elements] [reps]
// [cases,comma,separated]. GB/s counts the minimal bytes: copy = read + write; dare/della merge
// (F32 base + F32 ft -> F32) = 3 × 4n; randomUniform = 4n written; select (F32, no base) = one
// read of 4n; ta_k3_bf16 = 4 × 2n read + 2n written; ties_* and dppa_merge_only_k3_bf16
// likewise; select_delta_bf16 = 4n (as bench/). Each figure is the best of `reps` runs.
const path = require('path');
const addon = require(process.env.DPPA_ADDON || path.join(__dirname, '../../build/Release/dppa.node'));
const threads = Number(process.argv[2] || 2);
const n = Math.round(Number(process.argv[3] || 45) * 1e6);
const reps = Number(process.argv[4] || 5);
const only = process.argv[5] ? process.argv[5].split(',') : null;
addon.setThreads(threads);

function f32(n, seed, scale) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) / 16777216 - 0.5) * scale;
  }
  return a;
}
function bf16Of(a) {
  const u = new Uint32Array(a.buffer), out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; ++i) out[i] = u[i] >>> 16;
  return new Uint8Array(out.buffer);
}
async function best(fn) {
  let t = Infinity;
  for (let r = 0; r < reps; ++r) {
    const t0 = process.hrtime.bigint();
    await fn();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}
(async () => {
  const base = f32(n, 1, 2), ft = f32(n, 2, 2);
  for (let i = 0; i < n; ++i) ft[i] = base[i] + ft[i] * 0.01;
  const B = { data: new Uint8Array(base.buffer), dtype: 'F32' };
  const T = { data: new Uint8Array(ft.buffer), dtype: 'F32' };
  const out = new Uint8Array(4 * n);
  const stream = { seedLo: 1, seedHi: 2, streamLo: 3, streamHi: 4 };
  const results = {};
  const cases = {
    copy: [8 * n, () => addon.copy(B.data, out)],
    random_uniform: [4 * n, () => addon.randomUniform(stream, 0, new Float32Array(out.buffer))],
    dare_merge: [12 * n, () => addon.mergeTensor({ base: B, models: [{ ...T, weight: 1, sparsify: { kind: 'random', stream, density: 0.3, rescale: 1 / 0.3 } }], consensus: 'none', normalize: false, lambda: 1, out, outDtype: 'F32' })],
    dense_merge: [12 * n, () => addon.mergeTensor({ base: B, models: [{ ...T, weight: 1, sparsify: { kind: 'dense', factor: 1 } }], consensus: 'none', normalize: false, lambda: 1, out, outDtype: 'F32' })],
    della_merge: [12 * n, () => addon.mergeTensor({ base: B, models: [{ ...T, weight: 1, sparsify: { kind: 'della', stream, density: 0.3, epsilon: 0.1, rows: n / 5000 >= 1 && n % 5000 === 0 ? n / 5000 : 0, rescale: 1 } }], consensus: 'none', normalize: false, lambda: 1, out, outDtype: 'F32' })],
    select: [4 * n, () => addon.selectThresholds({ ft: T }, new Float64Array([Math.floor(n * 0.1)]))],
    select3: [4 * n, () => addon.selectThresholds({ ft: T }, new Float64Array([Math.floor(n * 0.1), Math.floor(n * 0.3), Math.floor(n * 0.5)]))],
  };
  if (!only || only.includes('ta_k3_bf16')) {
    const b16 = bf16Of(base), fts = [2, 3, 4].map((s) => { const x = f32(n, s, 0.02); for (let i = 0; i < n; ++i) x[i] += base[i]; return bf16Of(x); });
    const o16 = new Uint8Array(2 * n);
    cases.ta_k3_bf16 = [10 * n, () => addon.mergeTensor({ base: { data: b16, dtype: 'BF16' }, models: fts.map((d) => ({ data: d, dtype: 'BF16', weight: 1 / 3, sparsify: { kind: 'dense', factor: 1 } })), consensus: 'none', normalize: false, lambda: 1, out: o16, outDtype: 'BF16' })];
  }
  // TIES on bf16 (as bench/kernels.ts): one selection of δ per model at k = 20%, then the merge.
  const tiesWanted = !only || ['ties_merge_only_k3_bf16', 'select_delta_bf16', 'select_shared_k3_bf16', 'ties_k3_bf16', 'dppa_merge_only_k3_bf16', 'dppa_k3_bf16'].some((c) => only.includes(c));
  if (tiesWanted) {
    // Base magnitudes ~0.02, δ ~0.002 (the shape of bench/synthdata's family).
    const bt = Float32Array.from(base, (v) => v * 0.02);
    const b16 = bf16Of(bt), fts = [5, 6, 7].map((s) => { const x = f32(n, s, 0.004); for (let i = 0; i < n; ++i) x[i] += bt[i]; return bf16Of(x); });
    const o16 = new Uint8Array(2 * n);
    const ks = new Float64Array([Math.floor(n * 0.2)]);
    const B16 = { data: b16, dtype: 'BF16' };
    const select = (d) => addon.selectThresholds({ base: B16, ft: { data: d, dtype: 'BF16' } }, ks);
    const merge = (rules) => addon.mergeTensor({ base: B16, models: fts.map((d, i) => ({ data: d, dtype: 'BF16', weight: 1, sparsify: { kind: 'bands', rules: rules[i], factor: new Float64Array([1]) } })), consensus: 'sum', normalize: true, lambda: 1, out: o16, outDtype: 'BF16' });
    const rules = [];
    for (const d of fts) rules.push(await select(d));
    cases.select_delta_bf16 = [4 * n, () => select(fts[0])];
    cases.ties_merge_only_k3_bf16 = [10 * n, () => merge(rules)];
    // As the library does it: the three selections in one shared pass, then the merge.
    const selectShared = (requests) => addon.selectThresholdsShared({ base: B16, fts: fts.map((d) => ({ data: d, dtype: 'BF16' })) }, requests);
    const tiesRequests = fts.map(() => ({ ks }));
    cases.select_shared_k3_bf16 = [8 * n, () => selectShared(tiesRequests)];
    cases.ties_k3_bf16 = [10 * n, async () => merge(await selectShared(tiesRequests))];
    // DPPA (as bench/kernels.ts dppaMerge): two bands per model at k = 10% and 20% plus each
    // model's offset, factors bandFactors([1.8, 1.0]), no consensus.
    const offsets = [0.012, -0.006, 0.021];
    const dppaRequests = fts.map((_, i) => ({ ks: Float64Array.from([0.1, 0.2], (p) => Math.floor(Math.min(1, Math.max(0, p + offsets[i])) * n)) }));
    const dppaFactor = new Float64Array([1.8, 1.0]);
    const dppaMerge = (dppaRules) => addon.mergeTensor({ base: B16, models: fts.map((d, i) => ({ data: d, dtype: 'BF16', weight: 1, sparsify: { kind: 'bands', rules: dppaRules[i], factor: dppaFactor } })), consensus: 'none', normalize: false, lambda: 1, out: o16, outDtype: 'BF16' });
    const dppaRules = await selectShared(dppaRequests);
    cases.dppa_merge_only_k3_bf16 = [10 * n, () => dppaMerge(dppaRules)];
    cases.dppa_k3_bf16 = [10 * n, async () => dppaMerge(await selectShared(dppaRequests))];
  }
  let copyGBs = 0;
  for (const [name, [bytes, fn]] of Object.entries(cases)) {
    if (only && name !== 'copy' && !only.includes(name)) continue;
    await fn();
    const t = await best(fn);
    const gbs = bytes / t / 1e9;
    if (name === 'copy') copyGBs = gbs;
    results[name] = { s: +t.toFixed(4), GBs: +gbs.toFixed(2), ratio_to_copy: +(gbs / copyGBs).toFixed(3) };
  }
  console.log(JSON.stringify({ simd: addon.simd.active, threads, n, results }, null, 1));
})();
