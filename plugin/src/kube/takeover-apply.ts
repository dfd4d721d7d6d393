// Applying a takeover's plan (kube/takeover-plan.ts) on the API server:
// resolving the target to its Services, the router's Secret (the lock of a
// takeover: whoever creates it sets the router up, everyone else joins), the
// origin Service, the guarded selector switch, and putting the selector back.
import type { V1Deployment, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../../../contract/protocol.ts';
import { apiStatus, fromApiError, ktError, type KtError } from '../errors.ts';
import type { WorkloadRef } from '../values.ts';
import { makeSessionKey } from '../tunnel/index.ts';
import type { KubeApi } from './api.ts';
import { publishNotReadyIsOurs, restorePatch } from './restore.ts';
import {
  heldByRouter, keysFromSecret, newOriginal, originalSelectorOf, routerSecret, routerSelector, sameLabels, secretName, selects, takeoverPatch, type RouterSecretKeys,
} from './takeover-plan.ts';

export interface Resolved {
  services: V1Service[];
  deployment?: V1Deployment;
}

/**
 * The Services a target stands for: svc/NAME (or a bare NAME) is that
 * Service; deploy/NAME is every Service whose (original) selector picks the
 * Deployment's pods.
 */
export async function resolveTarget(api: KubeApi, namespace: string, ref: WorkloadRef): Promise<Resolved> {
  const { core } = api;
  if (ref.kind !== 'deployment') {
    try {
      return { services: [await core.readNamespacedService({ namespace, name: ref.name })] };
    } catch (err) {
      if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name: ref.name, namespace });
      throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name: ref.name });
    }
  }
  const { apps } = api;
  let deployment: V1Deployment;
  try {
    deployment = await apps.readNamespacedDeployment({ namespace, name: ref.name });
  } catch (err) {
    if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'deployment', name: ref.name, namespace });
    throw fromApiError(err, { verb: 'get', resource: 'deployments', namespace, name: ref.name });
  }
  const list = await core.listNamespacedService({ namespace }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'services', namespace });
  });
  const labels = deployment.spec?.template.metadata?.labels;
  const services = list.items.filter((s) => s.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY && selects(originalSelectorOf(s), labels));
  if (services.length === 0) throw ktError('KT_ERR_NO_SERVICE_FOR_WORKLOAD', { name: ref.name, namespace });
  return { services, deployment };
}

/** The Deployment whose pods a selector picks (for --mode scale with svc/NAME). */
export async function deploymentFor(api: KubeApi, namespace: string, selector: Record<string, string> | null): Promise<V1Deployment | undefined> {
  const list = await api.apps.listNamespacedDeployment({ namespace }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'deployments', namespace });
  });
  return list.items.find((d) => selects(selector, d.spec?.template.metadata?.labels));
}

/** Pods a selector picks, running ones first. */
export async function podsFor(api: KubeApi, namespace: string, selector: Record<string, string> | null): Promise<V1Pod[]> {
  if (!selector || Object.keys(selector).length === 0) return [];
  const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const list = await api.core.listNamespacedPod({ namespace, labelSelector }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'pods', namespace });
  });
  return list.items
    .filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY)
    .sort((a, b) => Number(b.status?.phase === 'Running') - Number(a.status?.phase === 'Running'));
}

export interface KeysResult {
  created: boolean;
  keys: RouterSecretKeys;
  /** The router pod the Secret belongs to. */
  routerPod: string;
  /** The Secret's resourceVersion (a stale one is deleted on that precondition). */
  resourceVersion?: string;
  /** When the Secret was made (ms since the epoch), for a joiner that finds no router pod yet. */
  createdAt?: number;
}

/**
 * The first developer makes the Secret, then the origin Service, then the
 * router pod: a joiner that reads the Secret in between finds no pod yet.
 * Within this long of the Secret's creation a missing pod is one being made
 * (the joiner waits for it); after it, a Secret whose pod is missing was
 * left behind by a router that went (and is replaced).
 */
export const ROUTER_CREATE_GRACE_MS = 30_000;

/**
 * A router pod as it is now; 'leaving' when it is being deleted or gone (a
 * Secret naming it is stale); undefined when it is not there yet because
 * its Secret is younger than ROUTER_CREATE_GRACE_MS (the first developer is
 * still making it). The age is read against this machine's clock: a skewed
 * clock only moves where "being made" ends.
 */
