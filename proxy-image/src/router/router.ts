// The router role: one per Service, shared by every developer who exchanges
// or meshes it. An SSH server (loopback, reached through pods/portforward)
// where developers register routes for the lifetime of their connection, a
// listener per Service port that routes each connection (raw TCP) or each
// request (HTTP/1.x, h2c, gRPC, WebSocket upgrades), and a health endpoint.
import net from 'node:net';
import type { Duplex } from 'node:stream';
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
import { makeH2Router } from './h2.ts';
import type { H2Router } from './h2.ts';
import { upgradeFields, SWITCHING_TO_H2C, UpgradedH2c } from './h2c.ts';
import { headerLookup } from './http1-parse.ts';
import { HEAD_MS, serveHttp1 } from './http1.ts';
import type { HeaderLookup } from './match.ts';
import { serveRaw } from './raw.ts';
import { sniff } from './sniff.ts';
import { memoryGuard } from './pressure.ts';
import { RouteTable } from './table.ts';
import type { Route } from './table.ts';
import { makeConnector, ORIGIN, Pool } from './upstream.ts';
import type { Connector, RouteLink, Target } from './upstream.ts';

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

interface PortServer {
  port: RouterPort;
  bound: number;
  server: net.Server;
  pool: Pool;
  h2: H2Router;
}

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const log = opts.log ?? debuglog('kt');
  // Per-request, per-stream and per-connection events: a flood must not become a flood of lines.
  const eventLog = rateLimitedLog({ log, burst: 50, intervalMs: 10_000, what: 'router' });
  const guard = memoryGuard({ log, ...(opts.memoryLimitBytes ? { limitBytes: opts.memoryLimitBytes } : {}) });
  const table = new RouteTable<RouteLink>(opts.ports.map((p) => p.servicePort));
  const sockets = new Set<net.Socket>();
  const sniffMs = opts.sniffTimeoutMs ?? 300;
  const servers: PortServer[] = [];
  let ready = false;
  const watched = new Set<string>();
  const counters = new Counters({ ...(opts.countWindowMs ? { windowMs: opts.countWindowMs } : {}) });
  const drain = new Drain({ quietMs: opts.drain?.quietMs ?? DRAIN_DEFAULTS.quietMs, maxMs: opts.drain?.maxMs ?? DRAIN_DEFAULTS.maxMs, log });

  const register = (ctx: ConnContext, req: Parameters<typeof table.add>[0]): RouteReply | RouteRefusal => {
    if (ctx.closed) return { refused: 'the connection is closing' };
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
  table.onRemove((r) => {
    counters.drop(r.id);
    for (const s of servers) {
      s.pool.drop(r.id);
      s.h2.drop(r.id);
    }
  });

  const requests = new Map<string, RequestHandler>([
    [SSH_REQUESTS.route, makeRouteHandler(register)],
    [SSH_REQUESTS.routeCancel, makeRouteCancelHandler((ctx, id) => table.remove(id, ctx.id))],
    [SSH_REQUESTS.hello, makeHelloHandler('router')],
  ]);
  const ssh: SshServer = await startSshServer({
    port: opts.ssh.port,
    ...(opts.ssh.host ? { host: opts.ssh.host } : {}),
    authorizedKeys: opts.ssh.authorizedKeys,
    ...(opts.ssh.hostKey ? { hostKey: opts.ssh.hostKey } : {}),
    ...(opts.ssh.keepaliveMs ? { keepaliveMs: opts.ssh.keepaliveMs } : {}),
    // No idle exit: the Service points at the router; it must never leave by itself.
    requests,
    debug: log,
  });

  const closeAll = async () => {
    for (const s of servers) s.server.close();
    for (const s of sockets) s.destroy();
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
    for (const port of opts.ports) servers.push(await listenPort(port));
    health = await startHealth(opts.health.host ?? '0.0.0.0', opts.health.port, () => ready && !drain.active, () => status(table, counters), () => ({
      windowSeconds: counters.windowMs / 1000,
      ports: opts.ports.map((p) => counters.port(p.servicePort)),
    }));
  } catch (err) {
    await closeAll();
    throw err;
  }
  ready = true;

  async function listenPort(port: RouterPort): Promise<PortServer> {
    const connector: Connector = makeConnector(port, opts.originHost);
    const pool = new Pool();
    const choose = (lookup: HeaderLookup): Target => {
      if (!table.hasRoutes(port.servicePort)) {
        counters.recordUnrouted(port.servicePort);
        return ORIGIN;
      }
      const r = table.decide(port.servicePort, lookup);
      counters.record(port.servicePort, table.routesOn(port.servicePort), r, lookup);
      return r ? { kind: 'route', route: r } : ORIGIN;
    };
    const h2 = makeH2Router({ port, choose, connector, log: eventLog, overloaded: guard.overloaded, drain, ...(opts.idleTimeoutMs ? { idleMs: opts.idleTimeoutMs } : {}) });
    const headMs = opts.headTimeoutMs ?? HEAD_MS;
    const h1deps = {
      choose: (head: { headers: Array<[string, string]> }) => (table.hasRoutes(port.servicePort) ? choose(headerLookup(head.headers)) : choose(noHeaders)),
      connector,
      pool,
      h2cUpgrade: (client: net.Socket, head: Parameters<typeof upgradeFields>[0], rest: Buffer) => {
        client.write(SWITCHING_TO_H2C);
        const stream = new UpgradedH2c(client, rest, upgradeFields(head), headMs);
        stream.on('error', (err) => eventLog(`h2c upgrade: ${err.message}`));
        h2.serve(stream);
      },
      log: eventLog,
      headMs,
      overloaded: guard.overloaded,
      drain,
      ...(opts.idleTimeoutMs ? { idleMs: opts.idleTimeoutMs } : {}),
    };
    // allowHalfOpen: a client may send its request and half-close at once;
    // the answer must still go back (node would otherwise end our side too).
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
      if (guard.overloaded()) {
        eventLog(`router port ${port.servicePort}: connection from ${sock.remoteAddress}:${sock.remotePort} closed: short of memory`);
        sock.resetAndDestroy();
        return;
      }
      drain.connection();
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
      sock.on('error', () => sock.destroy());
      let seen: Buffer = Buffer.alloc(0);
      const decide = (kind: 'h1' | 'h2' | 'raw') => {
        decided = true;
        clearTimeout(timer);
        sock.off('data', onData).off('end', onEnd);
        sock.pause();
        if (kind === 'h1') {
          serveHttp1(sock, seen, h1deps, firstByteAt);
        } else if (kind === 'h2') {
          // node:http2 takes the bytes already buffered on the socket when the session starts.
          sock.unshift(seen);
          h2.serve(sock);
        } else {
          const def = table.defaultRoute(port.servicePort);
          serveRaw(sock, seen, def ? { kind: 'route', route: def } : ORIGIN, connector, eventLog);
        }
      };
      let firstByteAt: number | undefined;
      const onData = (d: Buffer) => {
        firstByteAt ??= Date.now();
        seen = seen.length === 0 ? d : Buffer.concat([seen, d]);
        const kind = sniff(seen);
        if (kind !== 'more') decide(kind);
      };
      let decided = false;
      const onTimeout = () => {
        // Timers run before the loop polls for I/O: after a stall, bytes may
        // be waiting unread. setImmediate runs after the poll, so they get
        // their chance to classify the connection first.
        setImmediate(() => {
          if (!decided) decide(seen.length === 0 ? 'raw' : 'h1');
        });
      };
      const timer = setTimeout(onTimeout, sniffMs);
      const onEnd = () => {
        if (decided) return;
        if (seen.length === 0) {
          clearTimeout(timer);
          sock.destroy();
          return;
        }
        // Ended before the first bytes said what they are: HTTP/1 (which
        // answers 400 to a fragment) if they could be, else plain TCP.
        decide(sniff(seen) === 'raw' ? 'raw' : 'h1');
      };
      sock.on('data', onData);
      sock.once('end', onEnd);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.listenHost ?? '0.0.0.0', port: port.listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Accept errors (EMFILE under a flood) come once per refused connection: rate-limited.
    server.on('error', (err) => eventLog(`router port ${port.servicePort}: ${err.message}`));
    const bound = (server.address() as net.AddressInfo).port;
    log(`router: port ${port.servicePort} listening on ${opts.listenHost ?? '0.0.0.0'}:${bound}, origin ${opts.originHost}:${port.originPort}`);
    return { port, bound, server, pool, h2 };
  }

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

function status(table: RouteTable<RouteLink>, counters: Counters): RouteStatus[] {
  return table.list().map((r) => ({ ...RouteTable.view(r), connections: r.handle.active(), ...(r.kind === 'mesh' ? { counts: counters.route(r.id) } : {}) }));
}

/** The lookup of a request whose headers nobody needs to read (no route on its port). */
const noHeaders: HeaderLookup = () => undefined;

/** Opens forwarded-tcpip channels to the developer on the route's own SSH connection. */
function routeLink(ctx: ConnContext, route: () => Route<RouteLink> | undefined): RouteLink {
  let active = 0;
  return {
    active: () => active,
    open(from) {
      const r = route();
      if (!r || ctx.closed) return Promise.reject(new Error('the route is gone'));
      return new Promise<Duplex>((resolve, reject) => {
        // RFC 4254 §7.2: "address that was connected" / "port that was
        // connected" — the route's address and the Service port, which the
        // plugin's requestRoute matches to hand the channel to its local port.
        ctx.conn.forwardOut(r.address, r.servicePort, from.ip || '0.0.0.0', from.port, (err, channel) => {
          if (err) {
            reject(new Error(`the developer refused the channel: ${err.message}`));
            return;
          }
          active++;
          channel.once('close', () => active--);
          resolve(channel);
        });
      });
    },
  };
}
