// Where the cluster DNS gets Services, Endpoints and Pods from: the store
// directly (inside the cluster process), or the API server over HTTP with
// list + watch, the way CoreDNS's kubernetes plugin (client-go reflector)
// keeps its cache: list, watch from the list's resourceVersion, list again
// when the watch says 410 Gone or the connection drops.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeObject, ObjectStore, WatchEvent } from '../store.ts';

export interface ServicePort {
  name?: string;
  protocol?: string;
  port: number;
}

export interface Service {
  metadata: { name: string; namespace?: string };
  spec?: { type?: string; clusterIP?: string; clusterIPs?: string[]; ports?: ServicePort[]; externalName?: string };
}

export interface EndpointAddress {
  ip: string;
  hostname?: string;
}

export interface Endpoints {
  metadata: { name: string; namespace?: string };
  subsets?: { addresses?: EndpointAddress[]; notReadyAddresses?: EndpointAddress[]; ports?: ServicePort[] }[];
}

export interface Pod {
  metadata: { name: string; namespace?: string };
  status?: { podIP?: string; podIPs?: { ip: string }[]; phase?: string };
}

/** What the cluster DNS reads; plain Kubernetes objects. */
export interface ClusterRecordSource {
  services(): Service[];
  endpoints(namespace: string, name: string): Endpoints | undefined;
  pods(): Pod[];
  /** Called after every change the source takes in (an event or a whole re-list); returns the unsubscribe. */
  onSync(fn: () => void): () => void;
  /** Resolves once Services, Endpoints and Pods have each been listed once. */
  readonly ready: Promise<void>;
  close(): void;
}

export const KINDS = ['services', 'endpoints', 'pods'] as const;
export type Kind = (typeof KINDS)[number];

const keyOf = (o: { metadata: { name: string; namespace?: string } }): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The objects last seen, by kind and namespace/name, and who wants to hear of changes. */
export class ObjectCache {
  private readonly maps: Record<Kind, Map<string, KubeObject>> = { services: new Map(), endpoints: new Map(), pods: new Map() };
  private readonly listeners = new Set<() => void>();

  replace(kind: Kind, items: KubeObject[]): void {
    this.maps[kind] = new Map(items.map((o) => [keyOf(o), o]));
    this.changed();
  }

  apply(kind: Kind, type: string, obj: KubeObject): void {
    if (type === 'DELETED') this.maps[kind].delete(keyOf(obj));
    else this.maps[kind].set(keyOf(obj), obj);
    this.changed();
  }

  services(): Service[] {
    return [...this.maps.services.values()] as Service[];
  }

  endpoints(namespace: string, name: string): Endpoints | undefined {
    return this.maps.endpoints.get(`${namespace}/${name}`) as Endpoints | undefined;
  }

  pods(): Pod[] {
    return [...this.maps.pods.values()] as Pod[];
  }

  onSync(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** Straight from the test cluster's store: list, then follow its synchronous events (no gap between the two). */
export function storeSource(store: ObjectStore): ClusterRecordSource {
  const cache = new ObjectCache();
  for (const kind of KINDS) cache.replace(kind, store.list(kind));
  const unsubscribe = store.watch((ev: WatchEvent) => {
    if ((KINDS as readonly string[]).includes(ev.resource)) cache.apply(ev.resource as Kind, ev.type, ev.object);
  });
  return {
    services: () => cache.services(),
    endpoints: (ns, name) => cache.endpoints(ns, name),
    pods: () => cache.pods(),
    onSync: (fn) => cache.onSync(fn),
    ready: Promise.resolve(),
    close: () => unsubscribe?.(),
  };
}

interface ListBody {
  metadata?: { resourceVersion?: string };
  items?: KubeObject[];
}

interface WatchLine {
  type: string;
  object: KubeObject & { code?: number };
}

/** Thrown inside the reflector when the API server says the resourceVersion is too old. */
class Gone extends Error {}

/**
 * List and watch Services, Endpoints and Pods from an API server at
 * `apiUrl`, with a bearer token when given (a ServiceAccount's, on the
 * upstream API server; its CA comes from NODE_EXTRA_CA_CERTS).
 */
export function watchSource(apiUrl: string, opts: { debug?: (m: string) => void; token?: string } = {}): ClusterRecordSource {
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const debug = opts.debug ?? (() => {});
  const base = apiUrl.replace(/\/+$/, '');
  const cache = new ObjectCache();
  const abort = new AbortController();
  const listed = new Set<Kind>();
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const reflect = async (kind: Kind): Promise<void> => {
    let backoffMs = 100;
    while (!abort.signal.aborted) {
      const started = Date.now();
      let events = 0;
      try {
        const list = await getJson(`${base}/api/v1/${kind}`, abort.signal, auth);
        cache.replace(kind, list.items ?? []);
        listed.add(kind);
        if (listed.size === KINDS.length) markReady();
        const rv = list.metadata?.resourceVersion ?? '';
        debug(`dns: listed ${list.items?.length ?? 0} ${kind} at resourceVersion ${rv}`);
        events = await watch(kind, rv);
        debug(`dns: ${kind} watch ended after ${events} events; listing again`);
      } catch (err) {
        if (abort.signal.aborted) return;
        debug(`dns: ${kind}: ${err instanceof Gone ? '410 Gone' : (err as Error).message}; listing again`);
      }
      // A server that keeps failing or closing at once is not hammered.
      if (events > 0 || Date.now() - started > 5000) backoffMs = 100;
      else {
        // An abort ends the wait early (it rejects); the loop then sees the signal.
        await sleep(backoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  };

  /** Follow one watch until it ends; the number of events it carried. Throws Gone on 410. */
  const watch = async (kind: Kind, rv: string): Promise<number> => {
    const url = `${base}/api/v1/${kind}?watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`;
    const res = await fetch(url, { signal: abort.signal, headers: auth });
    if (res.status === 410) throw new Gone();
    if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
    let events = 0;
    let buf = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      // The API server writes one JSON object per line.
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        const ev = JSON.parse(line) as WatchLine;
        if (ev.type === 'ERROR') {
          if (ev.object.code === 410) throw new Gone();
          throw new Error(`watch error: ${JSON.stringify(ev.object)}`);
        }
        events++;
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED') cache.apply(kind, ev.type, ev.object);
      }
    }
    return events;
  };

  for (const kind of KINDS) void reflect(kind);
  return {
    services: () => cache.services(),
    endpoints: (ns, name) => cache.endpoints(ns, name),
    pods: () => cache.pods(),
    onSync: (fn) => cache.onSync(fn),
    ready,
    close: () => abort.abort(),
  };
}

async function getJson(url: string, signal: AbortSignal, auth: Record<string, string>): Promise<ListBody> {
  const res = await fetch(url, { signal, headers: { accept: 'application/json', ...auth } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as ListBody;
}
