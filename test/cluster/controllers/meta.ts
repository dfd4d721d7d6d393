// Small facts about objects that several controllers need: ownership, pod
// readiness and liveness, names, times. Pure.
import type { KubeObject, OwnerReference } from '../store.ts';
import { matchLabels, requirementsOf } from '../apiserver/selectors.ts';
import type { LabelSelectorObject, Pod } from './types.ts';

/** The owner reference with controller: true, if any. */
export function controllerRef(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  return controllerRef(obj)?.uid === owner.metadata.uid;
}

/** An owner reference naming `owner` as the controller (as the real controllers write it). */
export function ownerRefTo(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * metav1.LabelSelectorAsSelector for controllers: a missing selector selects
 * nothing, an empty one everything.
 */
export function selects(sel: LabelSelectorObject | undefined, labels: Record<string, string> | undefined): boolean {
  if (!sel) return false;
  return matchLabels(requirementsOf(sel), labels);
}

/** A Service's selector (a plain map): every pair must match; empty selects nothing here (callers skip it). */
export function selectsMap(sel: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  for (const [k, v] of Object.entries(sel)) if (labels?.[k] !== v) return false;
  return true;
}

export function isTerminating(obj: KubeObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined;
}

/** Succeeded or Failed: the pod will not run again. */
export function isFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** controller.IsPodActive: counted by its ReplicaSet (neither finished nor being deleted). */
export function isActive(pod: Pod): boolean {
  return !isFinished(pod) && !isTerminating(pod);
}

function readyCondition(pod: Pod): { status: string; lastTransitionTime?: string } | undefined {
  return pod.status?.conditions?.find((c) => c.type === 'Ready');
}

/** The node's Ready condition; a pod being deleted is never ready. */
export function isReady(pod: Pod): boolean {
  return !isTerminating(pod) && readyCondition(pod)?.status === 'True';
}

/** When the pod became ready (ms since epoch), or undefined. */
export function readySince(pod: Pod): number | undefined {
  const c = readyCondition(pod);
  if (c?.status !== 'True' || !c.lastTransitionTime) return undefined;
  const t = Date.parse(c.lastTransitionTime);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * podutil.IsPodAvailable: ready for at least minReadySeconds. Returns the
 * ms still to wait when ready but not yet available (0 when available).
 */
export function availableIn(pod: Pod, minReadySeconds: number, nowMs: number): number | undefined {
  if (!isReady(pod)) return undefined;
  if (minReadySeconds <= 0) return 0;
  const since = readySince(pod) ?? nowMs;
  return Math.max(0, since + minReadySeconds * 1000 - nowMs);
}

/** RFC 3339 with seconds, as the API server writes metav1.Time. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The alphabet of utilrand.String: no vowels, no look-alikes, so names spell no words. */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** A random suffix as the API server's generateName makes it (5 characters). */
export function randomSuffix(n = 5): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let s = '';
  for (const b of bytes) s += ALPHANUMS[b % ALPHANUMS.length];
  return s;
}

/** rand.SafeEncodeString: maps each byte onto the same alphabet (used for pod-template-hash). */
export function safeEncode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += ALPHANUMS[s.charCodeAt(i) % ALPHANUMS.length];
  return out;
}

export function labelsEqual(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ea = Object.entries(a ?? {});
  if (ea.length !== Object.keys(b ?? {}).length) return false;
  return ea.every(([k, v]) => b?.[k] === v);
}
