// Garbage collection by ownerReferences (background propagation), and
// emptying deleted namespaces. Kubernetes' garbage collector keeps a graph of
// owners and dependents; ours indexes dependents by owner uid from the watch
// and asks the store whether each owner still exists (same name, same uid)
// before deleting anything.
import { StoreError, type KubeObject, type Store, type WatchEvent } from '../store.ts';
import { RESOURCE_DEFS, RESOURCES, resourceByKind } from '../apiserver/resources.ts';
import { deleteGracefully } from './pods.ts';

export interface ObjectKey {
  resource: string;
  namespace?: string;
  name: string;
}

function keyOf(k: ObjectKey): string {
  return JSON.stringify([k.resource, k.namespace ?? '', k.name]);
}

/** The dependents index: which objects name which owner uid. */
export class DependentsIndex {
  private readonly byOwner = new Map<string, Map<string, ObjectKey>>();
  private readonly ownersOf = new Map<string, string[]>();

  /** Record an event; returns the objects whose owners should be checked now. */
  observe(ev: WatchEvent): ObjectKey[] {
    const o = ev.object;
    const self: ObjectKey = { resource: ev.resource, namespace: o.metadata.namespace, name: o.metadata.name };
    const k = keyOf(self);
    for (const uid of this.ownersOf.get(k) ?? []) this.byOwner.get(uid)?.delete(k);
    this.ownersOf.delete(k);
    if (ev.type === 'DELETED') {
      return [...(this.byOwner.get(o.metadata.uid ?? '')?.values() ?? [])];
    }
    const uids = (o.metadata.ownerReferences ?? []).map((r) => r.uid);
    if (uids.length === 0) return [];
    this.ownersOf.set(k, uids);
    for (const uid of uids) {
      let m = this.byOwner.get(uid);
      if (!m) this.byOwner.set(uid, (m = new Map()));
      m.set(k, self);
    }
    return [self];
  }
}

export function gcKey(k: ObjectKey): string {
  return keyOf(k);
}

export function parseGcKey(s: string): ObjectKey {
  const [resource, namespace, name] = JSON.parse(s) as [string, string, string];
  return { resource, namespace: namespace || undefined, name };
}

/** Which owner references still point at a live object; unknown kinds count as alive (never collect on a guess). */
export function liveOwners(store: Store, obj: KubeObject): { alive: number; dangling: string[] } {
  let alive = 0;
  const dangling: string[] = [];
  for (const ref of obj.metadata.ownerReferences ?? []) {
    const def = resourceByKind(ref.apiVersion, ref.kind);
    if (!def) {
      alive++;
      continue;
    }
    const owner = store.get(def.key, def.namespaced ? obj.metadata.namespace : undefined, ref.name);
    if (owner && owner.metadata.uid === ref.uid) alive++;
    else dangling.push(ref.uid);
  }
  return { alive, dangling };
}

/**
 * One dependent: deleted when every owner is gone; when only some are, the
 * dangling references are removed and the object stays (as Kubernetes does).
 */
export function collect(store: Store, k: ObjectKey, debug: (m: string) => void): void {
  const obj = store.get(k.resource, k.namespace, k.name);
  if (!obj || obj.metadata.deletionTimestamp || !obj.metadata.ownerReferences?.length) return;
  const { alive, dangling } = liveOwners(store, obj);
  if (dangling.length === 0) return;
  if (alive === 0) {
    debug(`gc: deleting ${k.resource} ${k.namespace ?? ''}/${k.name}: its owners are gone`);
    deleteGracefully(store, k.resource, k.namespace, k.name);
    return;
  }
  store.mutate(k.resource, k.namespace, k.name, (cur) => {
    cur.metadata.ownerReferences = cur.metadata.ownerReferences?.filter((r) => !dangling.includes(r.uid));
    return cur;
  });
}

const NAMESPACED = RESOURCE_DEFS.filter((d) => d.namespaced).map((d) => d.key);

/**
 * The namespace controller's job: a deleted (or terminating) namespace is
 * emptied; a terminating one is removed once nothing is left in it (pods
 * go when the node has stopped them).
 */
export function emptyNamespace(store: Store, name: string, debug: (m: string) => void): void {
  const ns = store.get(RESOURCES.namespaces, undefined, name);
  if (ns && !ns.metadata.deletionTimestamp) return;
  let left = 0;
  for (const resource of NAMESPACED) {
    for (const o of store.list(resource, name)) {
      left++;
      deleteGracefully(store, resource, name, o.metadata.name);
    }
  }
  if (left > 0) debug(`namespace ${name}: deleting ${left} objects`);
  if (ns && left === 0) {
    try {
      store.delete(RESOURCES.namespaces, undefined, name);
    } catch (err) {
      if (!(err instanceof StoreError && err.reason === 'NotFound')) throw err;
    }
  }
}
