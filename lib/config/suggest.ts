/**
 * "Did you mean …?" for misspelt names: optimal-string-alignment (Damerau) distance over the
 * valid names, after normalising case and separators so `Dare-Ties` finds `dare_ties`.
 */

export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/[-\s.]+/g, '_');
}

/** Edit distance counting insertions, deletions, substitutions and adjacent transpositions. */
export function damerauDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
  for (let i = 0; i < rows; i++) d[i][0] = i;
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[rows - 1][cols - 1];
}

/** The nearest valid name, or undefined when nothing is close enough to be a plausible typo. */
export function nearestName(input: string, candidates: readonly string[]): string | undefined {
  const wanted = normalizeName(input);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = damerauDistance(wanted, normalizeName(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Allow roughly one edit per three characters (at least 2), so short names don't match noise.
  const allowed = Math.max(2, Math.ceil(wanted.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** `; did you mean "x"?` or '' — appended to messages about unknown names. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const nearest = nearestName(input, candidates);
  return nearest !== undefined && nearest !== input ? `; did you mean ${nearest}?` : '';
}
