// A read-through mirror of the upstream API server's objects, with the same
// shape as the old in-process store (get, list, watch, mutate, delete), so the
// node agent, the service proxy and the tests read a local cache kept by
// list+watch, as client-go's informers do:
//   - each resource is listed, then watched from the list's resourceVersion
//     with bookmarks; a watch that ends is resumed from the last version seen;
//   - a 410 Gone (the version fell out of the watch cache) relists and emits
//     the difference, so a listener never misses a change;
//   - writes (a pod's status, the kubelet's final delete) go to the API server
//     in order per object; the cache changes when the watch reports them.
import { debuglog } from 'node:util';
import { ApiClient, ApiError, resourcePath, type WatchHandle } from './client.ts';
import { clone, type KubeObject, type Listener, type ObjectStore, type WatchEvent } from '../store.ts';

const debug = debuglog('kt-cluster');

/** kind and apiVersion of list items (a list's items carry neither). */
const KINDS: Record<string, [string, string]> = {
  pods: ['v1', 'Pod'],
  services: ['v1', 'Service'],
  endpoints: ['v1', 'Endpoints'],
  configmaps: ['v1', 'ConfigMap'],
  secrets: ['v1', 'Secret'],
  serviceaccounts: ['v1', 'ServiceAccount'],
  namespaces: ['v1', 'Namespace'],
  nodes: ['v1', 'Node'],
  'endpointslices.discovery.k8s.io': ['discovery.k8s.io/v1', 'EndpointSlice'],
  'deployments.apps': ['apps/v1', 'Deployment'],
  'replicasets.apps': ['apps/v1', 'ReplicaSet'],
};

export const MIRRORED = Object.keys(KINDS);

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

class Informer {
  readonly objects = new Map<string, KubeObject>();
  private rv = '';
  private handle?: WatchHandle;
  private closed = false;
  readonly resource: string;
  private readonly client: ApiClient;
  private readonly emit: (ev: WatchEvent) => void;

  constructor(client: ApiClient, resource: string, emit: (ev: WatchEvent) => void) {
    this.client = client;
    this.resource = resource;
    this.emit = emit;
  }

  private typed(o: Record<string, unknown>): KubeObject {
    const [apiVersion, kind] = KINDS[this.resource];
    return { ...o, apiVersion, kind } as KubeObject;
  }

  /** List and replace the cache, emitting what changed since the last list. */
  async list(): Promise<void> {
    const l = await this.client.call<{ metadata: { resourceVersion: string }; items: Record<string, unknown>[] }>('GET', resourcePath(this.resource));
    const seen = new Set<string>();
    for (const item of l.items) {
      const o = this.typed(item);
      const k = key(o.metadata.namespace, o.metadata.name);
      seen.add(k);
      const prev = this.objects.get(k);
      this.objects.set(k, o);
      if (!prev) this.emit({ type: 'ADDED', resource: this.resource, object: clone(o), rv: Number(o.metadata.resourceVersion) });
      else if (prev.metadata.resourceVersion !== o.metadata.resourceVersion) {
        this.emit({ type: 'MODIFIED', resource: this.resource, object: clone(o), rv: Number(o.metadata.resourceVersion), previous: prev });
      }
    }
    for (const [k, o] of this.objects) {
      if (seen.has(k)) continue;
      this.objects.delete(k);
      this.emit({ type: 'DELETED', resource: this.resource, object: o, rv: Number(l.metadata.resourceVersion) });
    }
    this.rv = l.metadata.resourceVersion;
  }

