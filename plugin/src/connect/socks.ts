// A local proxy for `connect --mode socks`: SOCKS5 (RFC 1928, with remote
// name resolution: the name travels to the cluster, so `socks5h://` works for
// service names) and an HTTP proxy (CONNECT, and absolute-URI requests as
// RFC 9112 §3.2.2 describes) on the same port. The first byte tells them apart:
// a SOCKS5 greeting starts with 0x05, an HTTP request with a token character.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { BAGGAGE_HEADER } from '../../../contract/protocol.ts';
import { mergeBaggage } from '../../../contract/http/baggage.ts';

const debug = debuglog('kt');

/** Opens a connection to host:port inside the cluster (over the tunnel). */
export type Dialer = (host: string, port: number) => Promise<Duplex>;

export interface ProxyServerOptions {
  dial: Dialer;
  host?: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** Called for each proxied connection (for status and debug output). */
  onConnection?: (info: { protocol: 'socks5' | 'http-connect' | 'http'; host: string; port: number; ok: boolean; error?: string }) => void;
  /**
   * Set on every plain-HTTP request through the HTTP proxy (`connect
   * --header`): replaces the request's own values of that header. CONNECT
   * tunnels (HTTPS) and SOCKS5 carry bytes we do not read, so they pass as they are.
   */
  setHeaders?: readonly { name: string; value: string }[];
  /** Members merged into each plain-HTTP request's `baggage` header (`connect --baggage`); ours win for the same key. */
  baggage?: readonly { key: string; value: string }[];
}

export interface ProxyServer {
  port: number;
  host: string;
  close(): Promise<void>;
}

// RFC 1928 §6 reply codes.
const REP = {
  succeeded: 0x00,
  general: 0x01,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Maps a dial failure to the SOCKS5 reply code a client can act on. */
export function socksReplyFor(err: unknown): number {
  const code = (err as { code?: string } | null)?.code ?? '';
  const msg = String((err as Error | null)?.message ?? '');
  if (code === 'ECONNREFUSED' || /refused/i.test(msg)) return REP.connectionRefused;
  if (code === 'ENETUNREACH') return REP.networkUnreachable;
  if (code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /not ?found|unreachable|getaddrinfo/i.test(msg)) {
    return REP.hostUnreachable;
  }
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(msg)) return REP.ttlExpired;
  return REP.general;
}

export type SocksRequest =
  | { ok: true; cmd: number; host: string; port: number; length: number }
  | { ok: false; incomplete: true }
  | { ok: false; incomplete: false; rep: number };

/** Parses a SOCKS5 request (VER CMD RSV ATYP DST.ADDR DST.PORT) from `buf`. */
export function parseSocksRequest(buf: Buffer): SocksRequest {
  if (buf.length < 4) return { ok: false, incomplete: true };
  if (buf[0] !== 0x05) return { ok: false, incomplete: false, rep: REP.general };
  const cmd = buf[1];
  const atyp = buf[3];
  let host: string;
  let off: number;
  if (atyp === 0x01) {
    if (buf.length < 10) return { ok: false, incomplete: true };
    host = `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`;
    off = 8;
  } else if (atyp === 0x03) {
    if (buf.length < 5) return { ok: false, incomplete: true };
    const len = buf[4];
    if (len === 0) return { ok: false, incomplete: false, rep: REP.general };
    if (buf.length < 5 + len + 2) return { ok: false, incomplete: true };
    host = buf.subarray(5, 5 + len).toString('latin1');
    off = 5 + len;
  } else if (atyp === 0x04) {
    if (buf.length < 22) return { ok: false, incomplete: true };
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(4 + i).toString(16));
    host = parts.join(':');
    off = 20;
  } else {
    return { ok: false, incomplete: false, rep: REP.addressTypeNotSupported };
  }
  const port = buf.readUInt16BE(off);
  return { ok: true, cmd, host, port, length: off + 2 };
}

function socksReply(rep: number): Buffer {
  // BND.ADDR/BND.PORT are meaningless through a tunnel; 0.0.0.0:0 is what
  // most servers send and every client accepts.
  return Buffer.from([0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

/** Relays both ways and tears both down when either side ends or fails. */
export function relay(a: Duplex, b: Duplex): void {
  const done = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', done);
  b.on('error', done);
  a.on('close', done);
  b.on('close', done);
  a.pipe(b);
  b.pipe(a);
}

function handleSocks(socket: Socket, opts: ProxyServerOptions): void {
  let buf = Buffer.alloc(0);
  let stage: 'greeting' | 'request' | 'dialing' = 'greeting';
  const fail = (rep: number): void => {
    socket.end(socksReply(rep));
  };
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > 1024) {
      socket.destroy();
      return;
    }
    if (stage === 'greeting') {
      if (buf.length < 2) return;
      const n = buf[1];
      if (buf.length < 2 + n) return;
      const methods = buf.subarray(2, 2 + n);
      buf = buf.subarray(2 + n);
      // 0x00: no authentication. The proxy listens on loopback only.
      if (!methods.includes(0x00)) {
        socket.end(Buffer.from([0x05, 0xff]));
        return;
      }
      socket.write(Buffer.from([0x05, 0x00]));
      stage = 'request';
    }
    if (stage === 'request') {
      const req = parseSocksRequest(buf);
      if (!req.ok) {
        if (!req.incomplete) fail(req.rep);
        return;
      }
      if (req.cmd !== 0x01) {
        fail(REP.commandNotSupported);
        return;
      }
      stage = 'dialing';
      socket.off('data', onData);
      socket.pause();
      const rest = buf.subarray(req.length);
      opts.dial(req.host, req.port).then(
        (upstream) => {
          if (socket.destroyed) {
            upstream.destroy();
            return;
          }
          opts.onConnection?.({ protocol: 'socks5', host: req.host, port: req.port, ok: true });
          socket.write(socksReply(REP.succeeded));
          if (rest.length > 0) upstream.write(rest);
          relay(socket, upstream);
          socket.resume();
        },
        (err: unknown) => {
          debug('socks5 dial %s:%d failed: %s', req.host, req.port, (err as Error).message);
          opts.onConnection?.({ protocol: 'socks5', host: req.host, port: req.port, ok: false, error: (err as Error).message });
          fail(socksReplyFor(err));
        },
      );
    }
  };
  socket.on('data', onData);
}

/** Splits "host:port" (with [v6]:port) as an HTTP CONNECT target, RFC 9110 §9.3.6. */
export function parseAuthority(authority: string, defaultPort?: number): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1], port };
}

// Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardHttp(req: IncomingMessage, res: ServerResponse, opts: ProxyServerOptions): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('kubectl-kt proxy: expected an absolute URI (use this as an HTTP proxy)\n');
    return;
  }
  if (url.protocol !== 'http:') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('kubectl-kt proxy: only http:// URLs are proxied this way; https goes through CONNECT\n');
    return;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : 80;
  const headers: Record<string, string | string[]> = {};
  const connectionTokens = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || connectionTokens.has(k)) continue;
    headers[k] = v;
  }
  // Names are lower case in node's parsed headers, and in ours (values.ts parseHeaderToAdd).
  for (const h of opts.setHeaders ?? []) headers[h.name] = h.value;
  if (opts.baggage && opts.baggage.length > 0) headers[BAGGAGE_HEADER] = mergeBaggage(req.headers[BAGGAGE_HEADER], opts.baggage);
  const fail = (err: Error): void => {
    opts.onConnection?.({ protocol: 'http', host, port, ok: false, error: err.message });
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`kubectl-kt proxy: cannot reach ${host}:${port} in the cluster: ${err.message}\n`);
    } else {
      res.destroy();
    }
  };
  // Dial first, then hand the ready stream to the client request: one
  // upstream connection per proxied request keeps routing per request simple.
  opts.dial(host, port).then((conn) => {
    const upstream = httpRequest({
      host,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
      createConnection: () => conn as Socket,
    });
    upstream.on('response', (up) => {
      opts.onConnection?.({ protocol: 'http', host, port, ok: true });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.pipe(res);
    });
    upstream.on('error', fail);
    res.on('close', () => conn.destroy());
    req.pipe(upstream);
  }, fail);
}

function handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer, opts: ProxyServerOptions): void {
  const target = parseAuthority(req.url ?? '');
  if (!target) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  opts.dial(target.host, target.port).then(
    (upstream) => {
      opts.onConnection?.({ protocol: 'http-connect', host: target.host, port: target.port, ok: true });
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      relay(socket, upstream);
    },
    (err: Error) => {
      opts.onConnection?.({ protocol: 'http-connect', host: target.host, port: target.port, ok: false, error: err.message });
      const body = `kubectl-kt proxy: cannot reach ${target.host}:${target.port} in the cluster: ${err.message}\n`;
      socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  );
}

/** Starts the SOCKS5 + HTTP proxy on loopback. */
export async function startProxyServer(opts: ProxyServerOptions): Promise<ProxyServer> {
  const host = opts.host ?? '127.0.0.1';
  const http = createHttpServer((req, res) => forwardHttp(req, res, opts));
  http.on('connect', (req, socket, head) => handleConnect(req, socket, head, opts));
  http.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.once('readable', () => {
      const first = socket.read(1) as Buffer | null;
      if (!first) return;
      socket.unshift(first);
      if (first[0] === 0x05) handleSocks(socket, opts);
      else http.emit('connection', socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        http.close();
      }),
  };
}

/** The environment a child process gets so its HTTP and SOCKS clients use the proxy. */
export function proxyEnv(port: number, base: NodeJS.ProcessEnv, host = '127.0.0.1'): NodeJS.ProcessEnv {
  const http = `http://${host}:${port}`;
  const socks = `socks5h://${host}:${port}`;
  const noProxy = ['localhost', '127.0.0.1', '::1'];
  const existingJava = base.JAVA_TOOL_OPTIONS ? `${base.JAVA_TOOL_OPTIONS} ` : '';
  return {
    ...base,
    HTTP_PROXY: http,
    HTTPS_PROXY: http,
    ALL_PROXY: socks,
    http_proxy: http,
    https_proxy: http,
    all_proxy: socks,
    NO_PROXY: noProxy.join(','),
    no_proxy: noProxy.join(','),
    // The JVM ignores *_PROXY; it reads these system properties (Networking
    // Properties, java.net docs), and socksProxyHost also covers plain sockets.
    JAVA_TOOL_OPTIONS: `${existingJava}-DsocksProxyHost=${host} -DsocksProxyPort=${port} -Dhttp.proxyHost=${host} -Dhttp.proxyPort=${port} -Dhttps.proxyHost=${host} -Dhttps.proxyPort=${port}`,
  };
}
