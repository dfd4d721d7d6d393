// The test cluster's controller manager: Deployment, ReplicaSet, scheduler,
// Endpoints/EndpointSlices, garbage collector and namespace cleanup, all
// driven by the store's watch through one work queue. Each sync reads the
// store's current state, so the order and number of events do not matter,
// only that every change enqueues the objects it can affect.
import { debuglog } from 'node:util';
import type { Store, WatchEvent } from '../store.ts';
import { StoreError } from '../store.ts';
import { RESOURCE_DEFS, RESOURCES } from '../apiserver/resources.ts';
import { syncDeployment } from './deployment.ts';
import { syncEndpoints, SERVICE_NAME_LABEL } from './endpoints.ts';
import { collect, DependentsIndex, emptyNamespace, gcKey, parseGcKey } from './gc.ts';
import { controllerRef, isTerminating, selects } from './meta.ts';
import { syncReplicaSet, type SyncContext } from './replicaset.ts';
import { needsScheduling, schedule } from './scheduler.ts';
import { WorkQueue } from './queue.ts';
import { EventRecorder } from './events.ts';
import type { Pod, ReplicaSet, Service } from './types.ts';

const log = debuglog('kt-controllers');

export interface ControllerOptions {
  store: Store;
  /** Where decisions are logged; default: NODE_DEBUG=kt-controllers. */
  debug?: (m: string) => void;
  /** The node every pod is bound to. */
  nodeName?: string;
  /** Clock (ms since epoch), for tests. */
  now?: () => number;
}

export interface Controllers {
  close(): void;
}

export const DEFAULT_NODE_NAME = 'kt-node';

type Kind = 'deployment' | 'replicaset' | 'endpoints' | 'schedule' | 'gc' | 'namespace';

function queueKey(kind: Kind, namespace: string, name: string): string {
  return `${kind}\u0000${namespace}\u0000${name}`;
}

export function startControllers(opts: ControllerOptions): Controllers {
  const store = opts.store;
  const debug = opts.debug ?? ((m: string) => log('%s', m));
  const nodeName = opts.nodeName ?? DEFAULT_NODE_NAME;
  const now = opts.now ?? Date.now;
  const index = new DependentsIndex();
  const events = new EventRecorder(store, now);

  const sync = (key: string): void => {
    const [kind, namespace, name] = key.split('\u0000') as [Kind, string, string];
    const ctx: SyncContext = { store, events, nodeName, now, debug, requeueAfter: (ms) => queue.addAfter(key, ms) };
    try {
      switch (kind) {
        case 'deployment':
          return syncDeployment(ctx, namespace, name);
        case 'replicaset':
          return syncReplicaSet(ctx, namespace, name);
        case 'endpoints':
          return syncEndpoints(ctx, namespace, name);
        case 'schedule':
          return bindPod(namespace, name);
        case 'gc':
          return collect(store, parseGcKey(name), debug);
        case 'namespace':
          return emptyNamespace(store, name, debug);
      }
    } catch (err) {
      // The object went away while we worked on it: its next event (or none) decides.
      if (err instanceof StoreError && err.reason === 'NotFound') return;
      throw err;
    }
  };
  const bindPod = (namespace: string, name: string): void => {
    const pod = schedule(store, namespace, name, nodeName, now());
    if (!pod) return;
    debug(`scheduler: bound pod ${namespace}/${name} to ${nodeName}`);
    events.record(pod, 'Scheduled', `Successfully assigned ${namespace}/${name} to ${nodeName}`, 'default-scheduler');
  };
  const queue = new WorkQueue(sync, (key, err) => debug(`controllers: sync ${key.replaceAll('\u0000', ' ')} failed, retrying: ${String(err)}`));
  const add = (kind: Kind, namespace: string | undefined, name: string): void => queue.add(queueKey(kind, namespace ?? '', name));

  /** Every Service in the namespace that manages endpoints: a pod change may add or remove it from any of them. */
  const servicesIn = (namespace: string | undefined): void => {
    for (const s of store.list(RESOURCES.services, namespace) as Service[]) {
      if (Object.keys(s.spec.selector ?? {}).length > 0) add('endpoints', namespace, s.metadata.name);
    }
  };

  const onEvent = (ev: WatchEvent): void => {
    const o = ev.object;
    const ns = o.metadata.namespace;
    for (const dep of index.observe(ev)) add('gc', '', gcKey(dep));
    if (ev.type === 'DELETED' && ns) {
      const nsObj = store.get(RESOURCES.namespaces, undefined, ns);
      // A terminating namespace goes once its last object has.
      if (nsObj && isTerminating(nsObj)) add('namespace', '', ns);
    }
    switch (ev.resource) {
      case RESOURCES.pods: {
        const pod = o as Pod;
        if (ev.type !== 'DELETED' && needsScheduling(pod)) add('schedule', ns, o.metadata.name);
        const ref = controllerRef(o);
        if (ref?.kind === 'ReplicaSet') {
          add('replicaset', ns, ref.name);
          // Recreate waits for the old pods to be gone, so the Deployment hears of them too.
          const rsOwner = controllerRef(store.get(RESOURCES.replicasets, ns, ref.name) ?? o);
          if (rsOwner?.kind === 'Deployment') add('deployment', ns, rsOwner.name);
        } else if (!ref && ev.type !== 'DELETED') {
          // An orphan: any ReplicaSet whose selector matches may adopt it.
          for (const rs of store.list(RESOURCES.replicasets, ns) as ReplicaSet[]) {
            if (selects(rs.spec.selector, o.metadata.labels)) add('replicaset', ns, rs.metadata.name);
          }
        }
        servicesIn(ns);
        return;
      }
      case RESOURCES.replicasets: {
        if (ev.type !== 'DELETED') add('replicaset', ns, o.metadata.name);
        const ref = controllerRef(o);
        if (ref?.kind === 'Deployment') add('deployment', ns, ref.name);
        return;
      }
      case RESOURCES.deployments:
        if (ev.type !== 'DELETED') add('deployment', ns, o.metadata.name);
        return;
      case RESOURCES.services:
        add('endpoints', ns, o.metadata.name);
        return;
      case RESOURCES.endpoints:
        // Endpoints edited by someone else are put back, as the real controller
        // does — but only a Service's: Endpoints written before their
        // selectorless Service (or without one) are the user's.
        if (store.get(RESOURCES.services, ns, o.metadata.name)) add('endpoints', ns, o.metadata.name);
        return;
      case RESOURCES.endpointslices: {
        const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
        if (svc) add('endpoints', ns, svc);
        return;
      }
      case RESOURCES.namespaces:
        if (ev.type === 'DELETED' || isTerminating(o)) add('namespace', '', o.metadata.name);
        return;
    }
  };

  const unwatch = store.watch(onEvent);
  // Catch up with what the store holds already, as an informer's initial list does.
  for (const def of RESOURCE_DEFS) {
    for (const o of store.list(def.key)) onEvent({ type: 'ADDED', resource: def.key, object: o, rv: store.resourceVersion });
  }
  debug(`controllers: started (node ${nodeName})`);

  return {
    close() {
      unwatch?.();
      queue.close();
    },
  };
}
