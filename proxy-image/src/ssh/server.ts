// The proxy's SSH server: loopback only, public-key auth with the session's
// keys, and only the channel and request types in policy.ts.
import net from 'node:net';
import { debuglog } from 'node:util';
import ssh2 from 'ssh2';
import type { AuthContext, ClientInfo, Connection, ParsedKey } from 'ssh2';
import { CIPHERS, COMPRESSION } from '../../../contract/ssh/algorithms.ts';
import { decideAuth } from './auth.ts';
import type { ConnContext, Log } from './context.ts';
import { serveGlobalRequests } from './global-requests.ts';
import { socketOf } from '../../../contract/ssh/internals.ts';
import { parseAuthorizedKeys } from './authorized-keys.ts';
import { generateEd25519 } from '../../../contract/ssh/keys.ts';
import { CHANNEL_HANDLERS } from './policy.ts';
import type { RequestHandler } from './policy.ts';
import { closeForwards } from './tcpip-forward.ts';
import { batchWrites } from '../../../contract/ssh/write-batch.ts';
import { rateLimitedLog } from '../ratelog.ts';

/**
 * Caps (README, Limits). Sockets that have not logged in yet: a laptop logs
 * in within a round trip or two, so 64 waiting at once is only a flood; more
 * are closed at accept. Channels open on one connection: each is a TCP
 * connection the laptop tunnels (browsers and test suites open dozens), so
 * 1,024; more are refused with RESOURCE_SHORTAGE (RFC 4254 §5.1).
 */
export const MAX_UNAUTHENTICATED = 64;
export const MAX_CHANNELS = 1024;

const { Server } = ssh2;

/** The server's keepalive interval (see SshServerOptions.keepaliveMs). */
export const KEEPALIVE_MS = 2000;

export interface SshServerOptions {
  /** Loopback only; anything else is refused (the pod's SSH port is reached through pods/portforward). */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * A server already listening on host:port, bound before this module
   * loaded (proxy-image/src/main.ts): handOver gives the sockets it holds,
   * and every next one, to this server.
   */
  listener?: EarlyListener;
  /** OpenSSH public key lines allowed to log in as SSH_USER. */
  authorizedKeys: readonly string[];
  /** Host private key; a fresh ed25519 key when absent. */
  hostKey?: string | Buffer;
  /** Call onIdle after this long without an authenticated client. */
  idleExitMs?: number;
  onIdle?: () => void;
  /**
   * Server keepalive interval; a client that misses 3 in a row is dropped.
   * Default KEEPALIVE_MS: a laptop whose path drops packets silently is
   * dropped within 4 intervals (8 s), so a router's routes for it go and the
   * original pods serve again within the 10 s the README promises.
   */
  keepaliveMs?: number;
  /** Drop a socket that has not authenticated within this long (like sshd's LoginGraceTime). Default 30000. */
  loginGraceMs?: number;
  /** Outbound connect timeout for direct-tcpip. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * Global requests served beyond policy.ts (looked up first), for a role
   * that needs more than the shadow: the router passes kt-route@kt.dev here.
   */
  requests?: ReadonlyMap<string, RequestHandler>;
  debug?: (msg: string) => void;
}

/** A bound listener that holds its connections until they are handed over. */
export interface EarlyListener {
  server: net.Server;
  handOver(serve: (sock: net.Socket) => void): void;
}

export interface SshServer {
  port: number;
  close(): Promise<void>;
  /** Authenticated clients connected now. */
  clients(): number;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

/** What the connection and socket handlers of one server share. */
interface ServerState {
  opts: SshServerOptions;
  log: ReturnType<typeof rateLimitedLog>;
  allowed: readonly ParsedKey[];
  loginGraceMs: number;
  connectTimeoutMs: number;
  /** Open TCP sockets; those not logged in yet also have a grace timer. */
  sockets: Set<net.Socket>;
  graceTimers: Map<net.Socket, NodeJS.Timeout>;
  /** Authenticated connections. */
  ready: Set<Connection>;
  idle: IdleTimer;
  seq: number;
}

export async function startSshServer(opts: SshServerOptions): Promise<SshServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) throw new Error(`the SSH server listens on loopback only, not ${host}`);
  const allowed = parseAuthorizedKeys(opts.authorizedKeys);
  if (allowed.length === 0) throw new Error('no authorized keys: nobody could log in');
  const baseLog: Log = opts.debug ?? debuglog('kt');
  // Per-connection, per-channel and per-request lines: at most 50 per 10 s, then a count.
  const log = rateLimitedLog({ log: baseLog, burst: 50, intervalMs: 10_000, what: 'ssh' });
  const hostKey = opts.hostKey ?? generateEd25519('kt-proxy host').privateKey;
  const keepaliveMs = opts.keepaliveMs ?? KEEPALIVE_MS;

  const ssh = new Server({
    hostKeys: [hostKey],
    algorithms: { cipher: CIPHERS, compress: COMPRESSION },
    keepaliveInterval: keepaliveMs,
    keepaliveCountMax: 3,
    ident: 'kt-proxy',
  });
  const state: ServerState = {
    opts,
    log,
    allowed,
    loginGraceMs: opts.loginGraceMs ?? 30_000,
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    sockets: new Set(),
    graceTimers: new Map(),
    ready: new Set(),
    idle: idleTimer(opts.idleExitMs, () => {
      log(`no client for ${opts.idleExitMs} ms: idle`);
      opts.onIdle?.();
    }),
    seq: 0,
  };
  ssh.on('connection', (conn: Connection, info) => serveConnection(state, conn, info));
  const serve = (sock: net.Socket): void => acceptSocket(state, sock, (s) => ssh.injectSocket(s));
  const tcp = opts.listener?.server ?? net.createServer({ noDelay: true }, serve);
  if (opts.listener) opts.listener.handOver(serve);
  else await listen(tcp, host, opts.port);
  tcp.on('error', (err) => log(`ssh listener error: ${err.message}`));
  const port = (tcp.address() as net.AddressInfo).port;
  baseLog(`ssh listening on ${host}:${port}`);
  state.idle.idle();

  let closing: Promise<void> | undefined;
  return {
    port,
    clients: () => state.ready.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        state.idle.stop();
        log.close();
        tcp.close(() => resolve());
        for (const conn of state.ready) conn.end();
        for (const sock of state.sockets) sock.destroy();
      });
      return closing;
    },
  };
}

