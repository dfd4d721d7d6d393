// One listener per Service port: each accepted connection is classified by
// its first bytes (sniff.ts) and served as HTTP/1 (http1.ts), HTTP/2 (h2.ts)
// or plain TCP to the port's default route (raw.ts); every request is routed
// against the route table (ARCHITECTURE.md rule 2).
import net from 'node:net';
import type { RouterPort } from '../../../contract/protocol.ts';
import type { Counters } from './counters.ts';
import type { Drain } from './drain.ts';
import { makeH2Router } from './h2.ts';
import type { H2Router } from './h2.ts';
import { upgradeFields, SWITCHING_TO_H2C, UpgradedH2c } from './h2c.ts';
import { headerLookup } from './http1-parse.ts';
import type { RequestHead } from './http1-parse.ts';
import { serveHttp1 } from './http1.ts';
import type { Http1Deps } from './http1.ts';
import type { HeaderLookup } from './match.ts';
import type { MemoryGuard } from './pressure.ts';
import { serveRaw } from './raw.ts';
import { sniff } from './sniff.ts';
import type { RouteTable } from './table.ts';
import { makeConnector, ORIGIN, Pool } from './upstream.ts';
import type { Connector, RouteLink, Target } from './upstream.ts';

/** What every port of one router shares. */
export interface PortContext {
  /** Who listens, for the log: the router (default) or its standby. */
  name?: string;
  table: RouteTable<RouteLink>;
  counters: Counters;
  guard: MemoryGuard;
  drain: Drain;
  /** Every client connection, to destroy on close. */
  sockets: Set<net.Socket>;
  originHost: string;
  listenHost: string;
  /**
   * SO_REUSEPORT on the Service ports: the router and its standby
   * (standby.ts) bind the same ports in one pod, one after the other.
   */
  reusePort?: boolean;
  sniffMs: number;
  headMs: number;
  idleTimeoutMs?: number;
  log(msg: string): void;
  /** Rate-limited: per-request and per-connection events. */
  eventLog(msg: string): void;
}

export interface PortServer {
  port: RouterPort;
  bound: number;
  server: net.Server;
  pool: Pool;
  h2: H2Router;
}

/** The lookup of a request whose headers nobody needs to read (no route on its port). */
const noHeaders: HeaderLookup = () => undefined;

/** Where a request on this port goes, counted (counters.ts). */
function chooser(ctx: PortContext, port: RouterPort): (lookup: HeaderLookup) => Target {
  const { table, counters } = ctx;
  return (lookup) => {
    if (!table.hasRoutes(port.servicePort)) {
      counters.recordUnrouted(port.servicePort);
      return ORIGIN;
    }
    const r = table.decide(port.servicePort, lookup);
    counters.record(port.servicePort, table.routesOn(port.servicePort), r, lookup);
    return r ? { kind: 'route', route: r } : ORIGIN;
  };
}

function http1Deps(ctx: PortContext, port: RouterPort, choose: (lookup: HeaderLookup) => Target, connector: Connector, pool: Pool, h2: H2Router): Http1Deps {
  return {
    choose: (head) => (ctx.table.hasRoutes(port.servicePort) ? choose(headerLookup(head.headers)) : choose(noHeaders)),
    connector,
    pool,
    h2cUpgrade: (client: net.Socket, head: RequestHead, rest: Buffer) => {
      client.write(SWITCHING_TO_H2C);
      const stream = new UpgradedH2c(client, rest, upgradeFields(head), ctx.headMs);
      stream.on('error', (err) => ctx.eventLog(`h2c upgrade: ${err.message}`));
      h2.serve(stream);
    },
    log: ctx.eventLog,
    headMs: ctx.headMs,
    overloaded: ctx.guard.overloaded,
    drain: ctx.drain,
    ...(ctx.idleTimeoutMs ? { idleMs: ctx.idleTimeoutMs } : {}),
  };
}

/** A port made ready to listen: everything but the bind, so a standby taking over (standby.ts) binds at once. */
export interface PreparedPort {
  /** Binds now (synchronously, when the host is an address); resolves once it listens. */
  listen(listenPort?: number): Promise<PortServer>;
  /** Gives up a port that never listened. */
  discard(): void;
}

