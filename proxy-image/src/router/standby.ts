// The router pod's second container, and the router's link to it. When the
// router's process dies (an OOM kill takes its whole container), the kubelet
// starts it again in the same pod — about a second on a quiet node, ten or
// more in crash-loop back-off. The standby serves the Service's ports
// meanwhile, everything to the origin Service (what the router does with a
// request no live route claims: ARCHITECTURE.md rule 1), so untagged
// traffic keeps flowing; the Service publishes not-ready addresses while a
// router holds it, so the pod stays its endpoint while one container is down.
//
// The two never serve at once. The standby listens on an abstract unix
// socket (STANDBY_SOCKET, in the pod's network namespace). The router binds
// the Service ports (SO_REUSEPORT, as the standby does), then connects there;
// the standby stops listening, tells its clients to move (drain.ts: HTTP/1.1
// answers carry `Connection: close`, HTTP/2 gets GOAWAY, so their next
// request reaches the router), and answers `released`: only then is the
// router ready. The connection's end is the router's death: the standby
// binds the ports again at once.
//
// Left open: the connections in the router's accept queue when it dies, and
// a SYN that arrives in the instant between its sockets closing and the
// standby's bind, are reset (the kernel cannot hand a listening socket's
// queue to another process here, and Node cannot pass a socket to a process
// it did not start).
import net from 'node:net';
import type { RouterPort } from '../../../contract/protocol.ts';
import { rateLimitedLog } from '../ratelog.ts';
import { Counters } from './counters.ts';
import { Drain } from './drain.ts';
import { HEAD_MS } from './http1.ts';
import { preparePort } from './port.ts';
import type { PortContext, PortServer, PreparedPort } from './port.ts';
import { memoryGuard } from './pressure.ts';
import { RouteTable } from './table.ts';
import type { RouteLink } from './upstream.ts';

/** The standby's answer once it no longer listens: the router may take traffic. */
const RELEASED = 'released\n';

/** An abstract socket's address for node:net (Linux: a leading NUL byte). */
function abstract(name: string): string {
  return `\0${name}`;
}

export interface StandbyOptions {
  ports: readonly RouterPort[];
  /** Where everything goes while the standby serves: the origin Service. */
  originHost: string;
  /** Default 0.0.0.0 (the pod IP). */
  listenHost?: string;
  /** The abstract socket's name (no leading NUL). */
  socket: string;
  /**
   * At start, how long to wait for a router to link before serving: a
   * standby restarted beside a live router must not take half its traffic.
   * Default 1 s.
   */
  startMs?: number;
  /** How a handed-over serving ends (drain.ts). */
  drain: { quietMs: number; maxMs: number };
  log: (msg: string) => void;
  /** Told each time the standby starts (true) or stops (false) listening on the Service ports. */
  onChange?: (serving: boolean) => void;
}

