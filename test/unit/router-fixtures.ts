// Shared pieces for the router tests: a router in-process with the echo demo
// app as origin, developers as real SSH tunnels (the plugin's client) whose
// routes deliver to their own echo "laptop", and small HTTP helpers.
import net from 'node:net';
import type { TestContext } from 'node:test';
import { startEcho } from '../fixtures/echo/app.ts';
import type { EchoServer } from '../fixtures/echo/app.ts';
import { PROTOCOL_VERSION } from '../../proxy-image/src/protocol/index.ts';
import type { HeaderMatch, RouteRequest } from '../../proxy-image/src/protocol/index.ts';
import { startRouter } from '../../proxy-image/src/router/index.ts';
import type { Router, RouterOptions } from '../../proxy-image/src/router/index.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import type { RouteHandle, Tunnel } from '../../plugin/src/tunnel/index.ts';

export const SERVICE_PORT = 80;

export function echo(pod: string): Promise<EchoServer> {
  return startEcho({ port: 0, host: '127.0.0.1', pod, namespace: 'test', ip: '127.0.0.1', log: () => {} });
}

export interface Bed {
  router: Router;
  origin: EchoServer;
  /** The router's listener for SERVICE_PORT. */
  port: number;
  logs: string[];
  dev(name: string, route: Partial<RouteRequest> & { headers?: HeaderMatch[] }, opts?: { local?: number }): Promise<Dev>;
}

export interface Dev {
  tunnel: Tunnel;
  route: RouteHandle;
  laptop?: EchoServer;
}

/** A router with an echo origin ("origin-pod"); everything is closed after the test. */
export async function bed(t: TestContext, extra: Partial<RouterOptions> = {}, originPort?: number): Promise<Bed> {
  const key = makeSessionKey();
  const origin = await echo('origin-pod');
  const logs: string[] = [];
  const router = await startRouter({
    ports: [{ name: 'http', servicePort: SERVICE_PORT, listenPort: 0, originPort: originPort ?? origin.port }],
    originHost: '127.0.0.1',
    listenHost: '127.0.0.1',
    ssh: { port: 0, authorizedKeys: [key.publicKey] },
    health: { host: '127.0.0.1', port: 0 },
    log: (l) => logs.push(l),
    ...extra,
  });
  const closers: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
    await router.close();
    await origin.close();
  });
  return {
    router,
    origin,
    port: router.listenPort(SERVICE_PORT),
    logs,
    async dev(name, route, opts = {}) {
      const laptop = opts.local === undefined ? await echo(name) : undefined;
      const tunnel = await openTunnel({ stream: net.connect(router.sshPort, '127.0.0.1'), privateKey: key.privateKey });
      closers.push(async () => {
        await tunnel.close();
        await laptop?.close();
      });
      const req: RouteRequest = {
        protocol: PROTOCOL_VERSION,
        kind: 'mesh',
        servicePort: SERVICE_PORT,
        owner: `${name}@laptop`,
        session: `s-${name}`,
        ...route,
      };
      const handle = await requestRoute(tunnel, req, { host: '127.0.0.1', port: opts.local ?? (laptop as EchoServer).port });
      return { tunnel, route: handle, ...(laptop ? { laptop } : {}) };
    },
  };
}

export const tag = (value: string): HeaderMatch[] => [{ name: 'x-kt-version', value }];

/** One HTTP/1.1 GET with node's fetch-free client; returns the answering pod. */
export async function whoAnswers(port: number, headers: Record<string, string> = {}, path = '/'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  const body = (await res.json()) as { pod: string };
  return body.pod;
}
