// The router's health and status endpoint (PORTS.routerHealth): /healthz
// answers 200 once every listener is up and the pod's standby has let go of
// the ports (standby.ts) (the readiness probe: the selector
// moves to the router only after this, ARCHITECTURE.md rule 1), /routes lists the
// routes for `kubectl kt status`.
import net from 'node:net';
import type { PortCounts, RouteCounts } from './counters.ts';
import type { RouteView } from './table.ts';

export interface RouteStatus extends RouteView {
  /** Channels to the developer open now. */
  connections: number;
  /** What the route saw in the last count window (router/counters.ts). */
  counts?: RouteCounts;
}

/** Per-port counts for /routes, and the window they cover. */
export interface TrafficStatus {
  windowSeconds: number;
  ports: PortCounts[];
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Bytes a request head may take; a longer one is answered 431 and closed. */
const MAX_HEAD = 8192;
/** A connection that has not sent its whole head by then is closed. */
const HEAD_TIMEOUT_MS = 10_000;

interface Answer {
  status: 200 | 404 | 405 | 431 | 503;
  type: string;
  body: string;
}

const REASONS: Record<Answer['status'], string> = { 200: 'OK', 404: 'Not Found', 405: 'Method Not Allowed', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' };

/**
 * One request per connection, answered with Connection: close: the
 * kubelet's probes and the plugin's /routes reads ask once and go. Plain
 * net, not node:http, which would cost an idle router about 3 MiB resident
 * for two fixed answers (test/bench/memory.bench.ts).
 */
function serve(sock: net.Socket, answer: (method: string, path: string) => Answer): void {
  let head = '';
  const reply = (a: Answer) => {
    const body = Buffer.from(a.body);
    sock.end(`HTTP/1.1 ${a.status} ${REASONS[a.status]}\r\ncontent-type: ${a.type}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${a.body}`);
    sock.removeAllListeners('data');
  };
  sock.setTimeout(HEAD_TIMEOUT_MS, () => sock.destroy());
  sock.on('error', () => {});
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    head += d;
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) reply({ status: 431, type: 'text/plain', body: 'request head too large\n' });
      return;
    }
    const [method = '', target = '/'] = head.slice(0, head.indexOf('\r\n')).split(' ');
    reply(answer(method, target.split('?')[0]));
  });
}

export async function startHealth(host: string, port: number, ready: () => boolean, routes: () => RouteStatus[], traffic?: () => TrafficStatus): Promise<HealthServer> {
  const open = new Set<net.Socket>();
  const answer = (method: string, path: string): Answer => {
    if (method !== 'GET') return { status: 405, type: 'text/plain', body: 'GET /healthz or /routes\n' };
    if (path === '/healthz') {
      const ok = ready();
      return ok ? { status: 200, type: 'text/plain', body: 'ok\n' } : { status: 503, type: 'text/plain', body: 'not ready (starting or draining)\n' };
    }
    if (path === '/routes') return { status: 200, type: 'application/json', body: JSON.stringify({ routes: routes(), ...traffic?.() }) + '\n' };
    return { status: 404, type: 'text/plain', body: 'not found: try /healthz or /routes\n' };
  };
  const server = net.createServer((sock) => {
    open.add(sock);
    sock.once('close', () => open.delete(sock));
    serve(sock, answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      // Later errors are accept failures (EMFILE while a flood holds every
      // descriptor): without a listener they would end the process; the
      // probe that could not connect is simply retried by the kubelet.
      server.on('error', () => {});
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of open) sock.destroy();
      }),
  };
}
