// What `exchange` and `mesh` share: resolve the target to its Services,
// check every --expose against their ports before anything is created, take
// each Service over (or join its router), register the routes, and hold them
// until Ctrl-C; then give everything back. `exchange --mode scale` also
// scales the workload to 0 while it runs, and back (waiting for a ready pod)
// before the route goes, so traffic never falls back onto nothing.
import { writeFile } from 'node:fs/promises';
import type { KubeConfig, V1Deployment, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, COUNT_WINDOW_ENV, DEFAULT_MESH_HEADER, describeMatch, type HeaderMatch as WireHeader } from '../../../contract/protocol.ts';
import type { Deps } from '../deps.ts';
import { fromApiError, ktError, toKtError, type KtError } from '../errors.ts';
import { clientConfig } from '../kube/config.ts';
import { newSessionId } from '../kube/shadow.ts';
import {
  containerEnv, deploymentFor, envFileText, envSources, originalSelectorOf, podsFor, resolveTarget, type ContainerPortLike, type ServicePortLike,
} from '../kube/takeover.ts';
import { describePorts, exposeNote, hasNamedTargetPort, routeForExpose } from '../kube/expose.ts';
import { parsePositiveSeconds, type BaggageMember, type HeaderMatch, type PortMapping, type WorkloadRef } from '../values.ts';
import { progressPrinter } from './progress.ts';
import { ServiceTakeover, watchByName } from './takeover-session.ts';

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

