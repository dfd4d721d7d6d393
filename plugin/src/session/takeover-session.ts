// One developer's hold on one Service through its shared router: set the
// router up (first developer) or join it (everyone after), register routes
// on it for as long as this process lives, announce them on the router pod
// (one annotation per session, heartbeat every 10 s), watch the Service and
// the router, and on close give the Service back when nobody else routes.
//
// Watches, not polls: a selector someone overwrites (a redeploy, `kubectl
// apply`) is taken over again at once, with the new selector kept as the
// original; a deleted router pod puts the original selector back at once and
// ends the session with KT_ERR_ROUTER_GONE (ARCHITECTURE.md rule 1: the Service must
// not point at nothing; running the command again builds a new router).
import type { KubeConfig, V1Pod, V1Service } from '@kubernetes/client-node';
import { LABELS, PORTS, PROTOCOL_VERSION, type HeaderMatch as WireHeader } from '../../../contract/protocol.ts';
import { apiStatus, fromApiError, ktError, toKtError, type KtError } from '../errors.ts';
import { annotatePod, createPod, podReady, waitForPod } from '../kube/pods.ts';
import { restoreService } from '../kube/restore.ts';
import { watchByName as watchObject } from '../kube/watch.ts';
import { newSessionId, proxyPod } from '../kube/shadow.ts';
import {
  deleteSecretIfUnchanged, ensureOriginService, ensureRouterSecret, routerNow, secretName, isRace, originService, originalSelectorOf, planPorts, podsFor, routerOwnPorts, routerOwnPortsOf, routerReadiness,
  restoreSelectorOnly, ROUTER_GRACE_SECONDS, routerEnv, routerName, routerSelector, sameLabels, switchSelector, type PortPlan,
} from '../kube/takeover.ts';
import { ROUTE_ANNOTATION_PREFIX, parseRoutes, type RouteTraffic } from '../status/model.ts';
import { encodeRouteAnnotation } from '../../../contract/route-annotation.ts';
import { requestRoute, routeRefusalError, RouteRefusedError, type RouteHandle } from '../tunnel/route.ts';
import type { Tunnel } from '../tunnel/index.ts';
import { ProxySession, type Progress } from './proxy-session.ts';
import { quietLine, trafficOf, type RouterAnswer } from './route-traffic.ts';

/**
 * The router drops a connection it has heard nothing from for 3 keepalive
 * intervals (proxy-image/src/ssh/server.ts: 3 × 2 s); quieter than that,
 * this session's routes may be gone.
 */
const ROUTER_GIVES_UP_MS = 6000;
/** How long a re-registration waits for the router to drop this session's old connection (its keepalive gives up within 8 s). */
const OWN_ROUTE_WAIT_MS = 15_000;

export interface TakeoverOptions {
  kc: KubeConfig;
  namespace: string;
  service: V1Service;
  image: string;
  kind: 'exchange' | 'mesh';
  progress: Progress;
  debug: (msg: string) => void;
  signal: AbortSignal;
  heartbeatMs?: number;
  now?: () => Date;
  /** A new router's count window in seconds (KT_COUNT_WINDOW_SECONDS; default the router's 60). */
  countWindowSeconds?: number;
}

export interface RouteSpec {
  servicePort: number;
  local: number;
  headers?: WireHeader[];
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Long-lived watch of one object by name that resumes where it left off (kube/watch.ts). */
export function watchByName(kc: KubeConfig, path: string, name: string, onEvent: (type: string, obj: unknown) => void, stopped: () => boolean, debug: (m: string) => void, read?: () => Promise<unknown>): Promise<() => void> {
  return watchObject({ kc, path, name, onEvent, stopped, debug, ...(read ? { read } : {}) });
}

export class ServiceTakeover {
  readonly name: string;
  readonly namespace: string;
  router: string;
  private sessionObj: ProxySession | undefined;
  /** True when this session found the router running (no pod was made). */
  reused = false;
  private created = false;
  private routerIp: string | undefined;
  plan: PortPlan | undefined;
  private readonly opts: TakeoverOptions;
  private routes: { spec: RouteSpec; handle: RouteHandle | undefined }[] = [];
  private stopWatches: (() => void)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private failure: ((e: KtError) => void) | undefined;
  /** Rejects when the session cannot go on (router gone); the command awaits it with the abort signal. */
  readonly failed: Promise<never>;

