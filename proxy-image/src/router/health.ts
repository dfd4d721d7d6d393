// The router's health and status endpoint (PORTS.routerHealth): /healthz
// answers 200 once every listener is up (the readiness probe: the selector
// moves to the router only after this, ARCHITECTURE.md rule 1), /routes lists the
// routes for `kubectl kt status`.
import http from 'node:http';
import type net from 'node:net';
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

export async function startHealth(host: string, port: number, ready: () => boolean, routes: () => RouteStatus[], traffic?: () => TrafficStatus): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready (starting or draining)\n');
    } else if (path === '/routes') {
      const body = JSON.stringify({ routes: routes(), ...traffic?.() }) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /healthz or /routes\n');
    }
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
        server.closeAllConnections();
      }),
  };
}
