/**
 * A hand-written SVG line chart: one panel per regime, retained accuracy (mean over tasks)
 * against density, one line per pruning method. No plotting dependency.
 */
export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  series: Series[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceStep(range: number): number {
  const raw = range / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
}

export function lineChart(panels: Panel[], opts: { xLabel: string; yLabel: string; title: string; /** A dashed horizontal line (e.g. the dense model at 100%). */ reference?: number }): string {
  const W = 420, H = 320, M = { l: 58, r: 14, t: 44, b: 48 };
  const legendH = 26;
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const xMin = Math.min(...xs), xMax = Math.max(...xs);
  let yMin = Math.min(...ys), yMax = Math.max(...ys, 100);
  const yStep = niceStep(Math.max(yMax - yMin, 1));
  yMin = Math.floor(yMin / yStep) * yStep;
  yMax = Math.ceil(yMax / yStep) * yStep;
  const pw = W - M.l - M.r, ph = H - M.t - M.b;
  const sx = (x: number) => M.l + ((x - xMin) / (xMax - xMin || 1)) * pw;
  const sy = (y: number) => M.t + (1 - (y - yMin) / (yMax - yMin || 1)) * ph;
  const width = W * panels.length, height = H + legendH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  panels.forEach((panel, pi) => {
    out.push(`<g transform="translate(${pi * W},0)">`);
    out.push(`<text x="${M.l + pw / 2}" y="${M.t - 8}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`);
    for (let y = yMin; y <= yMax + 1e-9; y += yStep) {
      out.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#ddd"/>`);
      out.push(`<text x="${M.l - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${+y.toFixed(2)}</text>`);
    }
    for (const x of xTicks) out.push(`<text x="${sx(x).toFixed(1)}" y="${M.t + ph + 16}" text-anchor="middle">${x}</text>`);
    out.push(`<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
    if (opts.reference !== undefined && opts.reference >= yMin && opts.reference <= yMax) {
      const y = sy(opts.reference).toFixed(1);
      out.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${y}" y2="${y}" stroke="#000" stroke-dasharray="5,4"/>`);
    }
    out.push(`<text x="${M.l + pw / 2}" y="${M.t + ph + 36}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
    out.push(`<text transform="translate(16,${M.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
    panel.series.forEach((s, si) => {
      const color = COLORS[si % COLORS.length];
      const pts = [...s.points].sort((a, b) => a.x - b.x);
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
      for (const p of pts) out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${color}"/>`);
    });
    out.push('</g>');
  });
  const names = panels[0]?.series.map((s) => s.name) ?? [];
  names.forEach((name, i) => {
    const x = 20 + i * 110, y = H + 8;
    out.push(`<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${COLORS[i % COLORS.length]}" stroke-width="3"/>`);
    out.push(`<text x="${x + 28}" y="${y + 4}">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