export async function listenPort(ctx: PortContext, port: RouterPort): Promise<PortServer> {
  return preparePort(ctx, port).listen();
}

export function preparePort(ctx: PortContext, port: RouterPort): PreparedPort {
  const connector: Connector = makeConnector(port, ctx.originHost);
  const pool = new Pool();
  const choose = chooser(ctx, port);
  const h2 = makeH2Router({ port, choose, connector, log: ctx.eventLog, overloaded: ctx.guard.overloaded, drain: ctx.drain, ...(ctx.idleTimeoutMs ? { idleMs: ctx.idleTimeoutMs } : {}) });
  const h1deps = http1Deps(ctx, port, choose, connector, pool, h2);
  const serve = (sock: net.Socket, kind: 'h1' | 'h2' | 'raw', seen: Buffer, firstByteAt: number | undefined) => {
    if (kind === 'h1') {
      serveHttp1(sock, seen, h1deps, firstByteAt);
    } else if (kind === 'h2') {
      // node:http2 takes the bytes already buffered on the socket when the session starts.
      sock.unshift(seen);
      h2.serve(sock);
    } else {
      const def = ctx.table.defaultRoute(port.servicePort);
      serveRaw(sock, seen, def ? { kind: 'route', route: def } : ORIGIN, connector, ctx.eventLog);
    }
  };
  // allowHalfOpen: a client may send its request and half-close at once;
  // the answer must still go back (node would otherwise end our side too).
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
    if (ctx.guard.overloaded()) {
      ctx.eventLog(`router port ${port.servicePort}: connection from ${sock.remoteAddress}:${sock.remotePort} closed: short of memory`);
      sock.resetAndDestroy();
      return;
    }
    ctx.drain.connection();
    ctx.sockets.add(sock);
    sock.once('close', () => ctx.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    classify(sock, ctx.sniffMs, (kind, seen, firstByteAt) => serve(sock, kind, seen, firstByteAt));
  });
  return {
    async listen(listenAt = port.listenPort) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: ctx.listenHost, port: listenAt, ...(ctx.reusePort ? { reusePort: true } : {}) }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // Accept errors (EMFILE under a flood) come once per refused connection: rate-limited.
      server.on('error', (err) => ctx.eventLog(`router port ${port.servicePort}: ${err.message}`));
      const bound = (server.address() as net.AddressInfo).port;
      ctx.log(`${ctx.name ?? 'router'}: port ${port.servicePort} listening on ${ctx.listenHost}:${bound}, origin ${ctx.originHost}:${port.originPort}`);
      return { port, bound, server, pool, h2 };
    },
    discard() {
      pool.close();
      h2.close();
    },
  };
}

/**
 * Reads a new connection's first bytes until they say what it is; the
 * socket is paused when `decide` gets it, with the bytes seen so far and
 * when the first of them came (Date.now()).
 */
function classify(sock: net.Socket, sniffMs: number, decide: (kind: 'h1' | 'h2' | 'raw', seen: Buffer, firstByteAt: number | undefined) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  let decided = false;
  let firstByteAt: number | undefined;
  const done = (kind: 'h1' | 'h2' | 'raw') => {
    decided = true;
    clearTimeout(timer);
    sock.off('data', onData).off('end', onEnd);
    sock.pause();
    decide(kind, seen, firstByteAt);
  };
  const onData = (d: Buffer) => {
    firstByteAt ??= Date.now();
    seen = seen.length === 0 ? d : Buffer.concat([seen, d]);
    const kind = sniff(seen);
    if (kind !== 'more') done(kind);
  };
  const onTimeout = () => {
    // Timers run before the loop polls for I/O: after a stall, bytes may
    // be waiting unread. setImmediate runs after the poll, so they get
    // their chance to classify the connection first.
    setImmediate(() => {
      if (!decided) done(seen.length === 0 ? 'raw' : 'h1');
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
    done(sniff(seen) === 'raw' ? 'raw' : 'h1');
  };
  sock.on('data', onData);
  sock.once('end', onEnd);
}