async function scaleTo(kc: KubeConfig, namespace: string, name: string, body: object): Promise<void> {
  const { AppsV1Api, setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  await kc.makeApiClient(AppsV1Api).patchNamespacedDeployment({ namespace, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
    .catch((err: unknown) => {
      throw fromApiError(err, { verb: 'patch', resource: 'deployments', namespace, name });
    });
}

/** Waits (by watching) until the Deployment has a ready pod again. */
async function waitReadyReplicas(kc: KubeConfig, namespace: string, name: string, want: number, timeoutMs: number): Promise<boolean> {
  let stop: (() => void) | undefined;
  let done = false;
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    void watchByName(kc, `/apis/apps/v1/namespaces/${namespace}/deployments`, name, (_type, obj) => {
      if ((((obj as V1Deployment).status?.readyReplicas) ?? 0) >= want) {
        clearTimeout(timer);
        resolve(true);
      }
    }, () => done, () => undefined).then((s) => {
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
async function templatePorts(kc: KubeConfig, namespace: string, svc: V1Service, deployment: V1Deployment | undefined): Promise<ContainerPortLike[]> {
  const selector = originalSelectorOf(svc);
  const pod = (await podsFor(kc, namespace, selector))[0];
  const spec = pod?.spec ?? (deployment ?? await deploymentFor(kc, namespace, selector))?.spec?.template.spec;
  return spec?.containers.flatMap((c) => c.ports ?? []) ?? [];
}

export async function runTakeover(o: TakeoverRunOptions, deps: Deps): Promise<TakeoverResult> {
  const t0 = deps.clock.now();
  const target = await deps.kube();
  const kc = await clientConfig(target);
  const { namespace } = target;
  const progress = progressPrinter(deps.err, deps.clock.now);
  const resolved = await resolveTarget(kc, namespace, o.target);

  // Every --expose must name a port of some Service (or the pods' port of
  // exactly one); check all before creating anything.
  const plans: { svc: V1Service; name: string; routes: { servicePort: number; local: number }[]; podPorts: ContainerPortLike[] }[] = [];
  const found = new Set<PortMapping>();
  for (const svc of resolved.services) {
    const name = svc.metadata?.name ?? '';
    const ports = servicePortsOf(svc);
    const direct = (m: PortMapping): boolean => ports.some((p) => p.port === m.remote && (p.protocol ?? 'TCP') === 'TCP');
    // The pods' ports are read only when a named targetPort could be what a REMOTE means.
    const podPorts = hasNamedTargetPort(ports) && o.expose.some((m) => !direct(m)) ? await templatePorts(kc, namespace, svc, resolved.deployment) : [];
    const routes: { servicePort: number; local: number }[] = [];
    for (const m of o.expose) {
      const r = routeForExpose(name, ports, podPorts, m);
      if (!r) continue;
      found.add(m);
      if (r.viaTargetPort !== undefined) progress.note(exposeNote(name, m, r));
      routes.push({ servicePort: r.servicePort, local: r.local });
    }
    plans.push({ svc, name, routes, podPorts });
  }
  for (const m of o.expose) {
    if (!found.has(m)) {
      const first = plans[0];
      throw ktError('KT_ERR_NO_SUCH_PORT', { service: first.name, port: m.remote, ports: describePorts(servicePortsOf(first.svc), first.podPorts) });
    }
  }
  const active = plans.filter((p) => p.routes.length > 0);

  let envFile: TakeoverResult['envFile'];
  if (o.envFile) {
    const selector = originalSelectorOf(active[0].svc);
    const pod = (await podsFor(kc, namespace, selector))[0];
    if (!pod) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: `running pod of service`, name: active[0].name, namespace });
    const { env, notes } = await containerEnv(pod, undefined, await envSources(kc, namespace));
    await writeFile(o.envFile, envFileText(env), { mode: 0o600 });
    for (const n of notes) progress.note(`--env-out: ${n}`);
    envFile = { path: o.envFile, variables: env.size };
    progress.note(`wrote ${env.size} variables of pod ${namespace}/${pod.metadata?.name} to ${o.envFile}`);
  }

  const given = toWire(o.headers ?? [], o.baggage ?? []);
  const headers = o.kind === 'mesh' && given.length > 0 ? given : undefined;
  const windowRaw = (deps.env as Record<string, string | undefined>)[COUNT_WINDOW_ENV];
  const countWindowSeconds = windowRaw ? parsePositiveSeconds(windowRaw, COUNT_WINDOW_ENV) : undefined;
  const takeovers: ServiceTakeover[] = [];
  let scaled: TakeoverResult['scaled'];
  let ended: KtError | undefined;
  let meshHeaders: WireHeader[] | undefined = headers;
  try {
    for (const p of active) {
      const t = new ServiceTakeover({
        kc, namespace, service: p.svc, image: o.image, kind: o.kind, progress, debug: deps.debug, signal: deps.signal,
        ...(countWindowSeconds ? { countWindowSeconds } : {}),
      });
      takeovers.push(t);
      await t.start();
      if (o.kind === 'mesh' && !meshHeaders) meshHeaders = [generatedHeader(t.session.owner.split('@')[0])];
      if (meshHeaders) t.rulesText = meshHeaders.map(describeRule).join(' and ');
      const done = progress.step(`registering ${o.kind} route${p.routes.length > 1 ? 's' : ''} on ${namespace}/${t.router}`);
      await t.addRoutes(p.routes.map((r) => ({ ...r, ...(meshHeaders ? { headers: meshHeaders } : {}) })));
      done();
    }
    if (o.mode === 'scale') {
      const d = resolved.deployment ?? await deploymentFor(kc, namespace, originalSelectorOf(active[0].svc));
      if (!d) {
        progress.note(`--mode scale: no Deployment runs the pods of service ${active[0].name}; nothing scaled`);
      } else if (d.metadata?.annotations?.[ANNOTATIONS.originalReplicas] === undefined) {
        const replicas = d.spec?.replicas ?? 1;
        const dn = d.metadata?.name ?? '';
        const done = progress.step(`scaling deployment ${namespace}/${dn} to 0 (was ${replicas})`);
        await scaleTo(kc, namespace, dn, { metadata: { annotations: { [ANNOTATIONS.originalReplicas]: String(replicas), [ANNOTATIONS.scaledFor]: active[0].name } }, spec: { replicas: 0 } });
        scaled = { deployment: dn, replicas };
        done();
      } else {
        progress.note(`deployment ${namespace}/${d.metadata?.name} is already scaled down by kubectl-kt; leaving it`);
      }
    }
    const routedMs = deps.clock.now() - t0;
    const what = takeovers.map((t, i) => active[i].routes.map((r) => `${t.name}:${r.servicePort} -> localhost:${r.local}`).join(', ')).join(', ');
    const verb = o.kind === 'exchange' ? 'exchanging' : 'meshing';
    const hdr = meshHeaders ? ` for requests with ${meshHeaders.map(describeRule).join(' and ')}` : '';
    deps.err.write(`${verb}: ${what}${hdr} (routed in ${(routedMs / 1000).toFixed(2)} s${takeovers.every((t) => t.reused) ? ', router reused' : ''}); Ctrl-C to stop\n`);
    if (o.kind === 'mesh' && !headers && meshHeaders) {
      const h = meshHeaders[0] as { name: string; value: string };
      const r = active[0].routes[0];
      deps.err.write(`try: curl -H '${h.name}: ${h.value}' http://${active[0].name}.${namespace}.svc:${r.servicePort}/\n`);
    }
    if (takeovers.some((t) => !t.reused)) {
      // The node's service proxy keeps an established connection on the pod
      // it chose (conntrack): only connections opened from now on pass the router.
      deps.err.write('note: connections opened before this (gRPC channels, HTTP keep-alive pools, WebSockets) stay on the original pods until the client reconnects\n');
    }
    await new Promise<void>((resolve) => {
      if (deps.signal.aborted) return resolve();
      deps.signal.addEventListener('abort', () => resolve(), { once: true });
      for (const t of takeovers) {
        t.failed.catch((e: unknown) => {
          ended = toKtError(e);
          resolve();
        });
      }
    });
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
    if (scaled) {
      const done = progress.step(`scaling deployment ${namespace}/${scaled.deployment} back to ${scaled.replicas}`);
      try {
        await scaleTo(kc, namespace, scaled.deployment, { metadata: { annotations: { [ANNOTATIONS.originalReplicas]: null, [ANNOTATIONS.scaledFor]: null } }, spec: { replicas: scaled.replicas } });
        const ready = scaled.replicas === 0 || await waitReadyReplicas(kc, namespace, scaled.deployment, 1, 60_000);
        done(ready ? undefined : 'no pod ready after 60 s; giving the route up anyway');
      } catch (err) {
        progress.note(`cannot scale ${namespace}/${scaled.deployment} back: ${toKtError(err).message}; \`kubectl kt recover\` does`);
      }
    }
    for (const t of takeovers.reverse()) await t.close();
  }
}

/** The text form of a finished exchange or mesh. */
export function takeoverText(r: TakeoverResult): string {
  const lines = r.services.map((s) => `${r.kind} of ${r.namespace}/${s.service} ended`);
  return lines.join('\n');
}
