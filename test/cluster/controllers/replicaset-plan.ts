// The ReplicaSet controller's decisions, without the store: how many pods to
// create, which to delete, what the status says. Mirrors
// pkg/controller/replicaset (manageReplicas, calculateStatus) and the pod
// ranking of controller.ActivePods.
import { availableIn, controllerRef, isActive, isReady, isTerminating, readySince, selects, selectsMap } from './meta.ts';
import type { Pod, ReplicaSet, ReplicaSetStatus } from './types.ts';

export interface ReplicaSetPlan {
  create: number;
  /** Pods to delete, most expendable first. */
  remove: Pod[];
  status: ReplicaSetStatus;
  /** Sync again after this many ms (a pod becomes available after minReadySeconds). */
  recheckAfterMs?: number;
}

const PHASE_RANK: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

function restarts(p: Pod): number {
  return (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}

/**
 * controller.ActivePods' Less: which pod to delete first. Unscheduled before
 * scheduled, Pending before Unknown before Running, not ready before ready,
 * ready for less time before longer, more restarts before fewer, newer
 * before older.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const sa = a.spec.nodeName ? 1 : 0;
  const sb = b.spec.nodeName ? 1 : 0;
  if (sa !== sb) return sa - sb;
  const pa = PHASE_RANK[a.status?.phase ?? 'Pending'] ?? 0;
  const pb = PHASE_RANK[b.status?.phase ?? 'Pending'] ?? 0;
  if (pa !== pb) return pa - pb;
  const ra = isReady(a) ? 1 : 0;
  const rb = isReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  if (ra === 1) {
    const ta = readySince(a) ?? 0;
    const tb = readySince(b) ?? 0;
    if (ta !== tb) return tb - ta;
  }
  const xa = restarts(a);
  const xb = restarts(b);
  if (xa !== xb) return xb - xa;
  const ca = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const cb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ca !== cb) return cb - ca;
  return a.metadata.name < b.metadata.name ? 1 : -1;
}

export interface Claim {
  /** Pods this ReplicaSet controls after the claim. */
  owned: Pod[];
  /** Orphans its selector matches: they get a controller reference to it. */
  adopt: Pod[];
  /** Pods it controls whose labels no longer match: their reference goes. */
  release: Pod[];
}

/**
 * controller.PodControllerRefManager.ClaimPods: a controller owns the pods
 * its selector matches; an orphan that matches is adopted, an owned pod
 * relabelled out of the selector is let go (and replaced), and pods being
 * deleted are neither adopted nor released. A ReplicaSet being deleted
 * adopts nothing.
 */
export function claimPods(rs: ReplicaSet, pods: Pod[]): Claim {
  const claim: Claim = { owned: [], adopt: [], release: [] };
  for (const p of pods) {
    if (p.metadata.namespace !== rs.metadata.namespace) continue;
    const ref = controllerRef(p);
    const matches = selects(rs.spec.selector, p.metadata.labels);
    if (ref?.uid === rs.metadata.uid) {
      if (matches || isTerminating(p)) claim.owned.push(p);
      else claim.release.push(p);
    } else if (!ref && matches && !isTerminating(p) && !isTerminating(rs)) {
      claim.adopt.push(p);
      claim.owned.push(p);
    }
  }
  return claim;
}

/** `owned`: the pods whose controller reference is this ReplicaSet. */
export function planReplicaSet(rs: ReplicaSet, owned: Pod[], nowMs: number): ReplicaSetPlan {
  const desired = rs.spec.replicas ?? 1;
  const minReady = rs.spec.minReadySeconds ?? 0;
  // Pods being deleted do not count: the ReplicaSet replaces them at once.
  const active = owned.filter(isActive);
  const diff = active.length - desired;
  const remove = diff > 0 ? [...active].sort(compareForDeletion).slice(0, diff) : [];
  const templateLabels = rs.spec.template.metadata?.labels ?? {};
  let ready = 0;
  let available = 0;
  let labeled = 0;
  let recheck: number | undefined;
  for (const p of active) {
    if (selectsMap(templateLabels, p.metadata.labels)) labeled++;
    if (isReady(p)) ready++;
    const wait = availableIn(p, minReady, nowMs);
    if (wait === 0) available++;
    else if (wait !== undefined) recheck = Math.min(recheck ?? Infinity, wait);
  }
  const status: ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: labeled,
    readyReplicas: ready,
    availableReplicas: available,
    observedGeneration: rs.metadata.generation,
  };
  return { create: Math.max(0, -diff), remove, status, recheckAfterMs: recheck };
}

/** The pod a ReplicaSet creates from its template (before defaulting and naming). */
export function podFromTemplate(rs: ReplicaSet, name: string, nodeName: string, nowIso: string): Pod {
  const t = structuredClone(rs.spec.template);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: `${rs.metadata.name}-`,
      namespace: rs.metadata.namespace,
      labels: t.metadata?.labels ?? {},
      ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
      ],
    },
    // We are the scheduler too: there is one node.
    spec: { ...t.spec, nodeName },
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowIso }],
      qosClass: 'BestEffort',
    },
  };
}
