// Small pieces every benchmark uses: the median of a sample, the quantile of
// a sorted one, and whether a test-cluster pod is Ready. (Not in run.ts:
// importing that would start the runner.)
import type { KubeObject } from '../cluster/store.ts';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The p-quantile (0..1) of an ascending sample; NaN when it is empty. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

export function isReady(o: KubeObject | undefined): boolean {
  const conds = (o?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
  return conds?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