export async function routerNow(api: KubeApi, namespace: string, name: string, secretCreatedAt?: number, now = Date.now()): Promise<V1Pod | 'leaving' | undefined> {
  try {
    const pod = await api.core.readNamespacedPod({ namespace, name });
    return pod.metadata?.deletionTimestamp ? 'leaving' : pod;
  } catch (err) {
    if (apiStatus(err) === 404) return secretCreatedAt !== undefined && now - secretCreatedAt < ROUTER_CREATE_GRACE_MS ? undefined : 'leaving';
    throw fromApiError(err, { verb: 'get', resource: 'pods', namespace, name });
  }
}

/** Deletes a Secret only if it is still the version read (409 or 404: someone else did already). */
export async function deleteSecretIfUnchanged(api: KubeApi, namespace: string, name: string, resourceVersion: string | undefined): Promise<void> {
  await api.core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { resourceVersion } } }).catch((err: unknown) => {
    if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw fromApiError(err, { verb: 'delete', resource: 'secrets', namespace, name });
  });
}

/** The router Secret of a Service, or undefined when there is none. */
export async function readRouterSecret(api: KubeApi, namespace: string, service: string): Promise<V1Secret | undefined> {
  const name = secretName(service);
  try {
    return await api.core.readNamespacedSecret({ namespace, name });
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw fromApiError(err, { verb: 'get', resource: 'secrets', namespace, name });
  }
}

/** What a router Secret that is there says, to a developer who joins. */
export function joinedSecret(namespace: string, s: V1Secret): KeysResult {
  const keys = keysFromSecret(s);
  const routerPod = s.metadata?.annotations?.[ANNOTATIONS.routerPod];
  if (!keys || !routerPod) throw ktError('KT_ERR_BAD_STATE', { what: `secret ${namespace}/${s.metadata?.name ?? ''}`, value: Object.keys(s.data ?? {}).join(',') });
  const createdAt = s.metadata?.creationTimestamp ? new Date(s.metadata.creationTimestamp).getTime() : undefined;
  return { created: false, keys, routerPod, ...(s.metadata?.resourceVersion ? { resourceVersion: s.metadata.resourceVersion } : {}), ...(createdAt !== undefined && Number.isFinite(createdAt) ? { createdAt } : {}) };
}

/**
 * Creates the router Secret with fresh keys, or reads the one there is. The
 * Secret is the lock of a takeover: whoever creates it sets the router up;
 * everyone else joins. `firstRead`: the read to start from, when it was
 * asked already (readRouterSecret).
 */
export async function ensureRouterSecret(api: KubeApi, namespace: string, service: string, newRouterPod: string, firstRead?: Promise<V1Secret | undefined>): Promise<KeysResult> {
  const { core } = api;
  const name = secretName(service);
  const read = (): Promise<V1Secret | undefined> => readRouterSecret(api, namespace, service);
  const joined = (s: V1Secret): KeysResult => joinedSecret(namespace, s);
  const existing = await (firstRead ?? read());
  if (existing) return joined(existing);
  const keys = { client: makeSessionKey('kubectl-kt router client'), host: makeSessionKey('kubectl-kt router host') };
  try {
    await core.createNamespacedSecret({ namespace, body: routerSecret(service, namespace, keys, newRouterPod) });
    return { created: true, keys, routerPod: newRouterPod };
  } catch (err) {
    if (apiStatus(err) !== 409) throw fromApiError(err, { verb: 'create', resource: 'secrets', namespace, name });
    const raced = await read();
    if (!raced) throw fromApiError(err, { verb: 'create', resource: 'secrets', namespace, name });
    return joined(raced);
  }
}

/** Creates (or, when a leftover is there, updates) the origin Service; returns its ClusterIP. */
export async function ensureOriginService(api: KubeApi, body: V1Service): Promise<string> {
  const { core } = api;
  const namespace = body.metadata?.namespace ?? '';
  const name = body.metadata?.name ?? '';
  let svc: V1Service;
  try {
    svc = await core.createNamespacedService({ namespace, body });
  } catch (err) {
    if (apiStatus(err) !== 409) throw fromApiError(err, { verb: 'create', resource: 'services', namespace, name });
    svc = await core.patchNamespacedService(
      { namespace, name, body: { spec: { selector: body.spec?.selector, ports: body.spec?.ports } } },
      api.mergePatch(),
    ).catch((e: unknown) => {
      throw fromApiError(e, { verb: 'patch', resource: 'services', namespace, name });
    });
  }
  const ip = svc.spec?.clusterIP;
  return ip && ip !== 'None' ? ip : `${name}.${namespace}.svc`;
}

