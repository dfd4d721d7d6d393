// Test support for the controllers (and anyone testing on a store without
// the real node): what kubectl rollout status concludes, a stand-in node,
// and waiting on store events instead of sleeping.
import type { Store } from '../store.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { isTerminating } from './meta.ts';
import type { Deployment, Pod } from './types.ts';

/** What kubectl's DeploymentStatusViewer prints (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go). */
export function rolloutStatus(d: Deployment): { message: string; done: boolean } {
  const s = d.status ?? {};
  const name = d.metadata.name;
  if ((d.metadata.generation ?? 0) > (s.observedGeneration ?? 0)) return { message: 'Waiting for deployment spec update to be observed...', done: false };
  const cond = s.conditions?.find((c) => c.type === 'Progressing');
  if (cond?.reason === 'ProgressDeadlineExceeded') return { message: `deployment "${name}" exceeded its progress deadline`, done: false };
  const want = d.spec.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  if (updated < want) return { message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${want} new replicas have been updated...`, done: false };
  if ((s.replicas ?? 0) > updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${(s.replicas ?? 0) - updated} old replicas are pending termination...`, done: false };
  if ((s.availableReplicas ?? 0) < updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${s.availableReplicas ?? 0} of ${updated} updated replicas are available...`, done: false };
  return { message: `deployment "${name}" successfully rolled out`, done: true };
}

/**
 * A stand-in for the node: a bound pod gets an IP and Running, and Ready
 * unless `ready` says otherwise; a pod with deletionTimestamp is removed.
 * It works after the event (setImmediate), as a separate component would.
 */
export class FakeNode {
  private next = 2;
  ready: (p: Pod) => boolean = () => true;
  /** Pods whose removal is held back (to watch a terminating pod). */
  hold = new Set<string>();
  private readonly stop: () => void;
  private readonly store: Store;
  constructor(store: Store) {
    this.store = store;
    this.stop = store.watch((ev) => {
      if (ev.resource !== RESOURCES.pods || ev.type === 'DELETED') return;
      const name = ev.object.metadata.name;
      setImmediate(() => this.tend(ev.object.metadata.namespace, name));
    }) ?? (() => {});
  }

  tend(namespace: string | undefined, name: string): void {
    const p = this.store.get(RESOURCES.pods, namespace, name) as Pod | undefined;
    if (!p || !p.spec.nodeName) return;
    if (isTerminating(p)) {
      if (!this.hold.has(name)) this.store.delete(RESOURCES.pods, namespace, name);
      return;
    }
    const ready = this.ready(p);
    const cur = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (p.status?.podIP && cur === ready) return;
    p.status = {
      ...p.status,
      phase: 'Running',
      podIP: p.status?.podIP ?? `10.1.0.${this.next++}`,
      conditions: [
        ...(p.status?.conditions ?? []).filter((c) => c.type !== 'Ready'),
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date().toISOString() },
      ],
    };
    this.store.update(RESOURCES.pods, p);
  }

  /** Re-evaluate readiness for every pod (after changing `ready`). */
  retend(): void {
    for (const p of this.store.list(RESOURCES.pods)) this.tend(p.metadata.namespace, p.metadata.name);
  }

  close(): void {
    this.stop();
  }
}

/** Resolves when `cond` holds, checking now and after every store event; fails with `what` after 10 s. */
export function waitFor<T>(store: Store, what: string, cond: () => T | undefined | false): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      unwatch?.();
    };
    const check = (): void => {
      if (settled) return;
      let v: T | undefined | false;
      try {
        v = cond();
      } catch (err) {
        finish();
        reject(err as Error);
        return;
      }
      if (v === undefined || v === false) return;
      finish();
      resolve(v);
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out waiting for ${what}`));
    }, 10_000);
    // After the event's other listeners (the controllers' queue) have run.
    const unwatch = store.watch(() => setImmediate(check));
    check();
  });
}
