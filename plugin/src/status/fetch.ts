// Reads what buildStatus needs from the API server: kubectl-kt's pods (by
// label) and the namespace's Services (a taken-over Service is found by its
// original-selector annotation, which no label selector can express).
import { LABELS, MANAGED_BY } from '../../../contract/protocol.ts';
import { fromApiError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { buildStatus, type PodLike, type ServiceLike, type StatusReport } from './model.ts';

export async function fetchStatus(kube: KubeApi, scope: { namespace: string; all: boolean }, now: number): Promise<StatusReport> {
  const api = kube.core;
  const labelSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
  const ns = scope.all ? undefined : scope.namespace;
  // Both lists at once: over a laptop's link each is a round trip (or two, with a new TLS connection).
  const [pods, services] = await Promise.allSettled([
    ns ? api.listNamespacedPod({ namespace: ns, labelSelector }) : api.listPodForAllNamespaces({ labelSelector }),
    ns ? api.listNamespacedService({ namespace: ns }) : api.listServiceForAllNamespaces(),
  ]);
  // When both fail, the pods' error is the one told, as when they were asked in turn.
  if (pods.status === 'rejected') throw fromApiError(pods.reason, { verb: 'list', resource: 'pods', namespace: ns });
  if (services.status === 'rejected') throw fromApiError(services.reason, { verb: 'list', resource: 'services', namespace: ns });
  return buildStatus({ pods: normalize(pods.value.items as PodLike[]), services: normalize(services.value.items as ServiceLike[]), now, namespaces: ns ? [ns] : 'all' });
}

/** client-node turns timestamps into Date objects; the model works on RFC 3339 strings. */
function normalize<T extends { metadata?: { creationTimestamp?: string | Date; deletionTimestamp?: string | Date } }>(items: T[]): T[] {
  return items.map((o) => {
    const m = o.metadata;
    if (!m) return o;
    const iso = (d: string | Date | undefined): string | undefined => (d instanceof Date ? d.toISOString() : d);
    return { ...o, metadata: { ...m, creationTimestamp: iso(m.creationTimestamp), deletionTimestamp: iso(m.deletionTimestamp) } };
  });
}
