// Events the controllers record, so `kubectl describe` shows what happened
// ("Scaled up replica set …", "Created pod: …", "Successfully assigned …").
// Repeats of the same event on the same object are counted on one Event,
// as client-go's event correlator does.
import { randomBytes } from 'node:crypto';
import type { KubeObject, Store } from '../store.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { timestamp } from './meta.ts';

/** Records Events; remembers which Event holds which (object, reason, message) to count repeats. */
export class EventRecorder {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly seen = new Map<string, { namespace: string; name: string }>();

  constructor(store: Store, now: () => number) {
    this.store = store;
    this.now = now;
  }

  record(involved: KubeObject, reason: string, message: string, component: string, type: 'Normal' | 'Warning' = 'Normal'): void {
    const ns = involved.metadata.namespace ?? 'default';
    const now = timestamp(this.now());
    const key = JSON.stringify([involved.metadata.uid, reason, message]);
    const prev = this.seen.get(key);
    if (prev && this.store.mutate(RESOURCES.events, prev.namespace, prev.name, (e) => {
      e.count = ((e.count as number | undefined) ?? 1) + 1;
      e.lastTimestamp = now;
      return e;
    })) {
      return;
    }
    const name = `${involved.metadata.name}.${randomBytes(8).toString('hex')}`;
    this.store.create(RESOURCES.events, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: ns },
      involvedObject: {
        apiVersion: involved.apiVersion,
        kind: involved.kind,
        namespace: involved.metadata.namespace,
        name: involved.metadata.name,
        uid: involved.metadata.uid,
        resourceVersion: involved.metadata.resourceVersion,
      },
      reason,
      message,
      source: { component },
      reportingComponent: component,
      reportingInstance: '',
      firstTimestamp: now,
      lastTimestamp: now,
      eventTime: null,
      count: 1,
      type,
    });
    this.seen.set(key, { namespace: ns, name });
  }
}
