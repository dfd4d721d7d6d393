// Test harness for the streaming handlers: a tiny API server that answers
// just what kubectl needs before it upgrades (version, discovery, one pod)
// and hands pods/portforward and pods/exec upgrades to `streams`, with a
// fake kubelet whose pod ports are local servers on 127.0.0.1.
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { streams } from './node/streams/streams.ts';
import { KubeletError, type ExecOptions, type ExecProcess, type KubeletHooks } from './types.ts';

/** Pod ports the fake kubelet knows. */
export const ECHO_PORT = 7;
export const HTTP_PORT = 80;
export const SINK_PORT = 9;
/** A pod port nothing listens on: connecting is refused. */
export const REFUSED_PORT = 1;

export const BIG_SIZE = 8 * 1024 * 1024;

/** Deterministic pseudo-random bytes (so both ends can hash without sharing a buffer). */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= size) out.writeUInt32LE(x, i);
    else for (let j = 0; i + j < size; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return out;
}

export function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

export interface Harness {
  url: string;
  port: number;
  kubelet: KubeletHooks;
  /** Pod-side sockets of every forwarded connection (as the upstream servers see them), open ones only. */
  openUpstreams(): number;
  /** How many forwarded connections reached an upstream in total. */
  upstreamCount(): number;
  /** Resolves when every upstream socket so far has closed. */
  upstreamsClosed(): Promise<void>;
  /** Bytes the sink server received, per connection, in order of close. */
  sinkTotals: number[];
  /** The local port behind a pod port (for direct connections that bypass the forward). */
  localPort(podPort: number): number;
  /** Every streaming upgrade seen: `POST SPDY/3.1` or `GET websocket <offered subprotocols>`. */
  upgrades: string[];
  close(): Promise<void>;
}

function pod(namespace: string, name: string): object {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace, uid: '6f1c2d3e-0000-4000-8000-000000000001', resourceVersion: '1', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { containers: [{ name: 'main', image: 'shell', ports: [{ containerPort: HTTP_PORT }] }] },
    status: {
      phase: 'Running',
      podIP: '10.0.0.2',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'shell', imageID: '', state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }],
    },
  };
}

const API_RESOURCES = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'] },
    { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
    { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
  ],
};

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Runs the command locally (ignoring the pod), as the node's `shell` image would inside the pod. */
function localExec(_ns: string, _pod: string, opts: ExecOptions): Promise<ExecProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.command[0], opts.command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number>((res) => child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1))));
    child.once('spawn', () => resolve({ stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill: () => child.kill('SIGKILL') }));
    child.once('error', (err) => reject(new KubeletError(500, `failed to exec in container: ${err.message}`)));
  });
}

export interface HarnessOptions {
  /** Offer the exec hook: true for a local process per command, or a hook of the test's own. */
  exec?: boolean | NonNullable<KubeletHooks['exec']>;
  /** Told the byte count of every connection the sink has seen end. */
  onSink?: (bytes: number) => void;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const upstreamSockets = new Set<net.Socket>();
  let upstreamTotal = 0;
  const closedWaiters: (() => void)[] = [];
  const track = (s: net.Socket): void => {
    upstreamTotal++;
    upstreamSockets.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      upstreamSockets.delete(s);
      if (upstreamSockets.size === 0) for (const w of closedWaiters.splice(0)) w();
    });
  };
  const sinkTotals: number[] = [];

  const echo = net.createServer((s) => {
    track(s);
    s.pipe(s);
  });
  const sink = net.createServer((s) => {
    track(s);
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => {
      sinkTotals.push(n);
      opts.onSink?.(n);
      s.end(`${n}\n`);
    });
  });
  const big = pattern(BIG_SIZE, 7);
  const web = http.createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'Content-Length': big.length, 'Content-Type': 'application/octet-stream' });
      res.end(big);
      return;
    }
    if (req.url === '/sha' && req.method === 'POST') {
      const hash = crypto.createHash('sha256');
      req.on('data', (c: Buffer) => hash.update(c));
      req.on('end', () => res.end(hash.digest('hex')));
      return;
    }
    res.end('hello from the pod\n');
  });
  web.on('connection', track);
  // A port that was open once and is closed now: connecting to it is refused.
  const closedPort = net.createServer();
  await new Promise<void>((r) => closedPort.listen(0, '127.0.0.1', r));
  const refusedAt = (closedPort.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closedPort.close(() => r()));

  for (const s of [echo, sink, web]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;
  const podPorts = new Map<number, number>([
    [ECHO_PORT, portOf(echo)],
    [HTTP_PORT, portOf(web)],
    [SINK_PORT, portOf(sink)],
    [REFUSED_PORT, refusedAt],
  ]);

  const kubelet: KubeletHooks = {
    portForward(_ns, _pod, port) {
      const local = podPorts.get(port) ?? refusedAt;
      return new Promise<Duplex>((resolve, reject) => {
        const s = net.connect(local, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', (err) => reject(new KubeletError(500, `failed to connect to localhost:${port} inside namespace: ${err.message}`)));
      });
    },
    logs() {
      return Promise.reject(new KubeletError(400, 'no logs here'));
    },
    ...(opts.exec ? { exec: opts.exec === true ? localExec : opts.exec } : {}),
  };

  const api = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    if (p === '/version') return sendJson(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.4', platform: 'linux/amd64', goVersion: 'go1.23.8', compiler: 'gc' });
    if (p === '/api') return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
    if (p === '/apis') return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (p === '/api/v1') return sendJson(res, 200, API_RESOURCES);
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p);
    if (m && req.method === 'GET') return sendJson(res, 200, pod(m[1], m[2]));
    sendJson(res, 404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `the server could not find the requested resource (${p})`, reason: 'NotFound', code: 404 });
  });
  const upgrades: string[] = [];
  api.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    upgrades.push(`${req.method} ${req.headers.upgrade ?? ''}${req.headers['sec-websocket-protocol'] ? ` ${req.headers['sec-websocket-protocol']}` : ''}`);
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(portforward|exec)$/.exec(url.pathname);
    if (!m) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const [, namespace, podName, sub] = m;
    if (sub === 'portforward') {
      const ports = url.searchParams.getAll('ports').flatMap((v) => v.split(',')).map(Number);
      streams.portForward(req, socket, head, { namespace, pod: podName, ports }, kubelet);
    } else {
      const flag = (n: string): boolean => ['true', '1'].includes(url.searchParams.get(n) ?? '');
      const command = url.searchParams.getAll('command');
      streams.exec!(req, socket, head, { namespace, pod: podName, opts: { command, stdin: flag('stdin'), tty: flag('tty'), container: url.searchParams.get('container') ?? undefined } }, kubelet);
    }
  });
  const apiSockets = new Set<net.Socket>();
  api.on('connection', (s) => {
    apiSockets.add(s);
    s.on('close', () => apiSockets.delete(s));
  });
  api.listen(0, '127.0.0.1');
  await once(api, 'listening');
  const port = portOf(api);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    kubelet,
    sinkTotals,
    upgrades,
    localPort: (podPort) => podPorts.get(podPort) ?? refusedAt,
    openUpstreams: () => upstreamSockets.size,
    upstreamCount: () => upstreamTotal,
    upstreamsClosed: () => (upstreamSockets.size === 0 ? Promise.resolve() : new Promise((r) => closedWaiters.push(r))),
    async close() {
      for (const s of apiSockets) s.destroy();
      for (const s of upstreamSockets) s.destroy();
      web.closeAllConnections();
      await Promise.all([api, echo, sink, web].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
