// What the API server does around the objects besides serving them: the
// namespaces that exist at start, a "default" ServiceAccount in every
// namespace (the serviceaccount controller's job, kept here so every
// namespace has one whoever created it), and removing an object whose last
// finalizer went away. Garbage collection by ownerReferences and emptying a
// Terminating namespace are the controllers' (test/cluster/controllers/gc.ts).
import type { KubeObject, Store, WatchEvent } from '../store.ts';
import { StoreError } from '../store.ts';
import { RESOURCES, resourceByKey } from './resources.ts';

export const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

function ignoreGone(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // Another writer (the node, a controller, a client) got there first.
    if (!(err instanceof StoreError)) throw err;
  }
}

function ensureServiceAccount(store: Store, namespace: string): void {
  if (store.get(RESOURCES.serviceaccounts, namespace, 'default')) return;
  const ns = store.get(RESOURCES.namespaces, undefined, namespace);
  if (!ns || ns.metadata.deletionTimestamp) return;
  ignoreGone(() => store.create(RESOURCES.serviceaccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace } }));
}

export function namespaceObject(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

/** Creates the namespaces a fresh cluster has (and their default ServiceAccounts). */
export function bootstrap(store: Store): void {
  for (const name of INITIAL_NAMESPACES) {
    if (!store.get(RESOURCES.namespaces, undefined, name)) store.create(RESOURCES.namespaces, namespaceObject(name));
    ensureServiceAccount(store, name);
  }
}

export interface KubernetesServiceOptions {
  clusterIP: string;
  /** Where the API server is reached (the Endpoints of the service). */
  endpoint: { ip: string; port: number };
  /** The service port; 443 in a real cluster. */
  port?: number;
}

/** Creates (or replaces) the `kubernetes` Service and its Endpoints in "default", as the real API server maintains them. */
export function ensureKubernetesService(store: Store, opts: KubernetesServiceOptions): void {
  const port = opts.port ?? 443;
  const svc: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: {
      type: 'ClusterIP',
      clusterIP: opts.clusterIP,
      clusterIPs: [opts.clusterIP],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      internalTrafficPolicy: 'Cluster',
      sessionAffinity: 'None',
      ports: [{ name: 'https', port, protocol: 'TCP', targetPort: opts.endpoint.port }],
    },
    status: { loadBalancer: {} },
  };
  const ep: KubeObject = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [{ addresses: [{ ip: opts.endpoint.ip }], ports: [{ name: 'https', port: opts.endpoint.port, protocol: 'TCP' }] }],
  };
  for (const [key, obj] of [[RESOURCES.services, svc], [RESOURCES.endpoints, ep]] as const) {
    const cur = store.get(key, 'default', 'kubernetes');
    if (cur) store.update(key, { ...obj, metadata: { ...cur.metadata, ...obj.metadata, resourceVersion: undefined } });
    else store.create(key, obj);
  }
}

function onEvent(store: Store, ev: WatchEvent): void {
  const obj = ev.object;
  const meta = obj.metadata;
  if (ev.resource === RESOURCES.namespaces && ev.type === 'ADDED') ensureServiceAccount(store, meta.name);
  // The last finalizer of an object being deleted went away: now it goes.
  if (ev.type === 'MODIFIED' && meta.deletionTimestamp && (meta.finalizers?.length ?? 0) === 0 && (ev.previous?.metadata.finalizers?.length ?? 0) > 0) {
    const def = resourceByKey(ev.resource);
    const gracePending = ev.resource === RESOURCES.pods && (meta.deletionGracePeriodSeconds ?? 0) > 0;
    if (def && def.key !== RESOURCES.namespaces && !gracePending) ignoreGone(() => store.delete(def.key, meta.namespace, meta.name));
  }
}

/** Starts the control loops; returns the function that stops them. */
export function startLifecycle(store: Store): () => void {
  let stopped = false;
  const unsubscribe = store.watch((ev) => {
    // Run after the write that caused the event has returned to its caller.
    queueMicrotask(() => {
      if (!stopped) onEvent(store, ev);
    });
  });
  return () => {
    stopped = true;
    unsubscribe?.();
  };
}
