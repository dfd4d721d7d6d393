// The router role: one per Service, shared by every developer who exchanges
// or meshes it. An SSH server (loopback, reached through pods/portforward)
// where developers register routes for the lifetime of their connection
// (the channels back to them: route-link.ts), a listener per Service port
// that routes each connection (raw TCP) or each request (HTTP/1.x, h2c,
// gRPC, WebSocket upgrades; port.ts), and a health endpoint.
import { debuglog } from 'node:util';
import { SSH_REQUESTS } from '../../../contract/protocol.ts';
import type { RouteRefusal, RouteReply, RouterPort } from '../../../contract/protocol.ts';
import { rateLimitedLog } from '../ratelog.ts';
import type { ConnContext } from '../ssh/context.ts';
import { makeHelloHandler } from '../ssh/hello-handler.ts';
import type { RequestHandler } from '../ssh/policy.ts';
import { makeRouteCancelHandler, makeRouteHandler } from '../ssh/route-handler.ts';
import { startSshServer } from '../ssh/server.ts';
import type { SshServer } from '../ssh/server.ts';
import { Counters } from './counters.ts';
import { Drain, DRAIN_DEFAULTS } from './drain.ts';
import { startHealth } from './health.ts';
import type { HealthServer, RouteStatus } from './health.ts';
import { HEAD_MS } from './http1.ts';
import { listenPort } from './port.ts';
import type { PortContext, PortServer } from './port.ts';
import { memoryGuard } from './pressure.ts';
import { linkStandby } from './standby.ts';
import type { StandbyLink } from './standby.ts';
import { routeLink } from './route-link.ts';
import { RouteTable } from './table.ts';
import type { Route } from './table.ts';
import type { RouteLink } from './upstream.ts';

export interface RouterOptions {
  ports: readonly RouterPort[];
  /** Where the origin Service is (its DNS name; a test passes 127.0.0.1). */
  originHost: string;
  /** Address the Service ports listen on. Default 0.0.0.0 (the pod IP). */
  listenHost?: string;
  ssh: {
    port: number;
    host?: string;
    authorizedKeys: readonly string[];
    hostKey?: string | Buffer;
    keepaliveMs?: number;
  };
  health: { host?: string; port: number };
  /**
   * A connection that sends nothing for this long is taken as a protocol
   * where the server speaks first (MySQL, SMTP) and goes to the default
   * route. Default 300 ms.
   */
  sniffTimeoutMs?: number;
  /** HTTP/1 keep-alive and HTTP/2 connection idle limit. Default 120 s. */
  idleTimeoutMs?: number;
  /** The window of the per-route counters (router/counters.ts); default 60 s. */
  countWindowMs?: number;
  /** An HTTP/1 request head (and an h2c client's preface) must be complete this long after its first byte. Default 30 s (http1.ts HEAD_MS). */
  headTimeoutMs?: number;
  /** Memory limit guarded by pressure.ts; default the cgroup's (process.constrainedMemory()). */
  memoryLimitBytes?: number;
  /** How drain() ends (drain.ts); defaults DRAIN_DEFAULTS. */
  drain?: { quietMs?: number; maxMs?: number };
  /**
   * The standby's abstract socket (standby.ts): the Service ports are bound
   * with SO_REUSEPORT, and the router is ready only once the standby has let
   * go of them. Unset: a router alone.
   */
  standby?: string;
  log?: (msg: string) => void;
}

export interface Router {
  sshPort: number;
  healthPort: number;
  /** The port actually listened on for a Service port (differs from listenPort when that was 0). */
  listenPort(servicePort: number): number;
  routes(): RouteStatus[];
  /**
   * The graceful way out (SIGTERM; see drain.ts): unready at once, every
   * connection still served, clients told to move; resolves when the router
   * may close (quiet and idle, or the deadline).
   */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const log = opts.log ?? debuglog('kt');
  // Per-request, per-stream and per-connection events: a flood must not become a flood of lines.
  const eventLog = rateLimitedLog({ log, burst: 50, intervalMs: 10_000, what: 'router' });
  const guard = memoryGuard({ log, ...(opts.memoryLimitBytes ? { limitBytes: opts.memoryLimitBytes } : {}) });
  const table = new RouteTable<RouteLink>(opts.ports.map((p) => p.servicePort));
  const counters = new Counters({ ...(opts.countWindowMs ? { windowMs: opts.countWindowMs } : {}) });
  const drain = new Drain({ quietMs: opts.drain?.quietMs ?? DRAIN_DEFAULTS.quietMs, maxMs: opts.drain?.maxMs ?? DRAIN_DEFAULTS.maxMs, log });
  const ctx: PortContext = {
    table,
    counters,
    guard,
    drain,
    sockets: new Set(),
    originHost: opts.originHost,
    listenHost: opts.listenHost ?? '0.0.0.0',
    ...(opts.standby ? { reusePort: true } : {}),
    sniffMs: opts.sniffTimeoutMs ?? 300,
    headMs: opts.headTimeoutMs ?? HEAD_MS,
    ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    log,
    eventLog,
  };
  const servers: PortServer[] = [];
  let ready = false;
  let standby: StandbyLink | undefined;
  table.onRemove((r) => {
    counters.drop(r.id);
    for (const s of servers) {
      s.pool.drop(r.id);
      s.h2.drop(r.id);
    }
  });
  const ssh = await startRouterSsh(opts, makeRegister(table, log, () => drain.active), table, log);

