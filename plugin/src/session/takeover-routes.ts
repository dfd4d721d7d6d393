// One session's routes on a shared router: registered over its SSH
// connection (kt-route@kt.dev), registered again after every reconnect (they
// die with the connection), and announced on the router pod (one annotation
// per session, with the router's counts for a mesh) at every heartbeat,
// where `status` and the dashboard read them.
import { PROTOCOL_VERSION, type HeaderMatch as WireHeader } from '../../../contract/protocol.ts';
import { ktError, toKtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { annotatePod } from '../kube/pods.ts';
import { ROUTE_ANNOTATION_PREFIX, type RouteTraffic } from '../status/model.ts';
import { encodeRouteAnnotation } from '../../../contract/route-annotation.ts';
import { requestRoute, routeRefusalError, RouteRefusedError, type RouteHandle } from '../tunnel/route.ts';
import type { Tunnel } from '../tunnel/index.ts';
import type { Progress, ProxySession } from './proxy-session.ts';
import { quietLine, trafficOf, type RouterAnswer } from './route-traffic.ts';

/** How a re-registration waits for the router to drop this session's old connection (its keepalive gives up within 8 s). */
export const OWN_ROUTE_WAIT_MS = 15_000;
/** How often the annotation is renewed. */
const HEARTBEAT_MS = 10_000;

export interface RouteSpec {
  servicePort: number;
  local: number;
  headers?: WireHeader[];
}

/** What the routes read from the takeover, as it is at the time (the session and router change when it takes the Service over again). */
export interface RouteHost {
  readonly api: KubeApi;
  readonly namespace: string;
  /** The Service. */
  readonly name: string;
  readonly kind: 'exchange' | 'mesh';
  readonly progress: Progress;
  readonly debug: (msg: string) => void;
  readonly session: ProxySession;
  readonly router: string;
  readonly closing: boolean;
  /** The tunnel to the router came up once (the router can be asked who routes). */
  readonly tunnelUp: boolean;
  routerAnswer(): Promise<RouterAnswer>;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class RouteBook {
  /** The routes of this session, with their registrations on the current tunnel. */
  routes: { spec: RouteSpec; handle: RouteHandle | undefined }[] = [];
  /** The mesh's rules as people read them, for the "matched nothing" line. */
  rulesText = 'the tag';
  private heartbeat: NodeJS.Timeout | undefined;
  private routedAt = 0;
  /** The first announcement, written while the tunnel opens (announceEarly); add() waits for it instead of writing one. */
  private early: { specs: RouteSpec[]; written: Promise<unknown> } | undefined;
  /** Ports whose "matched nothing" line was printed; printed again only after the route matched something. */
  private readonly quietSaid = new Set<number>();

  private readonly host: RouteHost;

  constructor(host: RouteHost) {
    this.host = host;
  }

  get annotationKey(): string {
    return `${ROUTE_ANNOTATION_PREFIX}${this.host.session.id}`;
  }

  /**
   * Announces routes about to be registered, while the tunnel to the router
   * opens: add() with these specs then waits for this write instead of
   * making its own after the tunnel. Without the router's counts (it holds
   * no route of this session yet); add() sends them next.
   */
  announceEarly(specs: RouteSpec[]): void {
    const h = this.host;
    const written = annotatePod(h.api, { namespace: h.namespace, name: h.router }, { [this.annotationKey]: this.annotation(undefined, specs[0]) })
      .then(() => undefined, (err: unknown) => err);
    this.early = { specs, written };
  }

  /** An early announcement whose routes were never added (the tunnel failed first) is taken back. */
  async retract(): Promise<void> {
    const early = this.early;
    this.early = undefined;
    if (!early) return;
    const h = this.host;
    await early.written;
    await annotatePod(h.api, { namespace: h.namespace, name: h.router }, { [this.annotationKey]: null }).catch(() => undefined);
  }

  /** Registers routes; refused routes throw KT_ERR_ROUTE_TAKEN naming the holder (KT_ERR_ROUTE_LIMIT at a cap, KT_ERR_ROUTE_INVALID for a rule the router cannot run). Re-registered after every reconnect. */
  async add(specs: RouteSpec[]): Promise<void> {
    const h = this.host;
    const early = this.early?.specs === specs ? this.early : undefined;
    this.early = undefined;
    const tunnel = await h.session.tunnel();
    const entries = specs.map((spec) => ({ spec, handle: undefined as RouteHandle | undefined }));
    this.routes.push(...entries);
    // The announcement (for status) went out while the tunnel opened, or goes out while the routes are registered.
    const announced = early ? early.written : this.announce().then(() => undefined, (err: unknown) => err);
    try {
      for (const entry of entries) entry.handle = await this.register(tunnel, entry.spec);
    } catch (err) {
      // Refused (KT_ERR_ROUTE_TAKEN): no route of ours, so no announcement either.
      await announced;
      this.routes = this.routes.filter((r) => !entries.includes(r));
      await annotatePod(h.api, { namespace: h.namespace, name: h.router }, { [this.annotationKey]: null }).catch(() => undefined);
      throw err;
    }
    const failed = await announced;
    if (failed !== undefined) {
      const e = toKtError(failed);
      // The router pod was deleted while this session joined it: say so, not "not found".
      if (e.code === 'KT_ERR_API_NOT_FOUND') throw ktError('KT_ERR_ROUTER_GONE', { namespace: h.namespace, service: h.name, reason: `pod ${h.router} was deleted while this session joined it` });
      throw e;
    }
    // The early one had no counts: the router's, now that it holds the routes, follow at once.
    if (early) this.announce().catch((err: unknown) => h.debug(`route announcement failed: ${(err as Error).message}`));
    this.reRegisterOnUp(h.session);
    this.routedAt = Date.now();
    this.heartbeat = setInterval(() => {
      this.announce().catch((err: unknown) => h.debug(`route heartbeat failed: ${(err as Error).message}`));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Every route on a new tunnel (taking the Service over again), and again after each of its reconnects. */
  async registerAll(tunnel: Tunnel): Promise<void> {
    for (const r of this.routes) r.handle = await this.register(tunnel, r.spec, OWN_ROUTE_WAIT_MS);
    this.reRegisterOnUp(this.host.session);
  }

  /** After every reconnect of the session's tunnel the routes go on the router again: they died with the old connection. */
  private reRegisterOnUp(session: ProxySession): void {
    const h = this.host;
    session.on('up', (t) => {
      void (async () => {
        for (const r of this.routes) {
          try {
            r.handle = await this.register(t, r.spec, OWN_ROUTE_WAIT_MS);
          } catch (err) {
            h.progress.note(`cannot register the route for port ${r.spec.servicePort} again: ${toKtError(err).message}`);
          }
        }
        h.debug(`routes registered again on ${h.namespace}/${h.router}`);
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
    const h = this.host;
    const until = performance.now() + patientMs;
    for (;;) {
      try {
        return await requestRoute(tunnel, {
          protocol: PROTOCOL_VERSION,
          kind: h.kind,
          servicePort: spec.servicePort,
          ...(spec.headers ? { headers: spec.headers } : {}),
          owner: h.session.owner,
          session: h.session.id,
        }, { host: '127.0.0.1', port: spec.local });
      } catch (err) {
        if (!(err instanceof RouteRefusedError)) throw toKtError(err);
        const own = err.heldBy === h.session.id;
        if (!own || performance.now() > until || tunnel.closed) {
          throw routeRefusalError(err, { namespace: h.namespace, service: h.name, router: h.router });
        }
        h.debug(`route for port ${spec.servicePort} still held by this session's old connection; asking again`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private annotation(traffic: RouteTraffic | undefined, first: RouteSpec | undefined = this.routes[0]?.spec): string {
    const h = this.host;
    return encodeRouteAnnotation({
      owner: h.session.owner,
      kind: h.kind,
      since: h.session.since,
      heartbeat: iso(new Date()),
      servicePort: first?.servicePort,
      headers: first?.headers ?? [],
      localPort: first?.local,
      ...(traffic ? { traffic } : {}),
    });
  }

  /** Writes this session's route annotation on the router pod (for a mesh with the router's counts). */
  async announce(): Promise<void> {
    const h = this.host;
    if (h.closing) return;
    // The counts ride the heartbeat into the annotation (status and the dashboard read them there).
    const traffic = h.kind === 'mesh' && h.tunnelUp
      ? await h.routerAnswer().then((a) => trafficOf(a, h.session.id, new Date()), (err: unknown) => {
        h.debug(`reading the router's counts: ${(err as Error).message}`);
        return undefined;
      })
      : undefined;
    if (h.closing) return;
    if (traffic) this.sayQuiet(traffic);
    await annotatePod(h.api, { namespace: h.namespace, name: h.router }, { [this.annotationKey]: this.annotation(traffic) });
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
      const line = quietLine(p, traffic.windowSeconds, this.rulesText, this.host.name);
      if (!line) continue;
      this.quietSaid.add(p.servicePort);
      this.host.progress.note(line);
    }
  }

  /** Ends the heartbeat and cancels every registration (the cancel is answered before the next request on the connection). */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await Promise.all(this.routes.map((r) => r.handle?.close().catch(() => undefined)));
  }
}
