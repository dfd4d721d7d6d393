// ReplicaSet → Pods, against the store: the I/O around planReplicaSet.
import type { Store } from '../store.ts';
import type { EventRecorder } from './events.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { controllerRef, isTerminating, ownerRefTo, timestamp } from './meta.ts';
import { createPod, deleteGracefully } from './pods.ts';
import { claimPods, planReplicaSet, podFromTemplate } from './replicaset-plan.ts';
import type { Pod, ReplicaSet, ReplicaSetStatus } from './types.ts';

export interface SyncContext {
  store: Store;
  events: EventRecorder;
  nodeName: string;
  now: () => number;
  requeueAfter: (ms: number) => void;
  debug: (m: string) => void;
}

function statusChanged(old: ReplicaSetStatus | undefined, next: ReplicaSetStatus): boolean {
  return (Object.keys(next) as (keyof ReplicaSetStatus)[]).some((k) => old?.[k] !== next[k]);
}

export function syncReplicaSet(ctx: SyncContext, namespace: string, name: string): void {
  const { store } = ctx;
  const rs = store.get(RESOURCES.replicasets, namespace, name) as ReplicaSet | undefined;
  // A ReplicaSet being deleted leaves its pods to the garbage collector.
  if (!rs || isTerminating(rs)) return;
  const claim = claimPods(rs, store.list(RESOURCES.pods, namespace) as Pod[]);
  for (const p of claim.adopt) {
    store.mutate(RESOURCES.pods, namespace, p.metadata.name, (cur) => {
      if (controllerRef(cur)) return undefined;
      cur.metadata.ownerReferences = [...(cur.metadata.ownerReferences ?? []), ownerRefTo(rs)];
      return cur;
    });
    ctx.debug(`replicaset ${namespace}/${name}: adopted pod ${p.metadata.name}`);
  }
  for (const p of claim.release) {
    store.mutate(RESOURCES.pods, namespace, p.metadata.name, (cur) => {
      cur.metadata.ownerReferences = cur.metadata.ownerReferences?.filter((r) => r.uid !== rs.metadata.uid);
      if (cur.metadata.ownerReferences?.length === 0) delete cur.metadata.ownerReferences;
      return cur;
    });
    ctx.debug(`replicaset ${namespace}/${name}: released pod ${p.metadata.name} (labels no longer match)`);
  }
  const now = ctx.now();
  const plan = planReplicaSet(rs, claim.owned, now);
  for (let i = 0; i < plan.create; i++) {
    const pod = createPod(store, podFromTemplate(rs, '', ctx.nodeName, timestamp(now)));
    ctx.debug(`replicaset ${namespace}/${name}: created pod ${pod.metadata.name}`);
    ctx.events.record(rs, 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`, 'replicaset-controller');
    ctx.events.record(pod, 'Scheduled', `Successfully assigned ${namespace}/${pod.metadata.name} to ${ctx.nodeName}`, 'default-scheduler');
  }
  for (const p of plan.remove) {
    deleteGracefully(store, RESOURCES.pods, namespace, p.metadata.name);
    ctx.debug(`replicaset ${namespace}/${name}: deleting pod ${p.metadata.name}`);
    ctx.events.record(rs, 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`, 'replicaset-controller');
  }
  if (statusChanged(rs.status, plan.status)) {
    store.mutate(RESOURCES.replicasets, namespace, name, (cur) => {
      cur.status = { ...(cur.status as ReplicaSetStatus | undefined), ...plan.status };
      return cur;
    });
  }
  if (plan.recheckAfterMs !== undefined) ctx.requeueAfter(plan.recheckAfterMs + 1);
}
