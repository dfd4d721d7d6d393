// Deployment → ReplicaSets, against the store: the I/O around planDeployment.
import { StoreError } from '../store.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { canonicalJson } from './hash.ts';
import { controllerRef, isTerminating } from './meta.ts';
import { planDeployment, REVISION } from './deployment-plan.ts';
import type { SyncContext } from './replicaset.ts';
import type { Deployment, Pod, ReplicaSet } from './types.ts';

export function syncDeployment(ctx: SyncContext, namespace: string, name: string): void {
  const { store } = ctx;
  const d = store.get(RESOURCES.deployments, namespace, name) as Deployment | undefined;
  if (!d || isTerminating(d)) return;
  const allRS = store.list(RESOURCES.replicasets, namespace) as ReplicaSet[];
  const owned = allRS.filter((rs) => controllerRef(rs)?.uid === d.metadata.uid);
  const podsByReplicaSet = new Map<string, Pod[]>();
  for (const p of store.list(RESOURCES.pods, namespace) as Pod[]) {
    const uid = controllerRef(p)?.uid;
    if (uid) podsByReplicaSet.set(uid, [...(podsByReplicaSet.get(uid) ?? []), p]);
  }
  const plan = planDeployment({
    deployment: d,
    owned,
    podsByReplicaSet,
    takenNames: new Set(allRS.map((rs) => rs.metadata.name)),
    nowMs: ctx.now(),
  });

  // The message kubectl describe shows (deployment controller's ScalingReplicaSet).
  const scaled = (rs: string, from: number, to: number): void => {
    if (from === to) return;
    ctx.events.record(d, 'ScalingReplicaSet', `Scaled ${to > from ? 'up' : 'down'} replica set ${rs} from ${from} to ${to}`, 'deployment-controller');
  };
  if (plan.create) {
    store.create(RESOURCES.replicasets, plan.create);
    ctx.debug(`deployment ${namespace}/${name}: created replicaset ${plan.create.metadata.name} (${plan.create.spec.replicas ?? 0} replicas)`);
    scaled(plan.create.metadata.name, 0, plan.create.spec.replicas ?? 0);
  }
  for (const u of plan.updates) {
    const before = owned.find((rs) => rs.metadata.name === u.name)?.spec.replicas ?? 0;
    store.mutate(RESOURCES.replicasets, namespace, u.name, (rs) => {
      const r = rs as ReplicaSet;
      r.spec.replicas = u.replicas;
      if (u.annotations) r.metadata.annotations = { ...r.metadata.annotations, ...u.annotations };
      return r;
    });
    ctx.debug(`deployment ${namespace}/${name}: replicaset ${u.name} → ${u.replicas} replicas`);
    scaled(u.name, before, u.replicas);
  }
  for (const rsName of plan.deletes) {
    try {
      store.delete(RESOURCES.replicasets, namespace, rsName);
      ctx.debug(`deployment ${namespace}/${name}: pruned old replicaset ${rsName}`);
    } catch (err) {
      if (!(err instanceof StoreError && err.reason === 'NotFound')) throw err;
    }
  }

  const revisionChanged = plan.revision !== undefined && d.metadata.annotations?.[REVISION] !== plan.revision;
  const statusChanged = canonicalJson(d.status ?? {}) !== canonicalJson({ ...d.status, ...plan.status });
  if (revisionChanged || statusChanged) {
    store.mutate(RESOURCES.deployments, namespace, name, (cur) => {
      const c = cur as Deployment;
      if (plan.revision !== undefined) c.metadata.annotations = { ...c.metadata.annotations, [REVISION]: plan.revision };
      c.status = { ...c.status, ...plan.status };
      return c;
    });
  }
}
