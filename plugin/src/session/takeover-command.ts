// The command `exchange` and `mesh` share: resolve the target to its Services,
// check every --expose against their ports before anything is created, take
// each Service over (or join its router), register the routes, and hold them
// until Ctrl-C; then give everything back. `exchange --mode scale` also
// scales the workload to 0 while it runs, and back (waiting for a ready pod)
// before the route goes, so traffic never falls back onto nothing.
import { writeFile } from 'node:fs/promises';
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, COUNT_WINDOW_ENV, DEFAULT_MESH_HEADER, describeMatch, type HeaderMatch as WireHeader } from '../../../contract/protocol.ts';
import type { Deps } from '../deps.ts';
import { fromApiError, ktError, toKtError, type KtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { containerEnv, envFileText, envSources } from '../kube/env-file.ts';
import { newSessionId } from '../kube/shadow.ts';
import { deploymentFor, podsFor, resolveTarget, type Resolved } from '../kube/takeover-apply.ts';
import { originalSelectorOf, type ContainerPortLike, type ServicePortLike } from '../kube/takeover-plan.ts';
import { watchByName } from '../kube/watch.ts';
import { describePorts, exposeNote, hasNamedTargetPort, routeForExpose } from '../kube/expose.ts';
import { parsePositiveSeconds, type BaggageMember, type HeaderMatch, type PortMapping, type WorkloadRef } from '../values.ts';
import { progressPrinter } from './progress.ts';
import type { Progress } from './proxy-session.ts';
import { peekRouter } from './router-provision.ts';
import { ServiceTakeover, type RouteSpec } from './takeover-session.ts';

export interface TakeoverRunOptions {
  kind: 'exchange' | 'mesh';
  target: WorkloadRef;
  expose: readonly PortMapping[];
  image: string;
  mode?: 'selector' | 'scale';
  envFile?: string;
  headers?: readonly HeaderMatch[];
  baggage?: readonly BaggageMember[];
}

export interface TakeoverResult {
  kind: 'exchange' | 'mesh';
  namespace: string;
  session: string;
  owner: string;
  mode?: 'selector' | 'scale';
  headers?: WireHeader[];
  services: { service: string; router: string; reusedRouter: boolean; routes: { servicePort: number; local: number }[] }[];
  /** Milliseconds from the start of the command until every route was registered. */
  routedMs: number;
  scaled?: { deployment: string; replicas: number };
  envFile?: { path: string; variables: number };
}

export function toWire(headers: readonly HeaderMatch[], baggage: readonly BaggageMember[] = []): WireHeader[] {
  return [
    ...headers.map((h) => (h.kind === 'exact' ? { name: h.name, value: h.value } : { name: h.name, regex: h.pattern })),
    ...baggage.map((b) => ({ baggage: b.key, value: b.value })),
  ];
}

/** How a mesh's rules read in its messages: `x-kt-version: alice`, `x-user ~ /^a/`, `baggage kt=alice`. */
export function describeRule(h: WireHeader): string {
  if ('baggage' in h) return describeMatch(h);
  return 'value' in h ? `${h.name}: ${h.value}` : `${h.name} ~ /${h.regex}/`;
}

/** The value a mesh without --header uses: short, random, safe in a header and a shell. */
export function generatedHeader(user: string, random: () => number = Math.random): { name: string; value: string } {
  const who = user.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12) || 'dev';
  return { name: DEFAULT_MESH_HEADER, value: `${who}-${newSessionId(random).slice(0, 5)}` };
}

async function scaleTo(api: KubeApi, namespace: string, name: string, body: object): Promise<void> {
  await api.apps.patchNamespacedDeployment({ namespace, name, body }, api.mergePatch())
    .catch((err: unknown) => {
      throw fromApiError(err, { verb: 'patch', resource: 'deployments', namespace, name });
    });
}

