// One developer's hold on one Service through its shared router, for as
// long as the command runs. The parts live beside it:
//  - router-provision.ts: claim the router (its Secret), make it, wait until Ready;
//  - takeover-routes.ts: this session's routes on it and their announcement;
//  - service-guard.ts: the watches of the Service and the router pod;
//  - service-release.ts: giving the Service back when nobody else routes.
// This class holds the state they share and the order they run in: set the
// router up (first developer) or join it, point the Service at it, route,
// and on close give the Service back. A deleted router pod puts the
// original selector back at once and ends the session with
// KT_ERR_ROUTER_GONE (ARCHITECTURE.md rule 1: the Service must not point at
// nothing; running the command again builds a new router) — unless this
// session was away (asleep) and is taken over again as a new one would.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, PORTS } from '../../../contract/protocol.ts';
import { ktError, toKtError, type KtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { routerOwnPortsOf } from '../kube/router-pod.ts';
import { restoreSelectorOnly, routerNow, switchSelector } from '../kube/takeover-apply.ts';
import { heldByRouter, originalSelectorOf } from '../kube/takeover-plan.ts';
import { podReady } from '../kube/pods.ts';
import { ProxySession, type Progress } from './proxy-session.ts';
import { claimRouter, createRouter, routerReady, type Claim, type RouterContext, type RouterPeek } from './router-provision.ts';
import { routerAnswer } from './router-answer.ts';
import type { RouterAnswer } from './route-traffic.ts';
import { guardService, waitEndpoints } from './service-guard.ts';
import { releaseService } from './service-release.ts';
import { RouteBook, type RouteHost, type RouteSpec } from './takeover-routes.ts';

export type { RouteSpec } from './takeover-routes.ts';

/**
 * The router drops a connection it has heard nothing from for 3 keepalive
 * intervals (proxy-image/src/ssh/server.ts: 3 × 2 s); quieter than that,
 * this session's routes may be gone.
 */
const ROUTER_GIVES_UP_MS = 6000;

/** A joiner whose router left before it routed starts again from the claim, this many times in all (joinedRouterLeft). */
const JOIN_ATTEMPTS = 3;

export interface TakeoverOptions {
  api: KubeApi;
  namespace: string;
  service: V1Service;
  image: string;
  kind: 'exchange' | 'mesh';
  progress: Progress;
  debug: (msg: string) => void;
  signal: AbortSignal;
  /** A new router's count window in seconds (KT_COUNT_WINDOW_SECONDS; default the router's 60). */
  countWindowSeconds?: number;
  /** The claim's first reads, asked early (router-provision.ts peekRouter); used by the first set-up only. */
  peek?: RouterPeek;
}

export class ServiceTakeover implements RouteHost {
  readonly name: string;
  readonly namespace: string;
  readonly api: KubeApi;
  readonly kind: 'exchange' | 'mesh';
  readonly progress: Progress;
  readonly debug: (msg: string) => void;
  /** Rejects when the session cannot go on (router gone); the command awaits it with the abort signal. */
  readonly failed: Promise<never>;
  /** The router pod (its name comes from the Secret). */
  router = '';
  /** True when this session found the router running (no pod was made). */
  reused = false;
  /** This session made the router. */
  private created = false;
  /** When the router's Secret was made, while its pod was not seen yet (a pod missing within ROUTER_CREATE_GRACE_MS of it is being made, not gone). */
  private secretCreatedAt: number | undefined;
  /** The tunnel to the router came up once (the router can be asked who routes). */
  tunnelUp = false;
  /** close() began: nothing new starts. */
  closing = false;
  /** The router went; reported once. */
  private goneOnce = false;
  /** The router's health port, where it says who routes. */
  private healthPort: number = PORTS.routerHealth;
  private routerIp: string | undefined;
  private sessionObj: ProxySession | undefined;
  private readonly routes: RouteBook;
  private stopWatches: (() => void)[] = [];
  private closed: Promise<void> | undefined;
  private failure: ((e: KtError) => void) | undefined;
  private readonly opts: TakeoverOptions;
  private peek: RouterPeek | undefined;

  constructor(opts: TakeoverOptions) {
    this.opts = opts;
    this.peek = opts.peek;
    this.name = opts.service.metadata?.name ?? '';
    this.namespace = opts.namespace;
    this.api = opts.api;
    this.kind = opts.kind;
    this.progress = opts.progress;
    this.debug = opts.debug;
    this.routes = new RouteBook(this);
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

  /** The mesh's rules as people read them, for the "matched nothing" line. */
  set rulesText(text: string) {
    this.routes.rulesText = text;
  }

  private get context(): RouterContext & { debug: (msg: string) => void; service: string } {
    const { api, namespace, image, progress, debug, signal, countWindowSeconds } = this.opts;
    return { api, namespace, service: this.name, image, progress, debug, signal, ...(countWindowSeconds ? { countWindowSeconds } : {}) };
  }

  /**
   * Sets the router up or joins it, then points the Service at it. On
   * failure, what this call created is removed again. `routed` runs once the
   * tunnel is up, before the Service is pointed at the router: the command
   * registers its routes there, so they are in place before any traffic is.
   */
  async start(routed?: () => Promise<void>, planned?: () => RouteSpec[]): Promise<void> {
    let svc = this.opts.service;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.setUp(svc, routed, planned);
        return;
      } catch (err) {
        const e = toKtError(err);
        if (attempt < JOIN_ATTEMPTS && await this.joinedRouterLeft()) {
          const { api, namespace, progress } = this.opts;
          progress.note(`router ${namespace}/${this.router} went while this session joined it (${e.message}); taking service ${namespace}/${this.name} over as a new session would`);
          for (const stop of this.stopWatches.splice(0)) stop();
          await this.sessionObj?.close();
          try {
            svc = await api.core.readNamespacedService({ namespace, name: this.name });
            continue;
          } catch (re) {
            this.opts.debug(`reading service ${namespace}/${this.name} again: ${(re as Error).message}`);
          }
        }
        await this.close().catch((ce: unknown) => this.opts.debug(`cleanup after failed start: ${(ce as Error).message}`));
        throw e;
      }
    }
  }

  /**
   * This session joined a router and routed nothing yet, and the router is
   * being deleted or gone: the last session on it gave the Service back (or
   * someone removed it) between this session's read of it and its routes.
   * Nothing of this session's is on it, so it starts again from the claim.
   */
  private async joinedRouterLeft(): Promise<boolean> {
    if (this.created || this.closing || this.opts.signal.aborted || this.routes.routes.length > 0 || this.router === '') return false;
    return await routerNow(this.api, this.namespace, this.router, this.secretCreatedAt).catch(() => undefined) === 'leaving';
  }

  /** start() without the clean-up: also what takes the Service over again after the router went while this laptop was away. */
  private async setUp(svc: V1Service, routed?: () => Promise<void>, planned?: () => RouteSpec[]): Promise<void> {
    const c = this.context;
    const { api, namespace, progress } = c;
    const original = originalSelectorOf(svc);
    const peek = this.peek;
    this.peek = undefined;
    const claim = await claimRouter(c, peek);
    const { secret } = claim;
    this.router = secret.routerPod;
    this.reused = !secret.created;
    this.created = secret.created;
    this.secretCreatedAt = claim.current ? undefined : secret.createdAt;
    const session = this.newSession(secret.keys);
    if (secret.created) await createRouter(c, svc, original, secret, session);
    // While the tunnel opens: the routes' announcement (onto a pod that is
    // there: a joiner of a router still being made finds none yet, and the
    // write would fail as if the router had gone), and (joining a Ready
    // router) whether the Service points at it already, which a joiner's
    // switch then needs to read no more.
    if (planned && (secret.created || claim.current)) this.routes.announceEarly(planned());
    const now = claim.current && podReady(claim.current) ? api.core.readNamespacedService({ namespace, name: this.name }).catch(() => undefined) : undefined;
    // Joining a router the Service is switched to: it was Ready once, so a restart of its container is waited through.
    const routerPod = await this.readyAndRouted(c, claim, session, routed, !secret.created && heldByRouter(svc, this.name));
    const done = progress.step(`pointing service ${namespace}/${this.name} at the router`);
    const fresh = await now;
    const replaced = fresh && pointsAtRouter(fresh, this.name) ? undefined : await switchSelector(api, namespace, this.name, fresh ?? svc);
    done(replaced === undefined ? 'already' : `was ${JSON.stringify(replaced)}`);
    this.routerIp = routerPod.status?.podIP;
    // Already the router's (a developer joining): whoever switched it waited for the Endpoints.
    if (replaced !== undefined) await waitEndpoints(c, this.routerIp, 'only', this.opts.signal);
    this.stopWatches.push(...await guardService(c, this));
  }

  /**
   * Waits until the router pod is Ready, and meanwhile, from the moment its
   * container runs, opens the tunnel and runs `routed`: the readiness probe
   * gates only the selector switch that follows (ARCHITECTURE.md rule 1),
   * not this session's own connection. Fails with whichever fails first.
   */
  private async readyAndRouted(c: RouterContext, claim: Claim, session: ProxySession, routed?: () => Promise<void>, served = false): Promise<V1Pod> {
    let opening: Promise<void> | undefined;
    let openFailed!: (err: unknown) => void;
    const failed = new Promise<never>((_resolve, reject) => {
      openFailed = reject;
    });
    failed.catch(() => undefined);
    const open = (pod: V1Pod): Promise<void> => {
      this.secretCreatedAt = undefined;
      opening ??= (async () => {
        // Its own ports were chosen clear of the ports it serves when it was made: read them off the pod.
        const own = routerOwnPortsOf(pod);
        session.sshPort = own.ssh;
        this.healthPort = own.health;
        await session.start();
        this.tunnelUp = true;
        await routed?.();
      })();
      opening.catch(openFailed);
      return opening;
    };
    // Given up (the tunnel or the routes failed first): the watch for Ready ends too.
    const stop = new AbortController();
    try {
      const pod = await Promise.race([routerReady({ ...c, signal: AbortSignal.any([c.signal, stop.signal]) }, claim, open, served), failed]);
      await open(pod);
      return pod;
    } finally {
      stop.abort();
    }
  }

  /** The session's tunnel to the router pod (made elsewhere: attached, not created). */
  private newSession(keys: { client: { privateKey: string; publicKey: string }; host: { privateKey: string; publicKey: string } }): ProxySession {
    const { api, namespace, image, kind, progress, debug, signal } = this.opts;
    const session = new ProxySession({ api, namespace, image, role: 'router', kind, name: this.router, attach: true, keys, progress, debug, signal });
    this.sessionObj = session;
    this.tunnelUp = false;
    // Reconnecting gave up: end the session (the command then gives the Service back if nobody else routes).
    session.on('lost', (err) => {
      if (this.sessionObj === session) this.failure?.(toKtError(err));
    });
    // The API server says the router pod is not there while the tunnel is down: it went while this laptop was away.
    session.on('gone', () => {
      if (this.sessionObj === session) this.routerGone('the pod is not there any more');
    });
    return session;
  }

  /** Registers routes; refused routes throw KT_ERR_ROUTE_TAKEN naming the holder (KT_ERR_ROUTE_LIMIT at a cap, KT_ERR_ROUTE_INVALID for a rule the router cannot run). Re-registered after every reconnect. */
  async addRoutes(specs: RouteSpec[]): Promise<void> {
    await this.routes.add(specs);
  }

  /** The router's /routes answer: its routes with their counts, and per-port counts. */
  routerAnswer(): Promise<RouterAnswer> {
    return routerAnswer(this.session, this.healthPort);
  }

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

  /** The router pod went (or is going): see the file's head. */
  routerGone(reason: string): void {
    void this.onRouterGone(reason);
  }

  private async onRouterGone(reason: string): Promise<void> {
    if (this.goneOnce || this.closing) return;
    this.goneOnce = true;
    // Away, this session's routes went with its connection, and the last
    // session still there rightly gave the Service back and removed the
    // router. Nobody asked this one to stop: take the Service over again.
    if (this.routes.routes.length > 0 && this.away()) return await this.takeOverAgain(reason);
    const { api, namespace, progress } = this.opts;
    const started = Date.now();
    try {
      const restored = await restoreSelectorOnly(api, namespace, this.name);
      progress.note(`router ${namespace}/${this.router} is gone (${reason}); ${restored ? 'gave' : 'another session gave'} service ${namespace}/${this.name} back to its pods (${((Date.now() - started) / 1000).toFixed(2)} s)`);
    } catch (err) {
      progress.note(`router gone and cannot restore the selector of ${namespace}/${this.name}: ${toKtError(err).message}; run \`kubectl kt recover svc/${this.name}\``);
    }
    this.failure?.(ktError('KT_ERR_ROUTER_GONE', { namespace, service: this.name, reason }));
  }

  /** As a new session would: a router (new, or one someone made meanwhile), the selector, then this session's routes. */
  private async takeOverAgain(reason: string): Promise<void> {
    const { api, namespace, progress, debug } = this.opts;
    const started = performance.now();
    progress.note(`router ${namespace}/${this.router} went while this session was away (${reason}); taking service ${namespace}/${this.name} over again`);
    for (const stop of this.stopWatches.splice(0)) stop();
    await this.sessionObj?.close();
    for (let attempt = 1; !this.closing; attempt++) {
      try {
        // The Service must not select a router that is gone (ARCHITECTURE.md rule 1), whoever put it back first.
        await restoreSelectorOnly(api, namespace, this.name).catch((err: unknown) => debug(`restoring the selector: ${(err as Error).message}`));
        const svc = await api.core.readNamespacedService({ namespace, name: this.name });
        await this.setUp(svc);
        await this.routes.registerAll(await this.session.tunnel());
        await this.routes.announce();
        this.goneOnce = false;
        progress.note(`took service ${namespace}/${this.name} over again through ${namespace}/${this.router} (${((performance.now() - started) / 1000).toFixed(2)} s)`);
        return;
      } catch (err) {
        const e = toKtError(err);
        if (this.closing) return;
        if (attempt >= 3) {
          await restoreSelectorOnly(api, namespace, this.name).catch(() => false);
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
    for (const stop of this.stopWatches.splice(0)) stop();
    // Our routes go first, then: who else routes, as the router itself
    // knows it (routes live exactly as long as their connections, so a
    // crashed laptop's route is not there). In that order, of many
    // developers who leave at once the last to ask sees nobody and gives the
    // Service back; asked first, each could see the others and none would.
    // Only through a tunnel that came up: a session whose router never got ready has none to ask through.
    await this.routes.stop();
    await this.routes.retract();
    const live = this.sessionObj && this.tunnelUp && !this.goneOnce ? await this.liveSessions().catch((err: unknown) => {
      this.debug(`asking the router for its routes: ${(err as Error).message}`);
      return undefined;
    }) : undefined;
    if (!this.sessionObj) return;
    await this.sessionObj.close();
    const routed = this.routes.routes.length > 0;
    // A session that joined and never routed (refused, interrupted) leaves the router to those who do.
    if (!this.created && !routed) return;
    await releaseService(this.context, {
      router: this.router,
      session: this.session.id,
      annotationKey: routed ? this.routes.annotationKey : undefined,
      live,
      routerIp: this.routerIp,
      gone: this.goneOnce,
    });
  }

  /** The sessions that hold a route on the router now, from its /routes endpoint (through the tunnel). */
  private async liveSessions(): Promise<string[]> {
    const parsed = await this.routerAnswer();
    return [...new Set((parsed.routes ?? []).map((r) => String(r.session)))];
  }
}

/** The Service selects the router and keeps its original selector: what switchSelector leaves, and then has nothing to do. */
function pointsAtRouter(svc: V1Service, service: string): boolean {
  return heldByRouter(svc, service) && svc.metadata?.annotations?.[ANNOTATIONS.originalSelector] !== undefined;
}
