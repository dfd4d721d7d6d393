// The Deployment controller's decisions, without the store: which ReplicaSet
// is new, how far to scale each during a rollout, which old ones to prune,
// and the status `kubectl rollout status` reads. Follows
// pkg/controller/deployment (rolling.go, recreate.go, sync.go,
// util/deployment_util.go), minus proportional scaling of several
// ReplicaSets mid-rollout and the progress deadline.
import { POD_TEMPLATE_HASH, podTemplateHash, templatesEqual } from './hash.ts';
import { isFinished, ownerRefTo, timestamp } from './meta.ts';
import type { Deployment, DeploymentCondition, DeploymentStatus, IntOrString, Pod, ReplicaSet } from './types.ts';

export const REVISION = 'deployment.kubernetes.io/revision';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';

export interface ReplicaSetUpdate {
  name: string;
  replicas: number;
  annotations?: Record<string, string>;
}

export interface DeploymentPlan {
  /** A new ReplicaSet to create (the template changed, or first sync). */
  create?: ReplicaSet;
  /** Spec changes for existing ReplicaSets (only those that differ). */
  updates: ReplicaSetUpdate[];
  /** Old, empty ReplicaSets beyond revisionHistoryLimit. */
  deletes: string[];
  /** The deployment's revision annotation. */
  revision?: string;
  status: DeploymentStatus;
}

/** intstr.GetScaledValueFromIntOrPercent. */
export function scaled(v: IntOrString | undefined, fallback: string, total: number, roundUp: boolean): number {
  const x = v ?? fallback;
  if (typeof x === 'number') return x;
  const m = /^(\d+)%$/.exec(x);
  if (!m) return Number.parseInt(x, 10) || 0;
  const f = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(f) : Math.floor(f);
}

export function isRolling(d: Deployment): boolean {
  return (d.spec.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
}

/** deploymentutil.ResolveFenceposts (+ MaxUnavailable's cap): surge rounds up, unavailable down, never both 0. */
export function fenceposts(d: Deployment): { maxSurge: number; maxUnavailable: number } {
  const desired = d.spec.replicas ?? 1;
  if (!isRolling(d)) return { maxSurge: 0, maxUnavailable: 0 };
  const ru = d.spec.strategy?.rollingUpdate;
  const maxSurge = scaled(ru?.maxSurge, '25%', desired, true);
  let maxUnavailable = scaled(ru?.maxUnavailable, '25%', desired, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, desired) };
}

export function revisionOf(rs: ReplicaSet): number {
  return Number.parseInt(rs.metadata.annotations?.[REVISION] ?? '', 10) || 0;
}

function created(rs: ReplicaSet): number {
  return Date.parse(rs.metadata.creationTimestamp ?? '') || 0;
}

/** Oldest first (controller.ReplicaSetsByCreationTimestamp). */
function byAge(a: ReplicaSet, b: ReplicaSet): number {
  return created(a) - created(b) || (a.metadata.name < b.metadata.name ? -1 : 1);
}

/** The ReplicaSet a Deployment makes for its current template. */
export function newReplicaSet(d: Deployment, hash: string, replicas: number, annotations: Record<string, string>): ReplicaSet {
  const template = structuredClone(d.spec.template);
  template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, [POD_TEMPLATE_HASH]: hash } };
  const selector = structuredClone(d.spec.selector);
  selector.matchLabels = { ...selector.matchLabels, [POD_TEMPLATE_HASH]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...template.metadata.labels },
      annotations,
      ownerReferences: [ownerRefTo(d)],
    },
    spec: { replicas, minReadySeconds: d.spec.minReadySeconds ?? 0, selector, template },
    status: { replicas: 0 },
  };
}

export interface DeploymentInput {
  deployment: Deployment;
  /** ReplicaSets whose controller is this Deployment. */
  owned: ReplicaSet[];
  /** Pods by the uid of the ReplicaSet that controls them (Recreate waits for old ones to go). */
  podsByReplicaSet: Map<string, Pod[]>;
  /** Names of every ReplicaSet in the namespace (a new name must not clash). */
  takenNames: Set<string>;
  nowMs: number;
}

