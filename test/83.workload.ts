/**
 * A deterministic workload over the addon's main ops (fused merge with DARE and bands,
 * linear combination, statistics, selection, decode/encode), digested to one hex string:
 * the same seed gives the same digest in any thread, worker or process.
 */
import * as crypto from 'crypto';
import type { NativeBinding } from '../lib/binding';

function bf16Tensor(n: number, seed: number, scale: number): Uint8Array {
  const f = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    f[i] = ((s / 2 ** 32) - 0.5) * scale;
  }
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i] >>> 16;
  return new Uint8Array(out.buffer);
}

export async function workload(addon: NativeBinding, seed: number, n = 150_001): Promise<string> {
  const hash = crypto.createHash('sha256');
  const base = { data: bf16Tensor(n, seed, 1), dtype: 'BF16' as const };
  const fts = [1, 2].map((k) => ({ data: bf16Tensor(n, seed * 7 + k, 0.02), dtype: 'BF16' as const }));
  const rules = await addon.selectThresholds({ base, ft: fts[0] }, Float64Array.of(Math.floor(n / 10), Math.floor(n / 5)));
  const stats = await addon.absStats({ base, ft: fts[1] }, Float64Array.of(0.001, 0.005));
  hash.update(JSON.stringify({ rules: Object.entries(rules).map(([k, v]) => [k, ArrayBuffer.isView(v) ? Array.from(v as Float64Array) : v]), sum: stats.sumAbs, counts: Array.from(stats.countsAbove) }));
  const out = new Uint8Array(n * 2);
  await addon.mergeTensor({
    base,
    models: [
      { ...fts[0], weight: 1, sparsify: { kind: 'bands', rules, factor: Float64Array.of(1.8, 1) } },
      { ...fts[1], weight: 0.7, sparsify: { kind: 'random', stream: { seedLo: seed, seedHi: 0, streamLo: 3, streamHi: 4 }, density: 0.4, rescale: 1 / 0.4 } },
    ],
    consensus: 'sum', normalize: true, lambda: 1, out, outDtype: 'BF16',
  });
  hash.update(out);
  const lin = new Uint8Array(n * 4);
  await addon.linearCombine([base, ...fts], Float64Array.of(0.5, 0.3, 0.2), lin, 'F32');
  hash.update(lin);
  const decoded = new Float32Array(n);
  await addon.decode(fts[0], decoded);
  const encoded = new Uint8Array(n * 2);
  await addon.encode(decoded, 'F16', encoded);
  hash.update(encoded);
  return hash.digest('hex');
}
