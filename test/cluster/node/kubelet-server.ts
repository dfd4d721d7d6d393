// The kubelet's API as the upstream API server calls it (pkg/kubelet/server):
// HTTPS on the node's address, client certificates from the cluster CA only
// (the API server's --kubelet-client-certificate), and the paths it proxies
// pods/portforward, pods/exec and pods/log to:
//   /portForward/{namespace}/{pod}[/{uid}]             SPDY or WebSocket upgrade
//   /exec/{namespace}/{pod}[/{uid}]/{container}?command=…&input=1&output=1&error=1&tty=1
//   /containerLogs/{namespace}/{pod}/{container}?follow=…&tailLines=…&sinceSeconds=…&timestamps=…&previous=…
//   /healthz
// The streaming protocols are the same handlers the home-made API server
// served them with; what differs is the addressing and the exec query's names.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { debuglog } from 'node:util';
import { streams } from './streams/streams.ts';
import { KubeletError, type KubeletHooks } from '../types.ts';

const debug = debuglog('kt-cluster');

export interface KubeletServerOptions {
  hooks: KubeletHooks;
  ca: string;
  cert: string;
  key: string;
  host: string;
  port?: number;
}

export interface KubeletServer {
  port: number;
  close(): Promise<void>;
}

function parts(req: IncomingMessage): { segs: string[]; query: URLSearchParams; url: URL } {
  const url = new URL(req.url ?? '/', 'https://kubelet');
  return { segs: url.pathname.split('/').filter(Boolean).map(decodeURIComponent), query: url.searchParams, url };
}

function deny(socket: Duplex, code: number, message: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${code} Error\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`);
}

/** Only the cluster CA's clients (the API server) may use the kubelet API, as with --client-ca-file. */
function authorized(socket: Duplex): boolean {
  return socket instanceof TLSSocket && socket.authorized;
}

function onUpgrade(hooks: KubeletHooks, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (!authorized(socket)) return deny(socket, 401, 'Unauthorized');
  const { segs, query, url } = parts(req);
  debug('kubelet api: %s upgrade to %s (%s)', req.url, req.headers.upgrade, req.headers['sec-websocket-protocol'] ?? req.headers['x-stream-protocol-version'] ?? '');
  if (segs[0] === 'portForward' && (segs.length === 3 || segs.length === 4)) {
    // WebSocket clients name the ports in the query (client-node); SPDY streams carry them in headers.
    // The API server turns pods/portforward's `ports` into repeated `port` (PortForwardLocation).
    const ports = [...query.getAll('port'), ...query.getAll('ports').flatMap((v) => v.split(','))]
      .map(Number).filter((p) => Number.isInteger(p) && p > 0 && p < 65536);
    streams.portForward(req, socket, head, { namespace: segs[1], pod: segs[2], ports }, hooks);
    return;
  }
  if (segs[0] === 'exec' && (segs.length === 4 || segs.length === 5)) {
    // The API server renames stdin/stdout/stderr to input/output/error on the way to the kubelet.
    const flag = (n: string): boolean => ['1', 'true'].includes(query.get(n) ?? '');
    const q = new URLSearchParams();
    for (const c of query.getAll('command')) q.append('command', c);
    if (flag('input')) q.set('stdin', 'true');
    if (flag('output')) q.set('stdout', 'true');
    if (flag('error')) q.set('stderr', 'true');
    if (flag('tty')) q.set('tty', 'true');
    req.url = `${url.pathname}?${q.toString()}`;
    const container = segs[segs.length - 1];
    streams.exec?.(req, socket, head, {
      namespace: segs[1], pod: segs[2],
      opts: { container, command: query.getAll('command'), stdin: flag('input'), tty: flag('tty') },
    }, hooks);
    return;
  }
  deny(socket, 404, 'not found');
}

async function onRequest(hooks: KubeletHooks, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorized(req.socket)) {
    res.writeHead(401).end('Unauthorized');
    return;
  }
  const { segs, query } = parts(req);
  if (segs[0] === 'healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (segs[0] === 'containerLogs' && segs.length === 4) {
    const num = (n: string): number | undefined => (query.has(n) ? Number(query.get(n)) : undefined);
    const flag = (n: string): boolean => query.get(n) === 'true' || query.get(n) === '1';
    try {
      const stream = await hooks.logs(segs[1], segs[2], {
        container: segs[3], follow: flag('follow'), previous: flag('previous'), timestamps: flag('timestamps'),
        ...(num('tailLines') !== undefined ? { tailLines: num('tailLines') } : {}),
        ...(num('sinceSeconds') !== undefined ? { sinceSeconds: num('sinceSeconds') } : {}),
      });
      res.writeHead(200, { 'content-type': 'text/plain' });
      stream.pipe(res);
      res.on('close', () => stream.destroy());
    } catch (e) {
      const code = e instanceof KubeletError ? e.code : 500;
      res.writeHead(code, { 'content-type': 'text/plain' }).end((e as Error).message);
    }
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
}

export async function startKubeletServer(o: KubeletServerOptions): Promise<KubeletServer> {
  const server: Server = createServer({ ca: o.ca, cert: o.cert, key: o.key, requestCert: true, rejectUnauthorized: false });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    onRequest(o.hooks, req, res).catch((e: Error) => {
      debug('kubelet api %s: %s', req.url, e.message);
      if (!res.headersSent) res.writeHead(500).end(e.message);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => onUpgrade(o.hooks, req, socket, head));
  server.on('tlsClientError', (e) => debug('kubelet api tls: %s', e.message));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host, resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