export interface Standby {
  /** Whether the standby listens on the Service ports now. */
  serving(): boolean;
  /** The ports it binds (the first bind's, when a RouterPort asked for 0). */
  bound(servicePort: number): number | undefined;
  /** Stops serving and linking; what it served drains (SIGTERM). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** The bind's own path once, on a port nobody uses: node loads and compiles it on first use (tens of ms on a loaded node). */
function warmListen(host: string): Promise<void> {
  return new Promise((resolve) => {
    const warm = net.createServer();
    warm.once('error', () => resolve());
    warm.listen({ host, port: 0, reusePort: true }, () => warm.close(() => resolve()));
  });
}

export async function startStandby(opts: StandbyOptions): Promise<Standby> {
  const { log } = opts;
  const eventLog = rateLimitedLog({ log, burst: 50, intervalMs: 10_000, what: 'standby' });
  const guard = memoryGuard({ log });
  // Never a route: every request goes to the origin.
  const table = new RouteTable<RouteLink>(opts.ports.map((p) => p.servicePort));
  const counters = new Counters();
  const bound = new Map<number, number>();
  const links = new Set<net.Socket>();
  /** What was served and is draining. */
  const draining = new Set<Promise<void>>();
  let stopping = false;

  /**
   * Everything but the bind, made before it is needed: a taking over must
   * bind in the turn of the loop that learns the router is gone, with no
   * code to compile first (on a loaded node that took 30-130 ms).
   */
  const prepare = (): { ctx: PortContext; ports: PreparedPort[] } => {
    const ctx: PortContext = {
      name: 'standby',
      table,
      counters,
      guard,
      drain: new Drain({ ...opts.drain, log }),
      sockets: new Set(),
      originHost: opts.originHost,
      listenHost: opts.listenHost ?? '0.0.0.0',
      reusePort: true,
      sniffMs: 300,
      headMs: HEAD_MS,
      log,
      eventLog,
    };
    return { ctx, ports: opts.ports.map((p) => preparePort(ctx, p)) };
  };
  let next = prepare();
  await warmListen(opts.listenHost ?? '0.0.0.0');
  /** Serving now: its servers, once bound (a port that could not be bound is left out and logged). */
  let serving: { ctx: PortContext; servers: Promise<PortServer[]> } | undefined;

  const serve = (why: () => string): void => {
    if (serving || stopping || links.size > 0) return;
    const { ctx, ports } = next;
    const servers = Promise.allSettled(ports.map((p, i) => p.listen(bound.get(opts.ports[i].servicePort) ?? opts.ports[i].listenPort))).then((all) => {
      const up: PortServer[] = [];
      for (const [i, r] of all.entries()) {
        if (r.status === 'fulfilled') {
          bound.set(r.value.port.servicePort, r.value.bound);
          up.push(r.value);
        } else {
          log(`standby: cannot listen for service port ${opts.ports[i].servicePort}: ${(r.reason as Error).message}`);
        }
      }
      log(`standby: serving every request to the origin: ${why()}`);
      opts.onChange?.(true);
      return up;
    });
    serving = { ctx, servers };
    next = prepare();
  };

  /** Stops listening; what it served is told to move and drains. Resolves once it no longer listens. */
  const release = async (why: string): Promise<void> => {
    const s = serving;
    if (!s) return;
    serving = undefined;
    const servers = await s.servers;
    for (const x of servers) x.server.close();
    log(`standby: released the ports: ${why}`);
    opts.onChange?.(false);
    const done = s.ctx.drain.start().then(() => {
      for (const x of servers) {
        x.pool.close();
        x.h2.close();
      }
      draining.delete(done);
    });
    draining.add(done);
  };

  const link = net.createServer((sock) => {
    links.add(sock);
    // The router's end: its process is gone (or it closed the link on its way out).
    let ended = false;
    const gone = (): void => {
      if (ended) return;
      ended = true;
      links.delete(sock);
      const since = performance.now();
      if (links.size === 0) serve(() => `the router is gone (bound ${(performance.now() - since).toFixed(1)} ms after its link ended)`);
    };
    sock.on('end', gone);
    sock.on('error', () => sock.destroy());
    sock.once('close', gone);
    sock.resume();
    log(serving ? 'standby: the router linked; releasing the ports' : 'standby: the router linked');
    // A turn of the loop first: a listener closed now would reset the
    // connections it has queued and not yet accepted.
    setImmediate(() => void release('the router is back').then(() => {
      if (!sock.destroyed) sock.write(RELEASED);
    }));
  });
  await new Promise<void>((resolve, reject) => {
    link.once('error', reject);
    link.listen(abstract(opts.socket), () => {
      link.off('error', reject);
      resolve();
    });
  });
  const startTimer = setTimeout(() => serve(() => `no router linked within ${opts.startMs ?? 1000} ms of the start`), opts.startMs ?? 1000);

  const stop = async (): Promise<void> => {
    stopping = true;
    clearTimeout(startTimer);
    link.close();
    for (const s of links) s.destroy();
    await release('stopping');
    for (const p of next.ports) p.discard();
    await Promise.all(draining);
  };
  let closing: Promise<void> | undefined;
  return {
    serving: () => serving !== undefined,
    bound: (servicePort) => bound.get(servicePort),
    drain: stop,
    close() {
      closing ??= (async () => {
        await stop();
        eventLog.close();
        guard.close();
      })();
      return closing;
    },
  };
}

export interface StandbyLink {
  /** The standby has let go of the ports and the router is linked to it. */
  linked(): boolean;
  close(): void;
}

export interface LinkOptions {
  log: (msg: string) => void;
  /** How soon to try again when the standby is not there. Default 100 ms. */
  retryMs?: number;
  /** Told each time the link comes up (true) or ends (false). */
  onChange?: (linked: boolean) => void;
}

/**
 * The router's side: connects to the standby once its own ports listen, and
 * again whenever the connection ends (the standby restarted), every
 * `retryMs` until it answers.
 */
export function linkStandby(socket: string, opts: LinkOptions): StandbyLink {
  const { log, retryMs = 100 } = opts;
  let linked = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  const connect = (): void => {
    timer = undefined;
    if (closed) return;
    const sock = net.connect(abstract(socket));
    let answer = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      answer += d;
      if (!linked && answer.includes(RELEASED)) {
        linked = true;
        failing = false;
        log('router: the standby let go of the ports');
        opts.onChange?.(true);
      }
    });
    sock.on('error', (err) => {
      if (!failing) log(`router: no standby on ${socket} (${err.message}); trying every ${retryMs} ms`);
      failing = true;
    });
    sock.once('close', () => {
      if (linked) {
        log('router: the standby is gone; linking again when it is back');
        linked = false;
        opts.onChange?.(false);
      }
      if (!closed) timer = setTimeout(connect, retryMs);
    });
    current = sock;
  };
  let current: net.Socket | undefined;
  connect();
  return {
    linked: () => linked,
    close() {
      closed = true;
      clearTimeout(timer);
      current?.destroy();
    },
  };
}