function listen(tcp: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host, port }, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
}

/** One SSH connection: its context, login, channels (capped), and the end of its forwards when it goes. */
function serveConnection(state: ServerState, conn: Connection, info: ClientInfo): void {
  const { log, ready, idle, graceTimers } = state;
  const ctx: ConnContext = { id: `c${++state.seq}`, conn, forwards: new Map(), closed: false, log, connectTimeoutMs: state.connectTimeoutMs };
  log(`${ctx.id} connection from ${info.ip}:${info.port} (${info.header.versions.software})`);
  serveGlobalRequests(ctx, state.opts.requests);
  conn.on('authentication', (auth) => onAuthentication(ctx, auth, state.allowed));
  conn.on('ready', () => {
    const sock = socketOf(conn) as net.Socket;
    clearTimeout(graceTimers.get(sock));
    graceTimers.delete(sock);
    ready.add(conn);
    idle.busy();
    log(`${ctx.id} authenticated (${ready.size} client(s))`);
  });
  serveChannels(ctx);
  conn.on('error', (err: Error & { level?: string }) => {
    log(`${ctx.id} error: ${err.message}`);
    // ssh2 answers a keepalive timeout with end(): a FIN the silent peer
    // never acknowledges, so 'close' (and with it the end of this
    // connection's routes and forwards) could wait minutes for TCP to give
    // up. The peer is judged dead: close now.
    if (err.level === 'client-timeout') (socketOf(conn) as net.Socket | undefined)?.destroy();
  });
  conn.on('close', () => {
    ctx.closed = true;
    closeForwards(ctx);
    if (ready.delete(conn) && ready.size === 0) idle.idle();
    log(`${ctx.id} closed (${ready.size} client(s))`);
  });
}

/** The channel types of policy.ts, at most MAX_CHANNELS open at once. */
function serveChannels(ctx: ConnContext): void {
  let channels = 0;
  for (const [type, { ssh2Event, handle }] of CHANNEL_HANDLERS) {
    ctx.conn.on(ssh2Event, (accept, reject, chanInfo) => {
      if (ctx.closed) return reject();
      // Counted from the request (the handler may accept only after its own connect), released on reject or close.
      if (channels >= MAX_CHANNELS) {
        ctx.log(`${ctx.id} channel ${type} refused: ${MAX_CHANNELS} open`);
        return reject();
      }
      channels++;
      const counted: typeof accept = () => {
        const ch = accept();
        ch.once('close', () => channels--);
        return ch;
      };
      const refuse: typeof reject = () => {
        channels--;
        reject();
      };
      handle(ctx, counted, refuse, chanInfo);
    });
  }
}

/** A new TCP socket: refused beyond MAX_UNAUTHENTICATED logging in, dropped if it does not log in in time, else handed to ssh2. */
function acceptSocket(state: ServerState, sock: net.Socket, inject: (sock: net.Socket) => void): void {
  const { log, sockets, graceTimers, loginGraceMs } = state;
  // Without TCP_NODELAY the small window-adjust and ack packets wait for
  // Nagle's timer and a single channel drops to 40-100 MiB/s.
  sock.setNoDelay(true);
  if (graceTimers.size >= MAX_UNAUTHENTICATED) {
    log(`socket from ${sock.remoteAddress}:${sock.remotePort} closed: ${MAX_UNAUTHENTICATED} sockets are logging in already`);
    sock.destroy();
    return;
  }
  sockets.add(sock);
  const grace = setTimeout(() => {
    log(`socket from ${sock.remoteAddress}:${sock.remotePort} did not log in within ${loginGraceMs} ms`);
    sock.destroy();
  }, loginGraceMs);
  graceTimers.set(sock, grace);
  sock.once('close', () => {
    sockets.delete(sock);
    clearTimeout(grace);
    graceTimers.delete(sock);
  });
  batchWrites(sock);
  inject(sock);
}

function onAuthentication(ctx: ConnContext, auth: AuthContext, allowed: readonly ParsedKey[]): void {
  const decision = decideAuth(auth, allowed);
  if (decision.kind === 'reject') {
    // Log only real attempts: clients probe with method "none" first (RFC 4252 §5.2).
    if (auth.method !== 'none') ctx.log(`${ctx.id} auth refused: ${decision.why}`);
    auth.reject(['publickey']);
  } else {
    auth.accept();
  }
}

interface IdleTimer {
  busy(): void;
  idle(): void;
  stop(): void;
}

function idleTimer(ms: number | undefined, fire: () => void): IdleTimer {
  let timer: NodeJS.Timeout | undefined;
  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return {
    busy: clear,
    idle() {
      clear();
      if (ms !== undefined && ms > 0) timer = setTimeout(fire, ms);
    },
    stop: clear,
  };
}
