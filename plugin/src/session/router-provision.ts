// Provisioning a Service's shared router: claim it (the router's Secret is
// the lock: whoever creates it sets the router up, everyone after joins),
// make it (the origin Service, then the router pod), and wait until it is
// Ready. Pointing the Service at it is the caller's next step, only after
// this (ARCHITECTURE.md rule 1).
import type { V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import type { KubeApi } from '../kube/api.ts';
import { createPod, podReady, podRunning, waitForPod } from '../kube/pods.ts';
import { routerOwnPorts, routerPod } from '../kube/router-pod.ts';
import { newSessionId } from '../kube/shadow.ts';
import { deleteSecretIfUnchanged, ensureOriginService, ensureRouterSecret, joinedSecret, podsFor, readRouterSecret, routerNow, type KeysResult } from '../kube/takeover-apply.ts';
import { originName, originService, planPorts, routerName, secretName, type PortPlan } from '../kube/takeover-plan.ts';
import type { Progress, ProxySession } from './proxy-session.ts';

export interface RouterContext {
  api: KubeApi;
  namespace: string;
  /** The Service taken over. */
  service: string;
  image: string;
  progress: Progress;
  signal: AbortSignal;
  /** A new router's count window in seconds. */
  countWindowSeconds?: number;
}

/**
 * The two reads a claim starts with, asked early (beside the Service's own
 * read, before the --expose check): the router's Secret, and the router pod
 * it names. Reads only: nothing is claimed until claimRouter.
 */
export interface RouterPeek {
  secret: Promise<V1Secret | undefined>;
  pod: Promise<V1Pod | 'leaving' | undefined>;
}

export function peekRouter(api: KubeApi, namespace: string, service: string): RouterPeek {
  const secret = readRouterSecret(api, namespace, service);
  const pod = secret.then((s) => {
    if (!s) return undefined;
    const k = joinedSecret(namespace, s);
    return routerNow(api, namespace, k.routerPod, k.createdAt);
  });
  // Whatever fails here fails again, in its place, when claimRouter uses it (or never matters).
  secret.catch(() => undefined);
  pod.catch(() => undefined);
  return { secret, pod };
}

export interface Claim {
  secret: KeysResult;
  /** The router pod as read when joining (undefined: made by us, or not there yet). */
  current: V1Pod | undefined;
}

/**
 * Reads the router's Secret, or creates it (then this session makes the
 * router). A Secret naming a router that is gone or being deleted (its
 * sessions ended with KT_ERR_ROUTER_GONE and none was left to remove the
 * Secret) is replaced, guarded by its resourceVersion, so of several
 * developers doing this at once one does.
 */
export async function claimRouter(c: RouterContext, peek?: RouterPeek): Promise<Claim> {
  const { api, namespace, service, progress } = c;
  const done = progress.step(`reading the router keys of service ${namespace}/${service}`);
  let secret = await ensureRouterSecret(api, namespace, service, routerName(service, newSessionId()), peek?.secret);
  // The peeked pod read is of this Secret only if the Secret is the one peeked (not one a race made meanwhile).
  const peeked = peek && !secret.created ? await peek.secret : undefined;
  const podRead = peek && peeked && peeked.metadata?.resourceVersion === secret.resourceVersion ? peek.pod : undefined;
  // Joining a running router: one read usually says it is ready (cheaper than opening a watch).
  let current = secret.created ? undefined : await (podRead ?? routerNow(api, namespace, secret.routerPod, secret.createdAt));
  if (current === 'leaving') {
    progress.note(`router ${namespace}/${secret.routerPod} is being deleted; making a new one`);
    await deleteSecretIfUnchanged(api, namespace, secretName(service), secret.resourceVersion);
    secret = await ensureRouterSecret(api, namespace, service, routerName(service, newSessionId()));
    current = secret.created ? undefined : await routerNow(api, namespace, secret.routerPod, secret.createdAt);
  }
  done(secret.created ? 'new router' : 'router exists, joining');
  return { secret, current: current === 'leaving' ? undefined : current };
}

/**
 * Makes the router of a claimed Secret: plans its ports from the Service's
 * and its pods', creates the origin Service (the original selector) and the
 * router pod, labelled with the session that made it.
 */
export async function createRouter(c: RouterContext, svc: V1Service, original: Record<string, string> | null, secret: KeysResult, session: ProxySession): Promise<PortPlan> {
  const { api, namespace, service, progress } = c;
  const ports = (svc.spec?.ports ?? []).map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort as number | string | undefined, protocol: p.protocol }));
  // The origin Service needs the Service's ports only, the router's ports also its pods': both asked at once.
  let done = progress.step(`creating origin service ${namespace}/${originName(service)}`);
  const [pods, originHost] = await Promise.all([
    podsFor(api, namespace, original),
    ensureOriginService(api, originService({ name: service, namespace, ports, selector: original ?? {} })),
  ]);
  done(originHost);
  const podPorts = pods.flatMap((p) => p.spec?.containers.flatMap((x) => x.ports ?? []) ?? []);
  const plan = planPorts(service, ports, podPorts);
  if (plan.skipped.length) progress.note(`ports ${plan.skipped.join(', ')} are not TCP: the router does not serve them while the service is taken over`);
  done = progress.step(`creating router pod ${namespace}/${secret.routerPod}`);
  await createPod(api, routerPod({
    name: secret.routerPod,
    namespace,
    image: c.image,
    session: session.id,
    owner: session.owner,
    since: session.since,
    authorizedKey: secret.keys.client.publicKey,
    hostKey: secret.keys.host.privateKey,
    service,
    routerPorts: plan.routerPorts,
    containerPorts: plan.containerPorts,
    originHost,
    own: routerOwnPorts(plan.routerPorts),
    ...(c.countWindowSeconds ? { countWindowSeconds: c.countWindowSeconds } : {}),
  }));
  done();
  return plan;
}

/**
 * The router pod once Ready: the pod read when joining if it was, else by
 * watching. `onRunning` gets the pod the first time the watch sees its
 * container running (the tunnel need not wait for the readiness probe).
 * `served`: the Service is switched to this router, so it was Ready once;
 * its router container in crash-loop back-off (killed, as by the OOM
 * killer, while its standby serves) is waited through, not a failure.
 */
export async function routerReady(c: RouterContext, claim: Claim, onRunning?: (pod: V1Pod) => void, served = false): Promise<V1Pod> {
  const { api, namespace, progress } = c;
  const name = claim.secret.routerPod;
  const done = progress.step(claim.secret.created ? 'waiting for the router to be ready' : `router ${namespace}/${name} ready`);
  let running = false;
  const pod = claim.current && podReady(claim.current) ? claim.current : await waitForPod(api, { namespace, name }, podReady, {
    timeoutMs: 120_000,
    signal: c.signal,
    what: `router ${namespace}/${name} to be ready`,
    restarting: served,
    onPod: (p) => {
      if (running || !podRunning(p)) return;
      running = true;
      onRunning?.(p);
    },
  });
  done();
  return pod;
}
