// Writing objects as the API server would on the controllers' behalf:
// naming with generateName, pod defaults, and deletion.
import { Store, StoreError, type KubeObject } from '../store.ts';
import { RESOURCES, resourceByKey } from '../apiserver/resources.ts';
import { defaultPodSpec } from '../apiserver/admission.ts';
import { deleteObject } from '../apiserver/deletion.ts';
import { ApiError } from '../apiserver/status.ts';
import { randomSuffix } from './meta.ts';
import type { Pod } from './types.ts';

/** Create `pod` under `generateName` + a random suffix, retrying the rare name clash. */
export function createNamed(store: Store, resource: string, obj: KubeObject): KubeObject {
  const prefix = obj.metadata.generateName ?? `${obj.metadata.name}-`;
  for (let attempt = 0; ; attempt++) {
    const o = structuredClone(obj);
    o.metadata.name = prefix + randomSuffix();
    try {
      return store.create(resource, o);
    } catch (err) {
      if (!(err instanceof StoreError && err.reason === 'AlreadyExists') || attempt >= 8) throw err;
    }
  }
}

export function createPod(store: Store, pod: Pod): Pod {
  defaultPodSpec(pod.spec as unknown as Record<string, unknown>);
  return createNamed(store, RESOURCES.pods, pod) as Pod;
}

/**
 * Delete an object as a DELETE request with default options does (the API
 * server's own code: pods bound to a node get deletionTimestamp and the node
 * removes them once stopped; objects with finalizers wait for them; others
 * go at once). Already gone is what we wanted, so NotFound is no error.
 */
export function deleteGracefully(store: Store, resource: string, namespace: string | undefined, name: string): void {
  const def = resourceByKey(resource);
  if (!def) throw new Error(`unknown resource ${resource}`);
  const cur = store.get(resource, namespace, name);
  if (!cur || cur.metadata.deletionTimestamp) return;
  try {
    deleteObject(store, def, namespace, name, { propagationPolicy: 'Background' });
  } catch (err) {
    if ((err instanceof ApiError && err.reason === 'NotFound') || (err instanceof StoreError && err.reason === 'NotFound')) return;
    throw err;
  }
}