/** Waits (by watching) until the Deployment has a ready pod again. */
async function waitReadyReplicas(api: KubeApi, namespace: string, name: string, want: number, timeoutMs: number): Promise<boolean> {
  let stop: (() => void) | undefined;
  let done = false;
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    void watchByName({
      api,
      path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
      name,
      onEvent: (_type, obj) => {
        if ((((obj as V1Deployment).status?.readyReplicas) ?? 0) >= want) {
          clearTimeout(timer);
          resolve(true);
        }
      },
      stopped: () => done,
      debug: () => undefined,
    }).then((s) => {
      stop = s;
    });
  });
  done = true;
  stop?.();
  return ok;
}

function servicePortsOf(svc: V1Service): ServicePortLike[] {
  return (svc.spec?.ports ?? []).map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort as number | string | undefined, protocol: p.protocol }));
}

/** The container ports of the Service's pods: a running pod's, else the Deployment's pod template. */
async function templatePorts(api: KubeApi, namespace: string, svc: V1Service, deployment: V1Deployment | undefined): Promise<ContainerPortLike[]> {
  const selector = originalSelectorOf(svc);
  const pod = (await podsFor(api, namespace, selector))[0];
  const spec = pod?.spec ?? (deployment ?? await deploymentFor(api, namespace, selector))?.spec?.template.spec;
  return spec?.containers.flatMap((c) => c.ports ?? []) ?? [];
}

interface ServicePlan {
  svc: V1Service;
  name: string;
  routes: { servicePort: number; local: number }[];
  podPorts: ContainerPortLike[];
}

/**
 * Every --expose must name a port of some Service (or the pods' port of
 * exactly one); all are checked before anything is created. Returns the
 * Services that get a route, with their routes.
 */
async function planRoutes(api: KubeApi, namespace: string, resolved: Resolved, expose: readonly PortMapping[], progress: Progress): Promise<ServicePlan[]> {
  const plans: ServicePlan[] = [];
  const found = new Set<PortMapping>();
  for (const svc of resolved.services) {
    const name = svc.metadata?.name ?? '';
    const ports = servicePortsOf(svc);
    const direct = (m: PortMapping): boolean => ports.some((p) => p.port === m.remote && (p.protocol ?? 'TCP') === 'TCP');
    // The pods' ports are read only when a named targetPort could be what a REMOTE means.
    const podPorts = hasNamedTargetPort(ports) && expose.some((m) => !direct(m)) ? await templatePorts(api, namespace, svc, resolved.deployment) : [];
    const routes: { servicePort: number; local: number }[] = [];
    for (const m of expose) {
      const r = routeForExpose(name, ports, podPorts, m);
      if (!r) continue;
      found.add(m);
      if (r.viaTargetPort !== undefined) progress.note(exposeNote(name, m, r));
      routes.push({ servicePort: r.servicePort, local: r.local });
    }
    plans.push({ svc, name, routes, podPorts });
  }
  for (const m of expose) {
    if (!found.has(m)) {
      const first = plans[0];
      throw ktError('KT_ERR_NO_SUCH_PORT', { service: first.name, port: m.remote, ports: describePorts(servicePortsOf(first.svc), first.podPorts) });
    }
  }
  return plans.filter((p) => p.routes.length > 0);
}

/** --env-out: the environment of a running pod of the Service, as a file. */
async function writeEnvFile(api: KubeApi, namespace: string, plan: ServicePlan, path: string, progress: Progress): Promise<NonNullable<TakeoverResult['envFile']>> {
  const pod = (await podsFor(api, namespace, originalSelectorOf(plan.svc)))[0];
  if (!pod) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: `running pod of service`, name: plan.name, namespace });
  const { env, notes } = await containerEnv(pod, undefined, await envSources(api, namespace));
  await writeFile(path, envFileText(env), { mode: 0o600 });
  for (const n of notes) progress.note(`--env-out: ${n}`);
  progress.note(`wrote ${env.size} variables of pod ${namespace}/${pod.metadata?.name} to ${path}`);
  return { path, variables: env.size };
}

