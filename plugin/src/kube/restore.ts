// Putting a Service back as it was before exchange or mesh took it over:
// the original selector first (so traffic reaches the original pods again
// before anything of ours goes away — ARCHITECTURE.md rule 1), then the router pod,
// the router's Secret and the origin Service, and the replicas of a
// workload that `exchange --mode scale` scaled to 0.
import { ANNOTATIONS, LABELS, MANAGED_BY, ORIGIN_SUFFIX } from '../../../contract/protocol.ts';
import { apiStatus, fromApiError, ktError } from '../errors.ts';
import type { KubeApi } from './api.ts';
import { waitPodGone } from './pods.ts';
import { deleteSecretIfUnchanged, readRouterSecret, routerNow } from './takeover-apply.ts';
import { secretName } from './takeover-plan.ts';

/**
 * How long a drained restore waits for the router pods to be gone before it
 * removes the origin Service anyway: the router's grace period (30 s,
 * plugin/src/kube/takeover-apply.ts) and a little more.
 */
const ROUTER_DRAIN_WAIT_MS = 35_000;

/** JSON Pointer escaping of one path segment (RFC 6901 §3). */
export function pointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * The JSON patch that puts the original selector back and drops our
 * annotation; and, when the takeover made the Service publish not-ready
 * addresses (`publishNotReady`: our annotation is there), puts "false" back.
 */