  const closeAll = async () => {
    // The standby binds the ports as the link ends: before they close here, so no SYN finds none.
    standby?.close();
    for (const s of servers) s.server.close();
    for (const s of ctx.sockets) s.destroy();
    for (const s of servers) {
      s.pool.close();
      s.h2.close();
    }
    await ssh.close();
    eventLog.close();
    guard.close();
  };

  let health: HealthServer | undefined;
  try {
    for (const port of opts.ports) servers.push(await listenPort(ctx, port));
    // Once the ports listen here: the standby stops listening when it is told.
    if (opts.standby) standby = linkStandby(opts.standby, { log });
    const link = standby;
    health = await startHealth(opts.health.host ?? '0.0.0.0', opts.health.port, () => ready && !drain.active && (link?.linked() ?? true), () => status(table, counters), () => ({
      windowSeconds: counters.windowMs / 1000,
      ports: opts.ports.map((p) => counters.port(p.servicePort)),
    }));
  } catch (err) {
    await closeAll();
    throw err;
  }
  ready = true;

  let closing: Promise<void> | undefined;
  const h = health;
  return {
    sshPort: ssh.port,
    healthPort: h.port,
    listenPort(servicePort) {
      const s = servers.find((x) => x.port.servicePort === servicePort);
      if (!s) throw new Error(`no router port for service port ${servicePort}`);
      return s.bound;
    },
    routes: () => status(table, counters),
    drain: () => drain.start(),
    close() {
      closing ??= (async () => {
        ready = false;
        await Promise.all([closeAll(), h.close()]);
      })();
      return closing;
    },
  };
}

/** The SSH server developers register their routes on (loopback; reached through pods/portforward). */
function startRouterSsh(opts: RouterOptions, register: ReturnType<typeof makeRegister>, table: RouteTable<RouteLink>, log: (msg: string) => void): Promise<SshServer> {
  const requests = new Map<string, RequestHandler>([
    [SSH_REQUESTS.route, makeRouteHandler(register)],
    [SSH_REQUESTS.routeCancel, makeRouteCancelHandler((ctx, id) => table.remove(id, ctx.id))],
    [SSH_REQUESTS.hello, makeHelloHandler('router')],
  ]);
  return startSshServer({
    port: opts.ssh.port,
    ...(opts.ssh.host ? { host: opts.ssh.host } : {}),
    authorizedKeys: opts.ssh.authorizedKeys,
    ...(opts.ssh.hostKey ? { hostKey: opts.ssh.hostKey } : {}),
    ...(opts.ssh.keepaliveMs ? { keepaliveMs: opts.ssh.keepaliveMs } : {}),
    // No idle exit: the Service points at the router; it must never leave by itself.
    requests,
    debug: log,
  });
}

/**
 * kt-route@kt.dev's handler body: adds the route to the table for the
 * connection's lifetime. None while the router drains (`leaving`): its pod
 * is being deleted, and a route would go with it.
 */
function makeRegister(table: RouteTable<RouteLink>, log: (msg: string) => void, leaving: () => boolean): (ctx: ConnContext, req: Parameters<RouteTable<RouteLink>['add']>[0]) => RouteReply | RouteRefusal {
  /** Connections whose close already removes their routes. */
  const watched = new Set<string>();
  return (ctx, req) => {
    if (ctx.closed) return { refused: 'the connection is closing', code: 'closing' };
    if (leaving()) return { refused: 'the router is leaving (its pod is being deleted; it drains before it exits)', code: 'leaving' };
    // The link needs the route's address, which the table assigns: a late binding.
    const ref: { route?: Route<RouteLink> } = {};
    const link = routeLink(ctx, () => ref.route);
    const added = table.add(req, ctx.id, link);
    if ('refused' in added) return added;
    const route = (ref.route = added.route);
    if (!watched.has(ctx.id)) {
      watched.add(ctx.id);
      // ARCHITECTURE.md rule 1: routes live exactly as long as the connection that made them.
      ctx.conn.once('close', () => {
        watched.delete(ctx.id);
        for (const r of table.removeHolder(ctx.id)) log(`route ${r.id} of ${r.owner} gone with its connection`);
      });
    }
    log(`route ${route.id}: ${route.kind} port ${route.servicePort} for ${route.owner} (${route.session})`);
    return { id: route.id, address: route.address };
  };
}

function status(table: RouteTable<RouteLink>, counters: Counters): RouteStatus[] {
  return table.list().map((r) => ({ ...RouteTable.view(r), connections: r.handle.active(), ...(r.kind === 'mesh' ? { counts: counters.route(r.id) } : {}) }));
}