export function planDeployment(input: DeploymentInput): DeploymentPlan {
  const d = input.deployment;
  const desired = d.spec.replicas ?? 1;
  const paused = d.spec.paused === true;
  const { maxSurge, maxUnavailable } = fenceposts(d);
  const owned = [...input.owned].sort(byAge);
  let newRS = owned.find((rs) => templatesEqual(rs.spec.template, d.spec.template));
  const olds = owned.filter((rs) => rs !== newRS);
  const maxOldRevision = Math.max(0, ...olds.map(revisionOf));
  const revision = newRS && revisionOf(newRS) > maxOldRevision ? revisionOf(newRS) : maxOldRevision + 1;
  const newAnnotations = { [REVISION]: String(revision), [DESIRED_REPLICAS]: String(desired), [MAX_REPLICAS]: String(desired + maxSurge) };

  // Planned spec.replicas of every ReplicaSet, by name.
  const spec = new Map<string, number>(owned.map((rs) => [rs.metadata.name, rs.spec.replicas ?? 1]));
  const sum = (list: ReplicaSet[]): number => list.reduce((n, rs) => n + (spec.get(rs.metadata.name) ?? 0), 0);

  let create: ReplicaSet | undefined;
  let collisionCount = d.status?.collisionCount ?? 0;
  if (!newRS && !paused) {
    let hash = podTemplateHash(d.spec.template, collisionCount);
    // A name taken by a ReplicaSet with another template: hash again with the count (as k8s's collisionCount).
    while (input.takenNames.has(`${d.metadata.name}-${hash}`)) hash = podTemplateHash(d.spec.template, ++collisionCount);
    create = newReplicaSet(d, hash, 0, newAnnotations);
    newRS = create;
    spec.set(create.metadata.name, 0);
  }

  if (newRS && !paused) {
    const name = newRS.metadata.name;
    if (isRolling(d)) {
      // rolling.go reconcileNewReplicaSet: never above desired + maxSurge pods in total.
      const cur = spec.get(name) ?? 0;
      if (cur > desired) spec.set(name, desired);
      else if (cur < desired) {
        const room = desired + maxSurge - sum(owned.concat(create ? [create] : []));
        if (room > 0) spec.set(name, cur + Math.min(room, desired - cur));
      }
      scaleDownOld(olds, newRS, spec, desired - maxUnavailable, sum(olds.concat([newRS])));
    } else {
      // recreate.go: all old pods gone before any new one starts.
      const oldActive = olds.some((rs) => (spec.get(rs.metadata.name) ?? 0) > 0);
      for (const rs of olds) spec.set(rs.metadata.name, 0);
      const oldPodsLeft = olds.some((rs) => (input.podsByReplicaSet.get(rs.metadata.uid ?? '') ?? []).some((p) => !isFinished(p)));
      if (!oldActive && !oldPodsLeft) spec.set(name, desired);
    }
  }

  const updates: ReplicaSetUpdate[] = [];
  for (const rs of owned) {
    const replicas = spec.get(rs.metadata.name) ?? 0;
    const wantAnnotations = rs === newRS && !paused ? newAnnotations : undefined;
    const annotationsDiffer = wantAnnotations !== undefined && Object.entries(wantAnnotations).some(([k, v]) => rs.metadata.annotations?.[k] !== v);
    if (replicas !== (rs.spec.replicas ?? 1) || annotationsDiffer) updates.push({ name: rs.metadata.name, replicas, annotations: annotationsDiffer ? wantAnnotations : undefined });
  }
  if (create) create.spec.replicas = spec.get(create.metadata.name) ?? 0;

  // sync.go cleanupDeployment: keep revisionHistoryLimit old, empty ReplicaSets.
  const limit = d.spec.revisionHistoryLimit ?? 10;
  const empty = olds
    .filter((rs) => (spec.get(rs.metadata.name) ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0)
    .sort((a, b) => revisionOf(a) - revisionOf(b) || byAge(a, b));
  const deletes = empty.slice(0, Math.max(0, empty.length - limit)).map((rs) => rs.metadata.name);

  const all = owned.concat(create ? [create] : []);
  const status = deploymentStatus(d, all, newRS, sum(all), { maxUnavailable, created: create !== undefined, paused, nowMs: input.nowMs });
  if (collisionCount > 0) status.collisionCount = collisionCount;
  return { create, updates, deletes, revision: newRS ? String(revision) : undefined, status };
}

/**
 * rolling.go reconcileOldReplicaSets: scale old ReplicaSets down as far as
 * availability allows — first their unhealthy pods (cleanupUnhealthyReplicas),
 * then available ones down to desired - maxUnavailable.
 */
function scaleDownOld(olds: ReplicaSet[], newRS: ReplicaSet, spec: Map<string, number>, minAvailable: number, allPods: number): void {
  const get = (rs: ReplicaSet): number => spec.get(rs.metadata.name) ?? 0;
  if (olds.every((rs) => get(rs) === 0)) return;
  const newUnavailable = get(newRS) - (newRS.status?.availableReplicas ?? 0);
  const maxScaledDown = allPods - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return;
  let done = 0;
  for (const rs of olds) {
    if (done >= maxScaledDown) break;
    const unhealthy = get(rs) - (rs.status?.availableReplicas ?? 0);
    if (get(rs) === 0 || unhealthy <= 0) continue;
    const n = Math.min(unhealthy, maxScaledDown - done);
    spec.set(rs.metadata.name, get(rs) - n);
    done += n;
  }
  const available = olds.concat([newRS]).reduce((n, rs) => n + Math.min(rs.status?.availableReplicas ?? 0, get(rs)), 0);
  let toScaleDown = available - minAvailable;
  for (const rs of olds) {
    if (toScaleDown <= 0) break;
    const n = Math.min(get(rs), toScaleDown);
    spec.set(rs.metadata.name, get(rs) - n);
    toScaleDown -= n;
  }
}

function condition(old: DeploymentCondition[] | undefined, type: string, status: string, reason: string, message: string, now: string): DeploymentCondition {
  const prev = old?.find((c) => c.type === type);
  if (prev && prev.status === status && prev.reason === reason && prev.message === message) return prev;
  return {
    type,
    status,
    lastUpdateTime: now,
    lastTransitionTime: prev && prev.status === status ? (prev.lastTransitionTime ?? now) : now,
    reason,
    message,
  };
}

/** sync.go calculateStatus and the Available/Progressing conditions. */
export function deploymentStatus(
  d: Deployment,
  all: ReplicaSet[],
  newRS: ReplicaSet | undefined,
  totalSpec: number,
  o: { maxUnavailable: number; created: boolean; paused: boolean; nowMs: number },
): DeploymentStatus {
  const desired = d.spec.replicas ?? 1;
  const total = (f: (rs: ReplicaSet) => number | undefined): number => all.reduce((n, rs) => n + (f(rs) ?? 0), 0);
  const replicas = total((rs) => rs.status?.replicas);
  const updatedReplicas = newRS?.status?.replicas ?? 0;
  const readyReplicas = total((rs) => rs.status?.readyReplicas);
  const availableReplicas = total((rs) => rs.status?.availableReplicas);
  const now = timestamp(o.nowMs);
  const old = d.status?.conditions;
  const available =
    availableReplicas >= desired - o.maxUnavailable
      ? condition(old, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', now)
      : condition(old, 'Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.', now);
  const rsName = newRS?.metadata.name ?? '';
  // deploymentutil.DeploymentComplete.
  const complete = updatedReplicas === desired && replicas === desired && availableReplicas === desired;
  const progressing = o.paused
    ? condition(old, 'Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused', now)
    : complete && newRS
      ? condition(old, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`, now)
      : o.created
        ? condition(old, 'Progressing', 'True', 'NewReplicaSetCreated', `Created new replica set "${rsName}"`, now)
        : condition(old, 'Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`, now);
  return {
    observedGeneration: d.metadata.generation,
    replicas,
    updatedReplicas,
    readyReplicas,
    availableReplicas,
    unavailableReplicas: Math.max(0, totalSpec - availableReplicas),
    conditions: [available, progressing],
  };
}