export function restorePatch(originalSelector: Record<string, string> | null, publishNotReady = false): object[] {
  return [
    { op: 'test', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalSelector)}`, value: originalSelector === null ? 'null' : JSON.stringify(originalSelector) },
    originalSelector === null ? { op: 'remove', path: '/spec/selector' } : { op: 'replace', path: '/spec/selector', value: originalSelector },
    { op: 'remove', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalSelector)}` },
    ...(publishNotReady ? [
      { op: 'add', path: '/spec/publishNotReadyAddresses', value: false },
      { op: 'remove', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalPublishNotReady)}` },
    ] : []),
  ];
}

/** Whether a taken-over Service's publishNotReadyAddresses is ours to put back (restorePatch). */
export function publishNotReadyIsOurs(svc: { metadata?: { annotations?: Record<string, string> } }): boolean {
  return svc.metadata?.annotations?.[ANNOTATIONS.originalPublishNotReady] !== undefined;
}

export interface RestoreResult {
  service: string;
  namespace: string;
  actions: string[];
}

function notFound(err: unknown): boolean {
  return apiStatus(err) === 404;
}

/**
 * Restores one Service. With dryRun, only says what it would do. A Service
 * that was never taken over is an error only when `strict` (recover); clean
 * passes over it.
 */
export async function restoreService(
  api: KubeApi,
  ref: { namespace: string; name: string },
  opts: { dryRun: boolean; strict: boolean; drain?: boolean; router?: string },
): Promise<RestoreResult> {
  const { core, apps } = api;
  const { namespace, name } = ref;
  const actions: string[] = [];
  let svc;
  try {
    svc = await core.readNamespacedService({ namespace, name });
  } catch (err) {
    if (notFound(err)) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name, namespace });
    throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name });
  }
  const raw = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
  if (raw !== undefined) {
    let original: Record<string, string> | null;
    try {
      original = JSON.parse(raw) as Record<string, string> | null;
    } catch {
      throw ktError('KT_ERR_BAD_STATE', { what: `annotation ${ANNOTATIONS.originalSelector} of service ${namespace}/${name}`, value: raw });
    }
    actions.push(`restore the selector of service ${namespace}/${name} to ${JSON.stringify(original)}`);
    if (!opts.dryRun) {
      try {
        await core.patchNamespacedService({ namespace, name, body: restorePatch(original, publishNotReadyIsOurs(svc)) }, api.jsonPatch());
      } catch (err) {
        throw fromApiError(err, { verb: 'patch', resource: 'services', namespace, name });
      }
    }
  } else if (opts.strict) {
    throw ktError('KT_ERR_NOT_TAKEN_OVER', { namespace, name });
  }

  // The router(s) for this Service, after the selector no longer points at them.
  const listed = await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY},${LABELS.role}=router,${LABELS.target}=${name}` })
    .catch((err: unknown) => {
      throw fromApiError(err, { verb: 'list', resource: 'pods', namespace });
    });
  // A session giving the Service back removes its own router only: another one listed is a newer takeover's.
  const routers = opts.router === undefined ? listed.items : listed.items.filter((p) => p.metadata?.name === opts.router);
  for (const p of routers) {
    const pod = p.metadata?.name ?? '';
    actions.push(`delete router pod ${namespace}/${pod}`);
    if (!opts.dryRun) {
      // drain: the pod's own grace period, in which the router drains (proxy-image/src/router/drain.ts).
      await core.deleteNamespacedPod({ namespace, name: pod, ...(opts.drain ? {} : { gracePeriodSeconds: 0 }) }).catch((err: unknown) => {
        if (!notFound(err)) throw fromApiError(err, { verb: 'delete', resource: 'pods', namespace, name: pod });
      });
    }
  }
  // The Secret first: a developer who comes now makes a new router rather
  // than joining the one that drains. Only the Secret of a router this
  // restore removes (or of one gone already): a developer who found that
  // router leaving may have made a new Secret meanwhile, and that takeover
  // is not this restore's to end — nor is the origin Service it shares.
  const removed = new Set([...routers.map((p) => p.metadata?.name ?? ''), ...(opts.router === undefined ? [] : [opts.router])]);
  const secretKept = await removeSecret(api, namespace, name, removed, opts.dryRun, actions);
  // The origin Service last: a draining router still sends what it gets there, so it goes once the routers are gone.
  const origin = `${name}${ORIGIN_SUFFIX}`;
  const originOurs = !secretKept && await core.readNamespacedService({ namespace, name: origin }).then((o) => o.metadata?.labels?.[LABELS.managedBy] === MANAGED_BY, (err: unknown) => {
    if (notFound(err)) return false;
    throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name: origin });
  });
  if (originOurs) {
    actions.push(`delete service ${namespace}/${origin}`);
    if (!opts.dryRun) {
      if (opts.drain) await Promise.all(routers.map((p) => waitPodGone(api, { namespace, name: p.metadata?.name ?? '' }, ROUTER_DRAIN_WAIT_MS)));
      // A Secret there now is a newer takeover's (made while the routers drained, or in place of the one read): the origin Service is its.
      const again = await readRouterSecret(api, namespace, name).catch(() => undefined) !== undefined;
      if (!again) {
        await core.deleteNamespacedService({ namespace, name: origin }).catch((err: unknown) => {
          if (!notFound(err)) throw fromApiError(err, { verb: 'delete', resource: 'services', namespace, name: origin });
        });
      }
    }
  }

  // Workloads scaled to 0 by `exchange --mode scale` carry their replicas.
  const deployments = await apps.listNamespacedDeployment({ namespace }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'deployments', namespace });
  });
  for (const d of deployments.items) {
    const replicas = d.metadata?.annotations?.[ANNOTATIONS.originalReplicas];
    const targetOf = d.metadata?.annotations?.[ANNOTATIONS.scaledFor];
    if (replicas === undefined || (targetOf !== undefined && targetOf !== name)) continue;
    const dn = d.metadata?.name ?? '';
    actions.push(`scale deployment ${namespace}/${dn} back to ${replicas}`);
    if (!opts.dryRun) {
      await apps.patchNamespacedDeployment({
        namespace,
        name: dn,
        body: { spec: { replicas: Number(replicas) }, metadata: { annotations: { [ANNOTATIONS.originalReplicas]: null, [ANNOTATIONS.scaledFor]: null } } },
      }, api.mergePatch()).catch((err: unknown) => {
        throw fromApiError(err, { verb: 'patch', resource: 'deployments', namespace, name: dn });
      });
    }
  }
  return { service: name, namespace, actions };
}

/**
 * Deletes the router Secret of a Service if it belongs to a router in
 * `removed` or to one that is gone (no pod, past the time a first developer
 * takes to make it): on the resourceVersion read, so a Secret replaced in
 * between stays. True when a Secret of ours stays: a takeover newer than the
 * routers removed.
 */
async function removeSecret(api: KubeApi, namespace: string, service: string, removed: Set<string>, dryRun: boolean, actions: string[]): Promise<boolean> {
  const secret = await readRouterSecret(api, namespace, service);
  if (secret?.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY) return false;
  const router = secret.metadata.annotations?.[ANNOTATIONS.routerPod];
  const createdAt = secret.metadata.creationTimestamp ? new Date(secret.metadata.creationTimestamp).getTime() : undefined;
  const stale = router === undefined || removed.has(router) || await routerNow(api, namespace, router, createdAt) === 'leaving';
  if (!stale) return true;
  actions.push(`delete secret ${namespace}/${secretName(service)}`);
  if (!dryRun) await deleteSecretIfUnchanged(api, namespace, secretName(service), secret.metadata.resourceVersion);
  return false;
}
