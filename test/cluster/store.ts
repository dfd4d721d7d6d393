// The test cluster's object store: every object of every kind, with a global
// resourceVersion counter and a bounded event history so a watch can resume
// from a resourceVersion as the real API server's watch cache allows.
// The API server, the controllers and the node all read and write through it.

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  generateName?: string;
  finalizers?: string[];
  [key: string]: unknown;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: EventType;
  /** The resource key, e.g. "pods" or "deployments.apps". */
  resource: string;
  object: KubeObject;
  /** The resourceVersion of this event (numeric, as a string in the object). */
  rv: number;
  /** On MODIFIED: the object before the change (a watch with a selector needs it to tell ADDED/DELETED). */
  previous?: KubeObject;
}

export type Listener = (ev: WatchEvent) => void;

/** What the node agent, the service proxy and the tests read and write through. */
export interface ObjectStore {
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(resource: string, namespace?: string): KubeObject[];
  watch(listener: Listener): (() => void) | undefined;
  mutate(resource: string, namespace: string | undefined, name: string, fn: (o: KubeObject) => KubeObject | undefined): KubeObject | undefined;
  delete(resource: string, namespace: string | undefined, name: string): KubeObject;
}

/** Thrown by the store; the API server turns it into a Status object. */
export class StoreError extends Error {
  readonly reason: 'NotFound' | 'AlreadyExists' | 'Conflict';
  readonly resource: string;
  readonly objName: string;
  constructor(reason: 'NotFound' | 'AlreadyExists' | 'Conflict', resource: string, name: string, message: string) {
    super(message);
    this.reason = reason;
    this.resource = resource;
    this.objName = name;
  }
}

const HISTORY = 10_000;

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

export class Store implements ObjectStore {
  private rv = 1;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private readonly history: WatchEvent[] = [];
  private readonly listeners = new Set<Listener>();

  /** The current resourceVersion (of the last write). */
  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch can still resume from. */
  get oldestResumable(): number {
    return this.history.length > 0 ? this.history[0].rv - 1 : this.rv;
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.data.get(resource);
    if (!b) {
      b = new Map();
      this.data.set(resource, b);
    }
    return b;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(resource).get(key(namespace, name));
    return o ? clone(o) : undefined;
  }

  /** Every object of a resource, in one namespace or all (namespace undefined). */
  list(resource: string, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const o of this.bucket(resource).values()) {
      if (namespace === undefined || o.metadata.namespace === namespace) out.push(clone(o));
    }
    out.sort((a, b) => key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)));
    return out;
  }

  create(resource: string, obj: KubeObject): KubeObject {
    const b = this.bucket(resource);
    const k = key(obj.metadata.namespace, obj.metadata.name);
    if (b.has(k)) {
      throw new StoreError('AlreadyExists', resource, obj.metadata.name, `${resource} "${obj.metadata.name}" already exists`);
    }
    const o = clone(obj);
    o.metadata.uid ??= crypto.randomUUID();
    o.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    o.metadata.generation ??= 1;
    o.metadata.resourceVersion = String(++this.rv);
    b.set(k, o);
    this.emit({ type: 'ADDED', resource, object: clone(o), rv: this.rv });
    return clone(o);
  }

  /**
   * Replace an object. When `obj.metadata.resourceVersion` is set it must
   * match the stored one (optimistic concurrency), else Conflict.
   */
  update(resource: string, obj: KubeObject): KubeObject {
    const b = this.bucket(resource);
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const cur = b.get(k);
    if (!cur) throw new StoreError('NotFound', resource, obj.metadata.name, `${resource} "${obj.metadata.name}" not found`);
    const wanted = obj.metadata.resourceVersion;
    if (wanted && wanted !== cur.metadata.resourceVersion) {
      throw new StoreError(
        'Conflict',
        resource,
        obj.metadata.name,
        `Operation cannot be fulfilled on ${resource} "${obj.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const o = clone(obj);
    o.metadata.uid = cur.metadata.uid;
    o.metadata.creationTimestamp = cur.metadata.creationTimestamp;
    // generation counts spec changes only, as the real API server does.
    const specChanged = JSON.stringify(cur.spec) !== JSON.stringify(o.spec);
    o.metadata.generation = (cur.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    o.metadata.resourceVersion = String(++this.rv);
    b.set(k, o);
    this.emit({ type: 'MODIFIED', resource, object: clone(o), rv: this.rv, previous: clone(cur) });
    return clone(o);
  }

  /** Read-modify-write with retries on conflict; `fn` returns undefined to skip. */
  mutate(resource: string, namespace: string | undefined, name: string, fn: (o: KubeObject) => KubeObject | undefined): KubeObject | undefined {
    const cur = this.get(resource, namespace, name);
    if (!cur) return undefined;
    const next = fn(cur);
    if (!next) return cur;
    return this.update(resource, next);
  }

  delete(resource: string, namespace: string | undefined, name: string): KubeObject {
    const b = this.bucket(resource);
    const k = key(namespace, name);
    const cur = b.get(k);
    if (!cur) throw new StoreError('NotFound', resource, name, `${resource} "${name}" not found`);
    b.delete(k);
    const o = clone(cur);
    o.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', resource, object: clone(o), rv: this.rv });
    return o;
  }

  /**
   * Subscribe to changes. With `sinceRv`, events after that resourceVersion
   * still in history are replayed first; returns undefined when `sinceRv` is
   * older than the history (the API server answers 410 Gone then).
   */
  watch(listener: Listener, sinceRv?: number): (() => void) | undefined {
    if (sinceRv !== undefined && sinceRv < this.oldestResumable) return undefined;
    if (sinceRv !== undefined) {
      for (const ev of this.history) if (ev.rv > sinceRv) listener(ev);
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ev: WatchEvent): void {
    this.history.push(ev);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    for (const l of [...this.listeners]) {
      try {
        l(ev);
      } catch {
        // A listener's failure must not stop the others (or the write).
      }
    }
  }
}