  constructor(opts: TakeoverOptions) {
    this.opts = opts;
    this.name = opts.service.metadata?.name ?? '';
    this.namespace = opts.namespace;
    this.router = '';
    this.failed = new Promise<never>((_resolve, reject) => {
      this.failure = reject;
    });
    this.failed.catch(() => undefined);
  }

  get session(): ProxySession {
    if (!this.sessionObj) throw ktError('KT_ERR_INTERNAL', { message: 'takeover session used before start()' });
    return this.sessionObj;
  }

  get id(): string {
    return this.session.id;
  }

  /**
   * Sets the router up or joins it, then points the Service at it. On
   * failure, what this call created is removed again.
   */
  async start(): Promise<void> {
    try {
      await this.setUp(this.opts.service);
    } catch (err) {
      const e = toKtError(err);
      await this.close().catch((ce: unknown) => this.opts.debug(`cleanup after failed start: ${(ce as Error).message}`));
      throw e;
    }
  }

  /** start() without the clean-up: also what takes the Service over again after the router went while this laptop was away. */
  private async setUp(svc: V1Service): Promise<void> {
    const { kc, namespace, progress } = this.opts;
    const original = originalSelectorOf(svc);
    let done = progress.step(`reading the router keys of service ${namespace}/${this.name}`);
    let secret = await ensureRouterSecret(kc, namespace, this.name, routerName(this.name, newSessionId()));
    // Joining a running router: one read usually says it is ready (cheaper than opening a watch).
    let current = secret.created ? undefined : await routerNow(kc, namespace, secret.routerPod, secret.createdAt);
    if (current === 'leaving') {
      // The Secret names a router that is gone or being deleted (its sessions ended with
      // KT_ERR_ROUTER_GONE and none was left to remove the Secret): joining it would fail.
      // It is replaced, guarded by its resourceVersion, so of several developers doing this at once one does.
      progress.note(`router ${namespace}/${secret.routerPod} is being deleted; making a new one`);
      await deleteSecretIfUnchanged(kc, namespace, secretName(this.name), secret.resourceVersion);
      secret = await ensureRouterSecret(kc, namespace, this.name, routerName(this.name, newSessionId()));
      current = secret.created ? undefined : await routerNow(kc, namespace, secret.routerPod, secret.createdAt);
    }
    this.router = secret.routerPod;
    done(secret.created ? 'new router' : 'router exists, joining');
    this.reused = !secret.created;
    this.created = secret.created;
    const keys = secret.keys;
    const session = new ProxySession({
      kc,
      namespace,
      image: this.opts.image,
      role: 'router',
      kind: this.opts.kind,
      name: this.router,
      attach: true,
      keys,
      progress,
      debug: this.opts.debug,
      signal: this.opts.signal,
      ...(this.opts.now ? { now: this.opts.now } : {}),
    });
    this.sessionObj = session;
    this.tunnelUp = false;
    // Reconnecting gave up: end the session (the command then gives the Service back if nobody else routes).
    session.on('lost', (err) => {
      if (this.sessionObj === session) this.failure?.(toKtError(err));
    });
    // The API server says the router pod is not there while the tunnel is down: it went while this laptop was away.
    session.on('gone', () => {
      if (this.sessionObj === session) void this.routerGone('the pod is not there any more');
    });
    if (secret.created) {
      const pods = await podsFor(kc, namespace, original);
      const podPorts = pods.flatMap((p) => p.spec?.containers.flatMap((c) => c.ports ?? []) ?? []);
      const ports = (svc.spec?.ports ?? []).map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort as number | string | undefined, protocol: p.protocol }));
      this.plan = planPorts(this.name, ports, podPorts);
      if (this.plan.skipped.length) progress.note(`ports ${this.plan.skipped.join(', ')} are not TCP: the router does not serve them while the service is taken over`);
      done = progress.step(`creating origin service ${namespace}/${this.name}-kt-origin`);
      const originHost = await ensureOriginService(kc, originService({ name: this.name, namespace, ports, selector: original ?? {} }));
      done(originHost);
      done = progress.step(`creating router pod ${namespace}/${this.router}`);
      const own = routerOwnPorts(this.plan.routerPorts);
      const pod = proxyPod({
        name: this.router,
        namespace,
        image: this.opts.image,
        role: 'router',
        kind: 'router',
        session: this.session.id,
        owner: this.session.owner,
        since: this.session.since,
        authorizedKey: keys.client.publicKey,
        hostKey: keys.host.privateKey,
        labels: { [LABELS.target]: this.name },
        env: routerEnv(this.plan.routerPorts, originHost, own, this.opts.countWindowSeconds),
        sshPort: own.ssh,
        ports: this.plan.containerPorts,
        readinessProbe: routerReadiness(own),
        terminationGracePeriodSeconds: ROUTER_GRACE_SECONDS,
        lowPorts: this.plan.routerPorts.some((p) => p.listenPort < 1024),
      });
      await createPod(kc, pod);
      done();
    }
    done = progress.step(secret.created ? 'waiting for the router to be ready' : `router ${namespace}/${this.router} ready`);
    const routerPod = current && current !== 'leaving' && podReady(current) ? current : await waitForPod(kc, { namespace, name: this.router }, podReady, {
      timeoutMs: 120_000,
      signal: this.opts.signal,
      what: `router ${namespace}/${this.router} to be ready`,
    });
    done();
    // Its own ports were chosen clear of the ports it serves when it was made: read them off the pod.
    const own = routerOwnPortsOf(routerPod);
    this.session.sshPort = own.ssh;
    this.healthPort = own.health;
    await this.session.start();
    this.tunnelUp = true;
    done = progress.step(`pointing service ${namespace}/${this.name} at the router`);
    const replaced = await switchSelector(kc, namespace, this.name);
    done(replaced === undefined ? 'already' : `was ${JSON.stringify(replaced)}`);
    this.routerIp = routerPod.status?.podIP;
    // Already the router's (a developer joining): whoever switched it waited for the Endpoints.
    if (replaced !== undefined) await this.waitEndpoints(this.routerIp, 'only');
    await this.startWatches();
  }

  /**
   * Waits (by watching) until the Service's Endpoints list the router alone
   * ('only': "routed" then means the cluster sends the Service's traffic to
   * the router), or no longer list it ('without': the router may go).
   */
  private async waitEndpoints(ip: string | undefined, mode: 'only' | 'without'): Promise<void> {
    if (!ip) return;
    const { kc, namespace, progress, debug } = this.opts;
    const done = progress.step(mode === 'only'
      ? `waiting for the endpoints of ${namespace}/${this.name} to be the router`
      : `waiting for the endpoints of ${namespace}/${this.name} to be its own pods`);
    // On the way out the abort signal has fired already (Ctrl-C): only the time bounds that wait.
    const signal = mode === 'only' ? this.opts.signal : undefined;
    let finished = false;
    let stop: (() => void) | undefined;
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), mode === 'only' ? 15_000 : 10_000);
      const onAbort = (): void => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      void watchByName(kc, `/api/v1/namespaces/${namespace}/endpoints`, this.name, (_type, obj) => {
        const subsets = (obj as { subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[] }).subsets ?? [];
        const ips = subsets.flatMap((ss) => [...(ss.addresses ?? []), ...(ss.notReadyAddresses ?? [])].map((a) => a.ip));
        if (mode === 'only' ? ips.length > 0 && ips.every((x) => x === ip) : !ips.includes(ip)) {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        }
      }, () => finished, debug).then((st) => {
        stop = st;
        if (finished) st();
      });
    });
    finished = true;
    stop?.();
    done(ok ? undefined : 'not yet; going on');
  }

  /** Registers routes; refused routes throw KT_ERR_ROUTE_TAKEN naming the holder (KT_ERR_ROUTE_LIMIT at a cap, KT_ERR_ROUTE_INVALID for a rule the router cannot run). Re-registered after every reconnect. */
  async addRoutes(specs: RouteSpec[]): Promise<void> {
    const tunnel = await this.session.tunnel();
    const entries = specs.map((spec) => ({ spec, handle: undefined as RouteHandle | undefined }));
    this.routes.push(...entries);
    // The announcement (for status) goes out while the routes are registered: a join costs one round trip less.
    const announced = this.announce().then(() => undefined, (err: unknown) => err);
    try {
      for (const entry of entries) entry.handle = await this.register(tunnel, entry.spec);
    } catch (err) {
      // Refused (KT_ERR_ROUTE_TAKEN): no route of ours, so no announcement either.
      await announced;
      this.routes = this.routes.filter((r) => !entries.includes(r));
      await annotatePod(this.opts.kc, { namespace: this.namespace, name: this.router }, { [`${ROUTE_ANNOTATION_PREFIX}${this.session.id}`]: null }).catch(() => undefined);
      throw err;
    }
    const failed = await announced;
    if (failed !== undefined) throw toKtError(failed);
    this.reRegisterOnUp(this.session);
    this.routedAt = Date.now();
    this.heartbeat = setInterval(() => {
      this.announce().catch((err: unknown) => this.opts.debug(`route heartbeat failed: ${(err as Error).message}`));
    }, this.opts.heartbeatMs ?? 10_000);
    this.heartbeat.unref();
  }

  /** After every reconnect of the session's tunnel the routes go on the router again: they died with the old connection. */
  private reRegisterOnUp(session: ProxySession): void {
    session.on('up', (t) => {
      void (async () => {
        for (const r of this.routes) {
          try {
            r.handle = await this.register(t, r.spec, OWN_ROUTE_WAIT_MS);
          } catch (err) {
            this.opts.progress.note(`cannot register the route for port ${r.spec.servicePort} again: ${toKtError(err).message}`);
          }
        }
        this.opts.debug(`routes registered again on ${this.namespace}/${this.router}`);
      })();
    });
  }

  /**
   * Registers one route. `patientMs`: when the router refuses it because
   * this very session holds it — on a connection the router has not yet
   * judged dead (a laptop back from sleep before the router's keepalive ran
   * out) — ask again each second for up to this long; the old connection's
   * routes go when the router gives up on it.
   */
  private async register(tunnel: Tunnel, spec: RouteSpec, patientMs = 0): Promise<RouteHandle> {
    const until = performance.now() + patientMs;
    for (;;) {
      try {
        return await requestRoute(tunnel, {
          protocol: PROTOCOL_VERSION,
          kind: this.opts.kind,
          servicePort: spec.servicePort,
          ...(spec.headers ? { headers: spec.headers } : {}),
          owner: this.session.owner,
          session: this.session.id,
        }, { host: '127.0.0.1', port: spec.local });
      } catch (err) {
        if (!(err instanceof RouteRefusedError)) throw toKtError(err);
        const own = err.refused.includes(`(session ${this.session.id})`);
        if (!own || performance.now() > until || tunnel.closed) {
          throw routeRefusalError(err, `${this.namespace}/${this.name}`);
        }
        this.opts.debug(`route for port ${spec.servicePort} still held by this session's old connection; asking again`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private routeAnnotation(traffic: RouteTraffic | undefined): string {
    const first = this.routes[0]?.spec;
    return encodeRouteAnnotation({
      owner: this.session.owner,
      kind: this.opts.kind,
      since: this.session.since,
      heartbeat: iso(this.opts.now?.() ?? new Date()),
      servicePort: first?.servicePort,
      headers: first?.headers ?? [],
      localPort: first?.local,
      ...(traffic ? { traffic } : {}),
    });
  }

  private routedAt = 0;
  /** The mesh's rules as people read them, for the "matched nothing" line. */
  rulesText = 'the tag';
  /** Ports whose "matched nothing" line was printed; printed again only after the route matched something. */
  private readonly quietSaid = new Set<number>();

  private async announce(): Promise<void> {
    if (this.closing) return;
    // The counts ride the heartbeat into the annotation (status and the dashboard read them there).
    const traffic = this.opts.kind === 'mesh' && this.tunnelUp
      ? await this.routerAnswer().then((a) => trafficOf(a, this.session.id, this.opts.now?.() ?? new Date()), (err: unknown) => {
        this.opts.debug(`reading the router's counts: ${(err as Error).message}`);
        return undefined;
      })
      : undefined;
    if (this.closing) return;
    if (traffic) this.sayQuiet(traffic);
    await annotatePod(this.opts.kc, { namespace: this.namespace, name: this.router }, { [`${ROUTE_ANNOTATION_PREFIX}${this.session.id}`]: this.routeAnnotation(traffic) });
  }

  /** One line when a route took nothing for a whole window while its Service had requests. */
  private sayQuiet(traffic: RouteTraffic): void {
    if (Date.now() - this.routedAt < traffic.windowSeconds * 1000) return;
    for (const p of traffic.ports) {
      if (p.matched > 0) {
        this.quietSaid.delete(p.servicePort);
        continue;
      }
      if (this.quietSaid.has(p.servicePort)) continue;
      const line = quietLine(p, traffic.windowSeconds, this.rulesText, this.name);
      if (!line) continue;
      this.quietSaid.add(p.servicePort);
      this.opts.progress.note(line);
    }
  }

  private async startWatches(): Promise<void> {
    const { kc, namespace, debug } = this.opts;
    const stopped = (): boolean => this.closing;
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const core = kc.makeApiClient(CoreV1Api);
    const router = this.router;
    const readRouter = (): Promise<unknown> => core.readNamespacedPod({ namespace, name: router }).catch((err: unknown) => {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    });
    this.stopWatches.push(await watchByName(kc, `/api/v1/namespaces/${namespace}/pods`, router, (type, obj) => {
      const pod = obj as V1Pod;
      if (this.closing || router !== this.router) return;
      if (type === 'DELETED' || pod.metadata?.deletionTimestamp) void this.routerGone(type === 'DELETED' ? 'the pod was deleted' : 'the pod is being deleted');
    }, stopped, debug, readRouter));
    this.stopWatches.push(await watchByName(kc, `/api/v1/namespaces/${namespace}/services`, this.name, (type, obj) => {
      if (this.closing || (type !== 'MODIFIED' && type !== 'ADDED')) return;
      const svc = obj as V1Service;
      if (sameLabels(svc.spec?.selector, routerSelector(this.name))) return;
      void this.reassert(svc.spec?.selector ?? null);
    }, stopped, debug));
  }

  private reasserting = false;

  /** Someone changed the selector: take the Service over again, keeping their selector as the original. */
  private async reassert(selector: Record<string, string> | null): Promise<void> {
    if (this.reasserting) return;
    this.reasserting = true;
    const { kc, namespace, progress } = this.opts;
    try {
      // Only onto a router that is there and ready; otherwise the selector stays with the pods.
      const { CoreV1Api } = await import('@kubernetes/client-node');
      const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name: this.router }).catch(() => undefined);
      if (!pod || pod.metadata?.deletionTimestamp || !podReady(pod) || this.closing) return;
      const replaced = await switchSelector(kc, namespace, this.name);
      if (replaced !== undefined) progress.note(`the selector of service ${namespace}/${this.name} was changed to ${JSON.stringify(selector)} (a redeploy?); pointed it at the router again, original selector now ${JSON.stringify(replaced)}`);
    } catch (err) {
      progress.note(`cannot take service ${namespace}/${this.name} over again: ${toKtError(err).message}`);
    } finally {
      this.reasserting = false;
    }
  }

  private goneOnce = false;
  /** The tunnel to the router came up once (the router can be asked who routes). */
  private tunnelUp = false;
  /** The router's health port, where it says who routes. */
  private healthPort: number = PORTS.routerHealth;

  /**
   * This session was away long enough for the router to give up on its
   * connection: nothing came from the router for longer than the router
   * waits (a path that dropped packets, a laptop asleep). A tunnel that
   * dropped only because the router pod was deleted heard from it just
   * before, so that deletion still ends the session (KT_ERR_ROUTER_GONE).
   */
  private away(): boolean {
    return this.session.quietMs() > ROUTER_GIVES_UP_MS;
  }

  private async routerGone(reason: string): Promise<void> {
    if (this.goneOnce || this.closing) return;
    this.goneOnce = true;
    // Away, this session's routes went with its connection, and the last
    // session still there rightly gave the Service back and removed the
    // router. Nobody asked this one to stop: take the Service over again.
    if (this.routes.length > 0 && this.away()) return await this.takeOverAgain(reason);
    const { kc, namespace, progress } = this.opts;
    const started = Date.now();
    try {
      const restored = await restoreSelectorOnly(kc, namespace, this.name);
      progress.note(`router ${namespace}/${this.router} is gone (${reason}); ${restored ? 'gave' : 'another session gave'} service ${namespace}/${this.name} back to its pods (${((Date.now() - started) / 1000).toFixed(2)} s)`);
    } catch (err) {
      progress.note(`router gone and cannot restore the selector of ${namespace}/${this.name}: ${toKtError(err).message}; run \`kubectl kt recover svc/${this.name}\``);
    }
    this.failure?.(ktError('KT_ERR_ROUTER_GONE', { namespace, service: this.name, reason }));
  }

  /** As a new session would: a router (new, or one someone made meanwhile), the selector, then this session's routes. */
  private async takeOverAgain(reason: string): Promise<void> {
    const { kc, namespace, progress, debug } = this.opts;
    const started = performance.now();
    progress.note(`router ${namespace}/${this.router} went while this session was away (${reason}); taking service ${namespace}/${this.name} over again`);
    for (const stop of this.stopWatches.splice(0)) stop();
    await this.sessionObj?.close();
    const { CoreV1Api } = await import('@kubernetes/client-node');
    for (let attempt = 1; !this.closing; attempt++) {
      try {
        // The Service must not select a router that is gone (ARCHITECTURE.md rule 1), whoever put it back first.
        await restoreSelectorOnly(kc, namespace, this.name).catch((err: unknown) => debug(`restoring the selector: ${(err as Error).message}`));
        const svc = await kc.makeApiClient(CoreV1Api).readNamespacedService({ namespace, name: this.name });
        await this.setUp(svc);
        const tunnel = await this.session.tunnel();
        for (const r of this.routes) r.handle = await this.register(tunnel, r.spec, OWN_ROUTE_WAIT_MS);
        this.reRegisterOnUp(this.session);
        await this.announce();
        this.goneOnce = false;
        progress.note(`took service ${namespace}/${this.name} over again through ${namespace}/${this.router} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
        return;
      } catch (err) {
        const e = toKtError(err);
        if (this.closing) return;
        if (attempt >= 3) {
          await restoreSelectorOnly(kc, namespace, this.name).catch(() => false);
          this.failure?.(ktError('KT_ERR_ROUTER_GONE', { namespace, service: this.name, reason: `${reason}, and taking it over again failed: ${e.message}` }));
          return;
        }
        debug(`taking ${namespace}/${this.name} over again, attempt ${attempt}: ${e.message}`);
        for (const stop of this.stopWatches.splice(0)) stop();
        await this.sessionObj?.close();
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  /** The sessions that hold a route on the router now, from its /routes endpoint (through the tunnel). */
  private async liveSessions(): Promise<string[]> {
    const parsed = await this.routerAnswer();
    return [...new Set((parsed.routes ?? []).map((r) => String(r.session)))];
  }

  /** The router's /routes answer: its routes with their counts, and per-port counts. */
  private async routerAnswer(): Promise<RouterAnswer> {
    const session = this.session;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in 2 s')), 2000);
    });
    const body = await Promise.race([timeout, (async () => {
      const stream = await session.dial('127.0.0.1', this.healthPort);
      return await new Promise<string>((resolve, reject) => {
        let buf = '';
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (buf += d));
        stream.once('end', () => resolve(buf));
        stream.once('error', reject);
        stream.end('GET /routes HTTP/1.0\r\nHost: router\r\n\r\n');
      });
    })()]).finally(() => clearTimeout(timer));
    const [head, json] = [body.slice(0, body.indexOf('\r\n\r\n')), body.slice(body.indexOf('\r\n\r\n') + 4)];
    if (!/^HTTP\/1\.[01] 200/.test(head)) throw new Error(`router answered ${head.split('\r\n')[0]}`);
    return JSON.parse(json) as RouterAnswer;
  }

  /**
   * Ends this session's hold: routes and tunnel go, the annotation goes, and
   * if no other live session routes through the router, the Service is
   * restored (selector first) and the router, origin Service and Secret go.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    const { kc, namespace, progress, debug } = this.opts;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const stop of this.stopWatches.splice(0)) stop();
    // Our routes go first (the cancel is answered before the next request on
    // this connection), then: who else routes, as the router itself knows it
    // (routes live exactly as long as their connections, so a crashed
    // laptop's route is not there). In that order, of many developers who
    // leave at once the last to ask sees nobody and gives the Service back;
    // asked first, each could see the others and none would.
    // Only through a tunnel that came up: a session whose router never got ready has none to ask through.
    await Promise.all(this.routes.map((r) => r.handle?.close().catch(() => undefined)));
    const live = this.sessionObj && this.tunnelUp && !this.goneOnce ? await this.liveSessions().catch((err: unknown) => {
      debug(`asking the router for its routes: ${(err as Error).message}`);
      return undefined;
    }) : undefined;
    if (!this.sessionObj) return;
    await this.sessionObj.close();
    // A session that joined and never routed (refused, interrupted) leaves the router to those who do.
    if (!this.created && this.routes.length === 0) return;
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const core = kc.makeApiClient(CoreV1Api);
    let others = 0;
    try {
      const pod = await core.readNamespacedPod({ namespace, name: this.router });
      if (this.routes.length > 0) {
        await annotatePod(kc, { namespace, name: this.router }, { [`${ROUTE_ANNOTATION_PREFIX}${this.session.id}`]: null }).catch((err: unknown) => debug(`removing the route annotation: ${(err as Error).message}`));
      }
      others = live
        ? live.filter((id) => id !== this.session.id).length
        : parseRoutes(pod.metadata?.annotations, Date.now()).filter((r) => !r.stale && r.session !== this.session.id).length;
    } catch (err) {
      if (apiStatus(err) !== 404) {
        progress.note(`cannot read router ${namespace}/${this.router}: ${fromApiError(err, { verb: 'get', resource: 'pods', namespace, name: this.router }).message}; leaving it (\`kubectl kt clean\` removes it when idle)`);
        return;
      }
    }
    if (others > 0) {
      progress.note(`${others} other session(s) still route through ${namespace}/${this.router}; leaving it`);
      return;
    }
    // Selector first; the router is told to go only once the Endpoints no
    // longer list it (ARCHITECTURE.md rule 1). It is deleted with its grace period:
    // the node's service proxy applies the Endpoints change on its own
    // schedule (kube-proxy: usually within a second), and until it has, new
    // connections still reach the router, which serves them from the origin
    // and exits once none has been new for a while (proxy-image/src/router/drain.ts);
    // the origin Service goes after it (restoreService with drain).
    await restoreSelectorOnly(kc, namespace, this.name).catch((err: unknown) => debug(`restoring the selector: ${(err as Error).message}`));
    await this.waitEndpoints(this.routerIp, 'without');
    const done = progress.step(`giving service ${namespace}/${this.name} back to its pods (the router drains)`);
    for (let attempt = 0; ; attempt++) {
      try {
        await restoreService(kc, { namespace, name: this.name }, { dryRun: false, strict: false, drain: !this.goneOnce });
        done();
        return;
      } catch (err) {
        // Another session restoring at the same moment (the guarded patch's
        // test op fails: 422, or a write conflict: 409): read again.
        if (attempt < 3 && isRace(err)) continue;
        progress.note(`could not restore service ${namespace}/${this.name}: ${toKtError(err).message}; run \`kubectl kt recover svc/${this.name}\``);
        return;
      }
    }
  }
}
