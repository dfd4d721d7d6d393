// Shared pieces for the router tests: a router in-process with the echo demo
// app as origin, developers as real SSH tunnels (the plugin's client) whose
// routes deliver to their own echo "laptop", and small HTTP helpers.
import type http2 from 'node:http2';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { startEcho } from '../fixtures/echo/app.ts';
import type { EchoServer } from '../fixtures/echo/app.ts';
import { grpcClient, grpcServer } from '../fixtures/grpc/kt-echo.ts';
import { PROTOCOL_VERSION } from '../../contract/protocol.ts';
import type { HeaderMatch, RouteRequest } from '../../contract/protocol.ts';
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
  /** The TCP socket under the SSH connection (destroy it to act out a killed plugin). */
  socket: net.Socket;
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
      const socket = net.connect(router.sshPort, '127.0.0.1');
      const tunnel = await openTunnel({ stream: socket, privateKey: key.privateKey });
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
      return { tunnel, socket, route: handle, ...(laptop ? { laptop } : {}) };
    },
  };
}

export const tag = (value: string): HeaderMatch[] => [{ name: 'x-kt-version', value }];

/** One request on an h2 session; the status and the answering pod. */
export function h2Who(session: http2.ClientHttp2Session, headers: Record<string, string | string[]>, path = '/who'): Promise<{ status: number; pod: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      try {
        resolve({ status, pod: (JSON.parse(body) as { pod: string }).pod });
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
    req.end();
  });
}

/** A router whose origin is the kt-echo gRPC server `origin-grpc` and whose developer alice (matched by `headers`) runs `alice-grpc`; a client channel to the router. */
export async function grpcBed(t: TestContext, headers: HeaderMatch[]): Promise<{ b: Bed; client: ReturnType<typeof grpcClient> }> {
  const origin = await grpcServer('origin-grpc');
  const laptop = await grpcServer('alice-grpc');
  t.after(async () => {
    await origin.close();
    await laptop.close();
  });
  const b = await bed(t, {}, origin.port);
  await b.dev('alice', { headers }, { local: laptop.port });
  const client = grpcClient(b.port);
  t.after(() => client.close());
  return { b, client };
}

/** One HTTP/1.1 GET with node's fetch-free client; returns the answering pod. */
export async function whoAnswers(port: number, headers: Record<string, string> = {}, path = '/'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  const body = (await res.json()) as { pod: string };
  return body.pod;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Reads HTTP/1.1 responses (content-length or chunked bodies) from a socket
 * as they arrive: next() resolves with the next complete one.
 */
export function responseReader(sock: net.Socket): { next(): Promise<RawResponse>; interim: string[] } {
  let buf = Buffer.alloc(0);
  const ready: RawResponse[] = [];
  const waiting: Array<{ resolve: (r: RawResponse) => void; reject: (e: Error) => void }> = [];
  const interim: string[] = [];
  let ended = false;
  const parse = () => {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      if (status < 200) {
        interim.push(lines[0]);
        buf = buf.subarray(end + 4);
        continue;
      }
      let body: Buffer;
      let used: number;
      if (headers['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = [];
        let at = end + 4;
        for (;;) {
          const le = buf.indexOf('\r\n', at);
          if (le < 0) return;
          const size = parseInt(buf.subarray(at, le).toString('latin1'), 16);
          if (size === 0) {
            if (buf.length < le + 4) return;
            used = le + 4;
            break;
          }
          if (buf.length < le + 2 + size + 2) return;
          parts.push(buf.subarray(le + 2, le + 2 + size));
          at = le + 2 + size + 2;
        }
        body = Buffer.concat(parts);
      } else {
        const len = Number(headers['content-length'] ?? '0');
        if (buf.length < end + 4 + len) return;
        body = buf.subarray(end + 4, end + 4 + len);
        used = end + 4 + len;
      }
      buf = buf.subarray(used);
      const r = { status, headers, body };
      const w = waiting.shift();
      if (w) w.resolve(r);
      else ready.push(r);
    }
  };
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    parse();
  });
  const fail = () => {
    ended = true;
    for (const w of waiting.splice(0)) w.reject(new Error('connection ended before the response'));
  };
  sock.on('end', fail);
  sock.on('close', fail);
  return {
    interim,
    next: () => {
      const r = ready.shift();
      if (r) return Promise.resolve(r);
      if (ended) return Promise.reject(new Error('connection ended'));
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
}

/** A raw TCP connection to the router's port. */
export async function rawConnect(port: number): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return sock;
}

export const podOf = (r: RawResponse): string => (JSON.parse(r.body.toString()) as { pod: string }).pod;
