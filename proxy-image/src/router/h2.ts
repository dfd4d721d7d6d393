// HTTP/2 cleartext, routed per stream (ARCHITECTURE.md rule 2): node:http2 is the
// server on the client connection and a client to each target — the origin
// over TCP, a developer over a forwarded-tcpip channel — with one session per
// target shared by all streams. Each stream is routed on its own headers
// (gRPC metadata are headers), bodies stream both ways, and trailers (where
// gRPC puts its status) are relayed.
import type * as Http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { RouterPort } from '../../../contract/protocol.ts';
import { endGracefully, goawayGracefully } from './drain.ts';
import type { Drain } from './drain.ts';
import type { HeaderLookup } from './match.ts';
import { describeTarget, ORIGIN, targetKey } from './upstream.ts';
import type { Connector, Target } from './upstream.ts';

/**
 * node:http2, loaded when the first HTTP/2 client connection comes: loading
 * it (nghttp2 and its JavaScript) costs a router about 14 MiB resident, and
 * a router of a Service whose clients speak HTTP/1 never needs it.
 */
function http2(): typeof Http2 {
  return process.getBuiltinModule('node:http2');
}

// RFC 9113: the END_STREAM flag (§6.1) and the error codes (§7), as node:http2.constants names them.
const NGHTTP2_FLAG_END_STREAM = 0x1;
const NGHTTP2_INTERNAL_ERROR = 0x2;
const NGHTTP2_REFUSED_STREAM = 0x7;
const NGHTTP2_CANCEL = 0x8;

export interface H2Deps {
  port: RouterPort;
  choose(lookup: HeaderLookup): Target;
  connector: Connector;
  /** Per-stream and per-session events (rate-limited by the caller). */
  log(msg: string): void;
  /** A client connection with no frame either way for this long is closed (GOAWAY). Default 120 s. */
  idleMs?: number;
  /** The router is short of memory (pressure.ts): new streams are refused. */
  overloaded?: () => boolean;
  /** The router's drain (drain.ts): client sessions get GOAWAY when it starts. */
  drain?: Drain;
}

/**
 * Streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS,
 * RFC 9113 §6.5.2); more are refused with RST_STREAM. Without it one
 * connection opened ~13,800 streams and node aborted. 100 is the
 * floor the RFC recommends and what nginx and Go's server use.
 */
export const MAX_STREAMS = 100;
/**
 * node:http2's memory cap per session in MB (nghttp2's buffers: header
 * tables, queued frames); over it new streams are refused with
 * ENHANCE_YOUR_CALM. Stream bodies flow through node streams with 16 KiB
 * high-water marks, so 100 streams add about 3 MiB more at most.
 */
export const MAX_SESSION_MEMORY_MB = 4;
const IDLE_MS = 120_000;

export interface H2Router {
  /** Serves HTTP/2 on a client connection (prior knowledge, or an upgraded h2c one). */
  serve(socket: Duplex): void;
  /** Closes the sessions to a target (its route went away). */
  drop(key: string): void;
  close(): void;
}

/** An H2Router that sets up node:http2 when its first connection comes (see http2() above). */
export function makeH2Router(deps: H2Deps): H2Router {
  let made: H2Router | undefined;
  return {
    serve: (socket) => (made ??= createH2Router(deps)).serve(socket),
    drop: (key) => made?.drop(key),
    close: () => made?.close(),
  };
}

