// Small pieces every benchmark uses: the median of a sample and the quantile
// of a sorted one. (Not in run.ts: importing that would start the runner.)

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The p-quantile (0..1) of an ascending sample; NaN when it is empty. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