/** --mode scale: the Deployment behind the Service to 0, its replicas kept in an annotation (undefined: nothing scaled). */
async function scaleDown(api: KubeApi, namespace: string, resolved: Resolved, plan: ServicePlan, progress: Progress): Promise<TakeoverResult['scaled']> {
  const d = resolved.deployment ?? await deploymentFor(api, namespace, originalSelectorOf(plan.svc));
  if (!d) {
    progress.note(`--mode scale: no Deployment runs the pods of service ${plan.name}; nothing scaled`);
    return undefined;
  }
  if (d.metadata?.annotations?.[ANNOTATIONS.originalReplicas] !== undefined) {
    progress.note(`deployment ${namespace}/${d.metadata?.name} is already scaled down by kubectl-kt; leaving it`);
    return undefined;
  }
  const replicas = d.spec?.replicas ?? 1;
  const dn = d.metadata?.name ?? '';
  const done = progress.step(`scaling deployment ${namespace}/${dn} to 0 (was ${replicas})`);
  await scaleTo(api, namespace, dn, { metadata: { annotations: { [ANNOTATIONS.originalReplicas]: String(replicas), [ANNOTATIONS.scaledFor]: plan.name } }, spec: { replicas: 0 } });
  done();
  return { deployment: dn, replicas };
}

/** Back to its replicas, waiting for a ready pod before the route goes, so traffic never falls back onto nothing. */
async function scaleBack(api: KubeApi, namespace: string, scaled: NonNullable<TakeoverResult['scaled']>, progress: Progress): Promise<void> {
  const done = progress.step(`scaling deployment ${namespace}/${scaled.deployment} back to ${scaled.replicas}`);
  try {
    await scaleTo(api, namespace, scaled.deployment, { metadata: { annotations: { [ANNOTATIONS.originalReplicas]: null, [ANNOTATIONS.scaledFor]: null } }, spec: { replicas: scaled.replicas } });
    const ready = scaled.replicas === 0 || await waitReadyReplicas(api, namespace, scaled.deployment, 1, 60_000);
    done(ready ? undefined : 'no pod ready after 60 s; giving the route up anyway');
  } catch (err) {
    progress.note(`cannot scale ${namespace}/${scaled.deployment} back: ${toKtError(err).message}; \`kubectl kt recover\` does`);
  }
}

/** The lines that say it is routed (and how to try a mesh). */
function sayRouted(o: TakeoverRunOptions, deps: Deps, namespace: string, active: ServicePlan[], takeovers: ServiceTakeover[], meshHeaders: WireHeader[] | undefined, routedMs: number): void {
  const what = takeovers.map((t, i) => active[i].routes.map((r) => `${t.name}:${r.servicePort} -> localhost:${r.local}`).join(', ')).join(', ');
  const verb = o.kind === 'exchange' ? 'exchanging' : 'meshing';
  const hdr = meshHeaders ? ` for requests with ${meshHeaders.map(describeRule).join(' and ')}` : '';
  deps.err.write(`${verb}: ${what}${hdr} (routed in ${(routedMs / 1000).toFixed(2)} s${takeovers.every((t) => t.reused) ? ', router reused' : ''}); Ctrl-C to stop\n`);
  const given = (o.headers?.length ?? 0) + (o.baggage?.length ?? 0) > 0;
  if (o.kind === 'mesh' && !given && meshHeaders) {
    const h = meshHeaders[0] as { name: string; value: string };
    const r = active[0].routes[0];
    deps.err.write(`try: curl -H '${h.name}: ${h.value}' http://${active[0].name}.${namespace}.svc:${r.servicePort}/\n`);
  }
  if (takeovers.some((t) => !t.reused)) {
    // The node's service proxy keeps an established connection on the pod
    // it chose (conntrack): only connections opened from now on pass the router.
    deps.err.write('note: connections opened before this (gRPC channels, HTTP keep-alive pools, WebSockets) stay on the original pods until the client reconnects\n');
  }
}

