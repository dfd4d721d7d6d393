// Endpoints and EndpointSlices for Services with a selector, against the
// store. Services without a selector are left alone: their Endpoints are
// whatever the user wrote.
import { StoreError, type KubeObject } from '../store.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { canonicalJson } from './hash.ts';
import { controllerRef, labelsEqual, ownerRefTo } from './meta.ts';
import { createNamed } from './pods.ts';
import { hasSelector, planEndpoints, planSlices, type SliceContent } from './endpoints-plan.ts';
import type { SyncContext } from './replicaset.ts';
import type { Pod, Service } from './types.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const SLICE_CONTROLLER = 'endpointslice-controller.k8s.io';
const HEADLESS_LABEL = 'service.kubernetes.io/headless';

function ignoreNotFound(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof StoreError && err.reason === 'NotFound')) throw err;
  }
}

/** Labels the controllers give Endpoints: the Service's, plus the headless marker. */
function endpointsLabels(svc: Service): Record<string, string> {
  const labels = { ...svc.metadata.labels };
  if (svc.spec.clusterIP === 'None') labels[HEADLESS_LABEL] = '';
  return labels;
}

export function syncEndpoints(ctx: SyncContext, namespace: string, name: string): void {
  const { store } = ctx;
  const svc = store.get(RESOURCES.services, namespace, name) as Service | undefined;
  const current = store.get(RESOURCES.endpoints, namespace, name);
  if (!svc) {
    // The Service is gone: so are its Endpoints (slices go with their owner, by garbage collection).
    if (current) ignoreNotFound(() => store.delete(RESOURCES.endpoints, namespace, name));
    return;
  }
  if (!hasSelector(svc)) return;
  const pods = store.list(RESOURCES.pods, namespace) as Pod[];
  const subsets = planEndpoints(svc, pods);
  const labels = endpointsLabels(svc);
  if (!current) {
    store.create(RESOURCES.endpoints, {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name, namespace, labels },
      ...(subsets.length > 0 ? { subsets } : {}),
    });
  } else if (canonicalJson(current.subsets ?? []) !== canonicalJson(subsets) || !labelsEqual(current.metadata.labels, labels)) {
    store.mutate(RESOURCES.endpoints, namespace, name, (cur) => {
      cur.metadata.labels = labels;
      if (subsets.length > 0) cur.subsets = subsets;
      else delete cur.subsets;
      return cur;
    });
  }
  syncSlices(ctx, svc, planSlices(svc, pods));
}

function sliceLabels(svc: Service): Record<string, string> {
  return { ...endpointsLabels(svc), [SERVICE_NAME_LABEL]: svc.metadata.name, [MANAGED_BY_LABEL]: SLICE_CONTROLLER };
}

function contentKey(c: KubeObject | SliceContent): string {
  return canonicalJson([c.addressType, c.ports ?? []]);
}

function syncSlices(ctx: SyncContext, svc: Service, wanted: SliceContent[]): void {
  const { store } = ctx;
  const ns = svc.metadata.namespace;
  const existing = store
    .list(RESOURCES.endpointslices, ns)
    .filter((s) => s.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name && s.metadata.labels?.[MANAGED_BY_LABEL] === SLICE_CONTROLLER)
    // Slices of an earlier Service of the same name wait for the garbage collector.
    .filter((s) => controllerRef(s)?.uid === svc.metadata.uid);
  const labels = sliceLabels(svc);
  // Reuse a slice with the same address type and ports first, then any.
  const free = [...existing];
  const pairs: [SliceContent, KubeObject | undefined][] = wanted.map((w) => {
    const i = free.findIndex((s) => contentKey(s) === contentKey(w));
    return [w, i >= 0 ? free.splice(i, 1)[0] : undefined];
  });
  for (const pair of pairs) if (!pair[1] && free.length > 0) pair[1] = free.shift();
  for (const s of free) ignoreNotFound(() => store.delete(RESOURCES.endpointslices, ns, s.metadata.name));
  for (const [w, s] of pairs) {
    if (!s) {
      createNamed(store, RESOURCES.endpointslices, {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: '', generateName: `${svc.metadata.name}-`, namespace: ns, labels, ownerReferences: [ownerRefTo(svc)] },
        ...w,
      });
      continue;
    }
    const same =
      canonicalJson([s.addressType, s.endpoints ?? [], s.ports ?? []]) === canonicalJson([w.addressType, w.endpoints, w.ports]) &&
      labelsEqual(s.metadata.labels, labels);
    if (!same) {
      store.mutate(RESOURCES.endpointslices, ns, s.metadata.name, (cur) => {
        cur.metadata.labels = labels;
        return { ...cur, ...w };
      });
    }
  }
}