/**
 * Points the Service at the router (idempotent): if the selector already is
 * the router's, nothing happens. A concurrent change makes the `test` fail;
 * then it reads again and decides again. Returns the selector now kept as
 * the original (undefined when there was nothing to do). `known`: the
 * Service as read a moment ago; when it does not select the router yet, the
 * first patch is tried on it without reading again (its resourceVersion is
 * in the patch's `test`, so a stale one only costs that read after all).
 * "Already the router's" is never taken from it: that is read afresh.
 */
export async function switchSelector(api: KubeApi, namespace: string, service: string, known?: V1Service): Promise<Record<string, string> | null | undefined> {
  const { core } = api;
  let unselected = false;
  let given = known && !sameLabels(known.spec?.selector ?? null, routerSelector(service)) && known.metadata?.resourceVersion ? known : undefined;
  for (let attempt = 0; ; attempt++) {
    const svc = given ?? await core.readNamespacedService({ namespace, name: service }).catch((err: unknown) => {
      if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name: service, namespace });
      throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name: service });
    });
    given = undefined;
    const current = svc.spec?.selector ?? null;
    const hasSaved = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector] !== undefined;
    if (heldByRouter(svc, service) && hasSaved) return undefined;
    if (!unselected) {
      await unselectLeavingRouters(api, namespace, service);
      unselected = true;
    }
    const original = newOriginal(current, hasSaved ? originalSelectorOf(svc) : undefined, service);
    const patch = takeoverPatch({
      resourceVersion: svc.metadata?.resourceVersion ?? '',
      hasAnnotations: svc.metadata?.annotations !== undefined,
      original,
      publishNotReady: svc.spec?.publishNotReadyAddresses,
      savedPublishNotReady: publishNotReadyIsOurs(svc),
    }, service);
    try {
      await core.patchNamespacedService({ namespace, name: service, body: patch }, api.jsonPatch());
      return original;
    } catch (err) {
      // 409/422: the test failed (changed meanwhile); read again.
      const c = apiStatus(err);
      if ((c === 409 || c === 422) && attempt < 5) continue;
      throw fromApiError(err, { verb: 'patch', resource: 'services', namespace, name: service });
    }
  }
}

/**
 * Router pods of the Service that are being deleted no longer match the
 * router selector: their target label goes. A held Service publishes
 * not-ready addresses, so a deleted router the selector still matched would
 * stay its ready endpoint while it drains — new connections keep coming, so
 * it never sees the quiet period its drain waits for, and once it exits its
 * address is refused until the pod object is gone (the soak in make bench
 * lost 119 of 1.28 million requests so). A new router that takes the
 * Service over must be its only router.
 */
export async function unselectLeavingRouters(api: KubeApi, namespace: string, service: string): Promise<void> {
  const sel = routerSelector(service);
  const list = await api.core.listNamespacedPod({ namespace, labelSelector: Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',') }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'pods', namespace });
  });
  await Promise.all(list.items.filter((p) => p.metadata?.deletionTimestamp).map((p) => api.core.patchNamespacedPod(
    { namespace, name: p.metadata?.name ?? '', body: { metadata: { labels: { [LABELS.target]: null } } } },
    api.mergePatch(),
  ).catch((err: unknown) => {
    // Gone meanwhile: nothing left to unselect.
    if (apiStatus(err) !== 404) throw fromApiError(err, { verb: 'patch', resource: 'pods', namespace, name: p.metadata?.name });
  })));
}

/** Puts the original selector back (only the selector; restoreService does the rest). Quiet when someone did already. */
export async function restoreSelectorOnly(api: KubeApi, namespace: string, service: string): Promise<boolean> {
  const { core } = api;
  const svc = await core.readNamespacedService({ namespace, name: service });
  if (svc.metadata?.annotations?.[ANNOTATIONS.originalSelector] === undefined) return false;
  try {
    await core.patchNamespacedService({ namespace, name: service, body: restorePatch(originalSelectorOf(svc), publishNotReadyIsOurs(svc)) }, api.jsonPatch());
    return true;
  } catch (err) {
    if (apiStatus(err) === 409 || apiStatus(err) === 422) return false;
    throw err;
  }
}

/** A JSON-patch failure that just means "someone else got there first". */
export function isRace(err: unknown): boolean {
  const c = apiStatus(err);
  return c === 409 || c === 422 || c === 404 || (err as KtError | undefined)?.code === 'KT_ERR_API_CONFLICT';
}