/** Until Ctrl-C, or until a takeover cannot go on (its error). */
async function held(signal: AbortSignal, takeovers: ServiceTakeover[]): Promise<KtError | undefined> {
  let ended: KtError | undefined;
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    for (const t of takeovers) {
      t.failed.catch((e: unknown) => {
        ended = toKtError(e);
        resolve();
      });
    }
  });
  return ended;
}

export async function runTakeover(o: TakeoverRunOptions, deps: Deps): Promise<TakeoverResult> {
  const t0 = deps.clock.now();
  const { namespace } = await deps.kube();
  const api = await deps.api();
  const progress = progressPrinter(deps.err, deps.clock.now);
  // A named Service: its router's Secret and pod are read while the Service is (a joiner's claim then waits for nothing).
  const peek = o.target.kind !== 'deployment' ? peekRouter(api, namespace, o.target.name) : undefined;
  const resolved = await resolveTarget(api, namespace, o.target);
  const active = await planRoutes(api, namespace, resolved, o.expose, progress);
  const envFile = o.envFile ? await writeEnvFile(api, namespace, active[0], o.envFile, progress) : undefined;

  const given = toWire(o.headers ?? [], o.baggage ?? []);
  const windowRaw = (deps.env as Record<string, string | undefined>)[COUNT_WINDOW_ENV];
  const countWindowSeconds = windowRaw ? parsePositiveSeconds(windowRaw, COUNT_WINDOW_ENV) : undefined;
  const takeovers: ServiceTakeover[] = [];
  let scaled: TakeoverResult['scaled'];
  let meshHeaders: WireHeader[] | undefined = o.kind === 'mesh' && given.length > 0 ? given : undefined;
  try {
    for (const p of active) {
      const t = new ServiceTakeover({
        api, namespace, service: p.svc, image: o.image, kind: o.kind, progress, debug: deps.debug, signal: deps.signal,
        ...(countWindowSeconds ? { countWindowSeconds } : {}),
        ...(peek && p.name === o.target.name ? { peek } : {}),
      });
      takeovers.push(t);
      // The routes are known (and announced) once the session is, and go on
      // the router as soon as the tunnel is up, before the Service points at it.
      let specs: RouteSpec[] | undefined;
      const planned = (): RouteSpec[] => {
        if (o.kind === 'mesh' && !meshHeaders) meshHeaders = [generatedHeader(t.session.owner.split('@')[0])];
        if (meshHeaders) t.rulesText = meshHeaders.map(describeRule).join(' and ');
        return (specs ??= p.routes.map((r) => ({ ...r, ...(meshHeaders ? { headers: meshHeaders } : {}) })));
      };
      await t.start(async () => {
        const done = progress.step(`registering ${o.kind} route${p.routes.length > 1 ? 's' : ''} on ${namespace}/${t.router}`);
        await t.addRoutes(specs ?? planned());
        done();
      }, planned);
    }
    if (o.mode === 'scale') scaled = await scaleDown(api, namespace, resolved, active[0], progress);
    const routedMs = deps.clock.now() - t0;
    sayRouted(o, deps, namespace, active, takeovers, meshHeaders, routedMs);
    const ended = await held(deps.signal, takeovers);
    if (ended) throw ended;
    return {
      kind: o.kind,
      namespace,
      session: takeovers[0].id,
      owner: takeovers[0].session.owner,
      ...(o.kind === 'exchange' ? { mode: o.mode ?? 'selector' } : {}),
      ...(meshHeaders ? { headers: meshHeaders } : {}),
      services: takeovers.map((t, i) => ({ service: t.name, router: t.router, reusedRouter: t.reused, routes: active[i].routes })),
      routedMs,
      ...(scaled ? { scaled } : {}),
      ...(envFile ? { envFile } : {}),
    };
  } finally {
    if (scaled) await scaleBack(api, namespace, scaled, progress);
    for (const t of takeovers.reverse()) await t.close();
  }
}

/** The text form of a finished exchange or mesh. */
export function takeoverText(r: TakeoverResult): string {
  const lines = r.services.map((s) => `${r.kind} of ${r.namespace}/${s.service} ended`);
  return lines.join('\n');
}
