// pod-template-hash, as the deployment controller computes it
// (controller.ComputeHash): a 32-bit FNV-1a of the pod template, plus the
// collision count when there is one, printed in decimal and re-encoded with
// rand.SafeEncodeString. Kubernetes hashes the Go struct dump; we hash
// canonical JSON (sorted keys), which is just as stable for our purpose: the
// same template always gives the same name, a changed template a new one.
import { safeEncode } from './meta.ts';
import type { PodTemplate } from './types.ts';

export const POD_TEMPLATE_HASH = 'pod-template-hash';

/** JSON with object keys sorted at every level, so equal values print equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** 32-bit FNV-1a over the UTF-8 bytes. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Drops nulls and empty objects and arrays, recursively. Kubernetes compares
 * templates as Go structs with apimachinery's semantic equality, where a
 * null `creationTimestamp` is the zero time and nil equals empty — and
 * `kubectl rollout undo` sends the old template back with
 * `metadata.creationTimestamp: null`, which must still match its ReplicaSet.
 */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const n = normalize(x);
    if (n === null || n === undefined) continue;
    if (Array.isArray(n) && n.length === 0) continue;
    if (typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 0) continue;
    out[k] = n;
  }
  return out;
}

/** The template without the pod-template-hash label, normalized (what the hash and template equality are over). */
export function withoutHash(t: PodTemplate): unknown {
  const c = structuredClone(t);
  if (c.metadata?.labels) delete c.metadata.labels[POD_TEMPLATE_HASH];
  return normalize(c);
}

export function podTemplateHash(t: PodTemplate, collisionCount = 0): string {
  let s = canonicalJson(withoutHash(t));
  if (collisionCount > 0) s += `#${collisionCount}`;
  return safeEncode(String(fnv1a32(s)));
}

/** deploymentutil.EqualIgnoreHash. */
export function templatesEqual(a: PodTemplate, b: PodTemplate): boolean {
  return canonicalJson(withoutHash(a)) === canonicalJson(withoutHash(b));
}
