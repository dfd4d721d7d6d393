// Deletion as the real API server does it: graceful for pods (deletionTimestamp
// + deletionGracePeriodSeconds; the node removes the pod once its container
// stopped, with gracePeriodSeconds=0), held by finalizers, at once otherwise.
// Used by DELETE requests, the owner-reference GC and namespace cleanup.
import type { KubeObject, Store } from '../store.ts';
import { RESOURCES, type ResourceDef } from './resources.ts';
import { ApiError, conflict, notFound } from './status.ts';

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

function nowIso(offsetSeconds = 0): string {
  return new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

type Obj = Record<string, unknown>;
const spec = (o: KubeObject): Obj => (o.spec && typeof o.spec === 'object' ? (o.spec as Obj) : {});
const status = (o: KubeObject): Obj => (o.status && typeof o.status === 'object' ? (o.status as Obj) : {});

/** The grace period a pod deletion gets (registry/core/pod strategy CheckGracefulDelete). */
function podGrace(pod: KubeObject, requested: number | undefined): number {
  // A pod that never reached a node, or already finished, has nothing to stop.
  if (!spec(pod).nodeName) return 0;
  const phase = status(pod).phase;
  if (phase === 'Succeeded' || phase === 'Failed') return 0;
  if (requested !== undefined) return Math.max(0, requested);
  const t = spec(pod).terminationGracePeriodSeconds;
  return typeof t === 'number' ? t : 30;
}

/** Removes the ownerReferences naming `uid` from the owner's dependents (propagationPolicy Orphan). */
export function orphanDependents(store: Store, owner: KubeObject, defs: ResourceDef[]): void {
  const uid = owner.metadata.uid;
  for (const def of defs) {
    for (const dep of store.list(def.key, owner.metadata.namespace)) {
      if (!dep.metadata.ownerReferences?.some((r) => r.uid === uid)) continue;
      store.mutate(def.key, dep.metadata.namespace, dep.metadata.name, (o) => {
        o.metadata.ownerReferences = o.metadata.ownerReferences?.filter((r) => r.uid !== uid);
        if (o.metadata.ownerReferences?.length === 0) delete o.metadata.ownerReferences;
        return o;
      });
    }
  }
}

/**
 * Deletes one object. Returns the object as the API answers a DELETE: with
 * deletionTimestamp set when the deletion is pending (graceful or finalizers),
 * or the last state when it is gone.
 */
export function deleteObject(store: Store, def: ResourceDef, namespace: string | undefined, name: string, opts: DeleteOptions): KubeObject {
  const cur = store.get(def.key, namespace, name);
  if (!cur) throw notFound(def.plural, def.group, name);
  const pre = opts.preconditions;
  if (pre?.uid && pre.uid !== cur.metadata.uid) {
    throw new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${def.group ? `${def.plural}.${def.group}` : def.plural} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`,
      { name, group: def.group || undefined, kind: def.plural },
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) throw conflict(def.plural, def.group, name);

  if (def.key === RESOURCES.namespaces) {
    if (['default', 'kube-system', 'kube-public'].includes(name)) {
      throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, { name, kind: 'namespaces' });
    }
    if (opts.dryRun) return cur;
    if (cur.metadata.deletionTimestamp) return cur;
    // The namespace stays Terminating until lifecycle.ts has emptied it.
    return store.update(def.key, {
      ...cur,
      metadata: { ...cur.metadata, deletionTimestamp: nowIso(), deletionGracePeriodSeconds: 0, resourceVersion: undefined },
      status: { ...status(cur), phase: 'Terminating' },
    });
  }

  let grace = 0;
  if (def.key === RESOURCES.pods) grace = podGrace(cur, opts.gracePeriodSeconds);
  const held = (cur.metadata.finalizers?.length ?? 0) > 0;
  if (opts.dryRun) return cur;

  if (grace > 0 || held) {
    const existing = cur.metadata.deletionGracePeriodSeconds;
    // A second delete may only shorten a pending grace period, never extend it.
    if (cur.metadata.deletionTimestamp && existing !== undefined && existing <= grace) return cur;
    return store.update(def.key, {
      ...cur,
      metadata: { ...cur.metadata, deletionTimestamp: nowIso(grace), deletionGracePeriodSeconds: grace, resourceVersion: undefined },
    });
  }
  return store.delete(def.key, namespace, name);
}