  /** Watch until close(): resume from the last version, relist on 410. */
  async run(): Promise<void> {
    while (!this.closed) {
      let gone = false;
      try {
        const path = `${resourcePath(this.resource)}?watch=1&allowWatchBookmarks=true&resourceVersion=${this.rv}&timeoutSeconds=${240 + Math.floor(Math.random() * 120)}`;
        this.handle = await this.client.watch(path, (ev) => {
          if (ev.type === 'ERROR') {
            if ((ev.object as { code?: number }).code === 410) gone = true;
            return;
          }
          const meta = ev.object.metadata as { resourceVersion?: string } | undefined;
          if (meta?.resourceVersion) this.rv = meta.resourceVersion;
          if (ev.type === 'BOOKMARK') return;
          const o = this.typed(ev.object);
          const k = key(o.metadata.namespace, o.metadata.name);
          const prev = this.objects.get(k);
          if (ev.type === 'DELETED') this.objects.delete(k);
          else this.objects.set(k, o);
          this.emit({ type: ev.type as WatchEvent['type'], resource: this.resource, object: clone(o), rv: Number(this.rv), ...(prev ? { previous: prev } : {}) });
        });
        if (this.closed) this.handle.stop();
        await this.handle.ended;
      } catch (e) {
        if (this.closed) return;
        if (e instanceof ApiError && e.status === 410) gone = true;
        else {
          debug('watch %s: %s', this.resource, (e as Error).message);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      if (gone && !this.closed) {
        debug('watch %s: 410 Gone, relisting', this.resource);
        await this.list().catch((e: Error) => debug('relist %s: %s', this.resource, e.message));
      }
    }
  }

  close(): void {
    this.closed = true;
    this.handle?.stop();
  }
}

export class MirrorStore implements ObjectStore {
  readonly client: ApiClient;
  private readonly informers = new Map<string, Informer>();
  private readonly listeners = new Set<Listener>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(client: ApiClient) {
    this.client = client;
  }

  /** List every mirrored resource, then keep watching; resolves when all lists are in. */
  async start(resources = MIRRORED): Promise<void> {
    const emit = (ev: WatchEvent): void => {
      for (const l of [...this.listeners]) {
        try {
          l(ev);
        } catch (e) {
          debug('mirror listener: %s', (e as Error).message);
        }
      }
    };
    await Promise.all(resources.map(async (r) => {
      const inf = new Informer(this.client, r, emit);
      this.informers.set(r, inf);
      await inf.list();
      void inf.run();
    }));
  }

  private bucket(resource: string): Map<string, KubeObject> {
    const inf = this.informers.get(resource);
    if (!inf) throw new Error(`the mirror does not watch ${resource} (add it to MIRRORED)`);
    return inf.objects;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(resource).get(key(namespace, name));
    return o ? clone(o) : undefined;
  }

  list(resource: string, namespace?: string): KubeObject[] {
    const out = [...this.bucket(resource).values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace).map((o) => clone(o));
    return out.sort((a, b) => key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)));
  }

  watch(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Writes to one object leave in the order they were made. */
  private enqueue(k: string, write: () => Promise<unknown>): void {
    const prev = this.writes.get(k) ?? Promise.resolve();
    const next = prev.then(write).then(() => undefined, (e: Error) => debug('write %s: %s', k, e.message));
    this.writes.set(k, next);
    void next.then(() => {
      if (this.writes.get(k) === next) this.writes.delete(k);
    });
  }

  /**
   * Read-modify-write of a pod's status (the only object the node agent
   * writes): the new status replaces the old one, guarded by the pod's uid
   * so a pod re-created under the same name is never written.
   */
  mutate(resource: string, namespace: string | undefined, name: string, fn: (o: KubeObject) => KubeObject | undefined): KubeObject | undefined {
    const cur = this.get(resource, namespace, name);
    if (!cur) return undefined;
    const next = fn(clone(cur));
    if (!next) return cur;
    const patch = [
      { op: 'test', path: '/metadata/uid', value: cur.metadata.uid },
      { op: 'add', path: '/status', value: next.status ?? {} },
    ];
    const sub = resource === 'pods' || resource === 'nodes' ? 'status' : undefined;
    this.enqueue(`${resource}/${key(namespace, name)}`, () => this.client.call('PATCH', resourcePath(resource, namespace, name, sub), patch, 'application/json-patch+json'));
    return next;
  }

  /** Immediate delete with the cached object's uid as a precondition (the kubelet's last word on a pod). */
  delete(resource: string, namespace: string | undefined, name: string): KubeObject {
    const cur = this.get(resource, namespace, name);
    if (!cur) throw new ApiError(404, 'NotFound', `${resource} "${name}" not found`);
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: cur.metadata.uid } };
    this.enqueue(`${resource}/${key(namespace, name)}`, () => this.client.call('DELETE', resourcePath(resource, namespace, name), body).catch((e: unknown) => {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 409))) throw e;
    }));
    return cur;
  }

  close(): void {
    for (const inf of this.informers.values()) inf.close();
    this.listeners.clear();
    this.client.close();
  }
}