function createH2Router(deps: H2Deps): H2Router {
  /**
   * Upstream sessions per client connection and target. Not shared between
   * client connections: the origin Service balances per connection, so each
   * client connection keeps its own, as it would have talking directly.
   */
  const upstreams = new Map<Http2.ServerHttp2Session, Map<string, Promise<Http2.ClientHttp2Session>>>();
  const server = http2().createServer({
    maxSessionInvalidFrames: 100,
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    // A client that sends streams the SETTINGS told it not to is cut off after this many refusals.
    maxSessionRejectedStreams: 100,
    settings: { maxConcurrentStreams: MAX_STREAMS },
  });
  const idleMs = deps.idleMs ?? IDLE_MS;

  /** Streams open per client session, for the drain. */
  const open = new WeakMap<Http2.ServerHttp2Session, { n: number }>();
  server.on('session', (s) => {
    upstreams.set(s, new Map());
    const streams = { n: 0 };
    open.set(s, streams);
    const untrack = deps.drain?.track({ busy: () => streams.n > 0, move: () => goawayGracefully(s), end: () => endGracefully(s) });
    // An idle client connection (no frame either way) is closed gracefully;
    // one with streams open (a quiet long gRPC stream) is left alone: node
    // re-arms the timer on the next frame.
    s.setTimeout(idleMs, () => {
      if (streams.n === 0) s.close();
    });
    s.on('close', () => {
      untrack?.();
      const mine = upstreams.get(s);
      upstreams.delete(s);
      for (const key of mine?.keys() ?? []) dropOne(mine as Map<string, Promise<Http2.ClientHttp2Session>>, key);
    });
  });
  server.on('sessionError', (err) => deps.log(`h2 client session: ${err.message}`));
  server.on('stream', (stream, headers, flags) => routeStream(stream as Http2.ServerHttp2Stream, headers, flags));

  /** The client connection's session to a target; one that closes or fails is forgotten. */
  function session(client: Http2.ServerHttp2Session, target: Target): Promise<Http2.ClientHttp2Session> {
    const mine = upstreams.get(client);
    if (!mine) return Promise.reject(new Error('the client connection is gone'));
    const key = targetKey(target);
    let s = mine.get(key);
    if (s) return s;
    const sock = client.socket;
    s = deps.connector.connect(target, { ip: sock?.remoteAddress ?? '', port: sock?.remotePort ?? 0 }).then((up) => {
      const sess = http2().connect(`http://${deps.port.name ?? 'upstream'}`, { createConnection: () => up, maxSessionMemory: MAX_SESSION_MEMORY_MB });
      const forget = () => {
        if (mine.get(key) === s) mine.delete(key);
      };
      sess.on('close', forget);
      sess.on('goaway', forget);
      sess.on('error', (err) => {
        forget();
        deps.log(`h2 session to ${describeTarget(target)}: ${err.message}`);
      });
      // The client connection went while this one was being opened.
      if (!upstreams.has(client)) sess.close();
      return sess;
    });
    mine.set(key, s);
    s.catch(() => {
      if (mine.get(key) === s) mine.delete(key);
    });
    return s;
  }

  function routeStream(stream: Http2.ServerHttp2Stream, headers: Http2.IncomingHttpHeaders, flags: number): void {
    stream.on('error', () => {});
    if (deps.overloaded?.()) {
      // RFC 9113 §8.7: REFUSED_STREAM tells the client nothing was processed; it may retry.
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    const streams = open.get(stream.session as Http2.ServerHttp2Session);
    if (streams) {
      streams.n++;
      stream.once('close', () => {
        streams.n--;
        deps.drain?.settled();
      });
    }
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    const target = deps.choose((name) => headers[name]);
    send(stream, headers, endStream, target, 0);
  }

  function send(stream: Http2.ServerHttp2Stream, headers: Http2.IncomingHttpHeaders, endStream: boolean, target: Target, tries: number): void {
    const fallback = (why: string) => {
      // Nothing of the request body has been read yet (we pipe only once the
      // upstream stream exists), so the origin can still take it whole.
      if (tries < 2 && !stream.destroyed && (target.kind === 'route' || tries === 0)) {
        deps.log(`h2 ${headers[':method']} ${headers[':path']}: ${why}; trying ${target.kind === 'route' ? 'origin' : 'again'}`);
        send(stream, headers, endStream, ORIGIN, tries + 1);
        return;
      }
      deps.log(`h2 ${headers[':method']} ${headers[':path']}: ${why}`);
      if (!stream.headersSent && !stream.destroyed) {
        stream.respond({ ':status': 502, 'content-type': 'text/plain' });
        stream.end(`upstream failed: ${why}\n`);
      } else {
        stream.close(NGHTTP2_INTERNAL_ERROR);
      }
    };
    session(stream.session as Http2.ServerHttp2Session, target).then(
      (sess) => {
        if (stream.destroyed) return;
        let up: Http2.ClientHttp2Stream;
        try {
          up = sess.request(headers, { endStream });
        } catch (err) {
          upstreams.get(stream.session as Http2.ServerHttp2Session)?.delete(targetKey(target));
          fallback((err as Error).message);
          return;
        }
        relay(stream, up, endStream, () => fallback(`${describeTarget(target)} refused the stream`));
      },
      (err: Error) => fallback(`could not reach ${describeTarget(target)}: ${err.message}`),
    );
  }

  return {
    serve: (socket) => serveOn(server, socket),
    drop(key) {
      for (const mine of upstreams.values()) dropOne(mine, key);
    },
    close() {
      for (const client of [...upstreams.keys()]) client.destroy();
    },
  };
}

/** Closes a client connection's session to one target, once it is open. */
function dropOne(mine: Map<string, Promise<Http2.ClientHttp2Session>>, key: string): void {
  const s = mine.get(key);
  mine.delete(key);
  s?.then(
    (sess) => sess.close(),
    () => {},
  );
}

/** Relays one stream both ways: the answer's head, body and trailers back, the request body up, resets either way. */
function relay(stream: Http2.ServerHttp2Stream, up: Http2.ClientHttp2Stream, endStream: boolean, refused: () => void): void {
  let trailers: Http2.IncomingHttpHeaders | undefined;
  let responded = false;
  up.on('response', (h, flags) => {
    if (stream.destroyed) return;
    responded = true;
    // A trailers-only answer (gRPC errors) ends in its HEADERS frame; keep it so.
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      stream.respond(h, { endStream: true });
      return;
    }
    stream.respond(h, { waitForTrailers: true });
    up.pipe(stream);
  });
  up.on('trailers', (t) => {
    trailers = t;
  });
  stream.on('wantTrailers', () => {
    if (trailers) stream.sendTrailers(trailers);
    else stream.sendTrailers({});
  });
  up.on('error', () => {});
  up.on('close', () => {
    if (stream.destroyed || stream.closed) return;
    if (!responded && up.rstCode === NGHTTP2_REFUSED_STREAM) {
      refused();
      return;
    }
    if (!responded) {
      if (!stream.headersSent) {
        stream.respond({ ':status': 502, 'content-type': 'text/plain' });
        stream.end('upstream closed the stream\n');
      }
      return;
    }
    if (up.rstCode !== undefined && up.rstCode !== 0) stream.close(up.rstCode);
  });
  stream.on('close', () => {
    if (!up.closed && !up.destroyed) up.close(stream.rstCode && stream.rstCode !== 0 ? stream.rstCode : NGHTTP2_CANCEL);
  });
  if (!endStream) stream.pipe(up);
}

/** Serves HTTP/2 on a client connection through node:http2's server. */
function serveOn(server: Http2.Http2Server, socket: Duplex): void {
  let session: Http2.ServerHttp2Session | undefined;
  const take = (s: Http2.ServerHttp2Session) => {
    session = s;
  };
  server.once('session', take);
  server.emit('connection', socket);
  server.off('session', take);
  // The router's sockets allow half-open (HTTP/1 needs it). An HTTP/2
  // client's FIN without GOAWAY (curl does it) means it sends no more
  // frames, so no WINDOW_UPDATE either: close the session gracefully
  // (answers in flight still go out), which frees the socket and the
  // origin sessions; without this both stayed open forever.
  socket.once('end', () => {
    if (session && !session.destroyed) session.close();
    else socket.destroy();
  });
}
