// HTTP/1.x on one client connection, routed per request (ARCHITECTURE.md rule 2):
// each request head is parsed, matched against the route table, and the
// request's bytes go unchanged to a pooled keep-alive connection to its
// target; the response's bytes come back unchanged. Pipelined requests are
// taken one after another, so answers keep their order (RFC 9112 §9.3.2).
// 1xx answers (100 Continue) are relayed as they come; a 101 turns the
// connection into a byte splice (WebSocket), except h2c, which the router
// takes itself so that every HTTP/2 stream is routed on its own.
//
// One Http1Connection per client connection, in one of three phases (head,
// busy, gone); the request body and the response reader of the exchange in
// flight are http1-body.ts's, the upstream connections http1-upstream.ts's.
import type net from 'node:net';
import type { Drain } from './drain.ts';
import { HeadEnd, leadingCrlf, MAX_HEAD, parseRequestHead } from './http1-parse.ts';
import type { RequestHead } from './http1-parse.ts';
import { Upstreams } from './http1-upstream.ts';
import type { Connector, Pool, Target } from './upstream.ts';

export interface Http1Deps {
  /** The target for a request with these headers (route table + precedence). */
  choose(head: RequestHead): Target;
  connector: Connector;
  pool: Pool;
  /** An h2c upgrade request: the router answers 101 and speaks HTTP/2 from here on. */
  h2cUpgrade(client: net.Socket, head: RequestHead, rest: Buffer): void;
  log(msg: string): void;
  /** Overrides IDLE_MS (tests). */
  idleMs?: number;
  /** Overrides HEAD_MS (tests). */
  headMs?: number;
  /** The router is short of memory (pressure.ts): new requests get 503. */
  overloaded?: () => boolean;
  /** The router's drain (drain.ts): while it is active, answers carry `Connection: close`. */
  drain?: Drain;
}

/**
 * A client connection with no request in flight is closed after this long
 * idle, and one that starts a request head must finish it within it (against
 * slow-header clients). Requests in flight have no limit: long polls and
 * streams are the application's business.
 */
const IDLE_MS = 120_000;
/**
 * A request head must be complete within this long of its first byte, or
 * the client gets 408 (RFC 9110 §15.5.9) and the connection closes: an idle
 * timer alone let a client sending one byte every 50 s hold a connection
 * forever (slowloris). nginx's client_header_timeout is 60 s;
 * a real client sends its head in one write.
 */
export const HEAD_MS = 30_000;
/** Stop reading from the client while this much is buffered and not yet forwardable. */
const HIGH_WATER = 256 * 1024;

function plainResponse(status: number, reason: string, text: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    'latin1',
  );
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function wantsH2c(head: RequestHead): boolean {
  if (!head.upgrade) return false;
  const up = head.upgrade.toLowerCase().split(',').map((s) => s.trim());
  // RFC 7540 §3.2: exactly one HTTP2-Settings, named in Connection; we take no body.
  return up.includes('h2c') && head.connection.includes('http2-settings') && head.headers.filter(([n]) => n === 'http2-settings').length === 1 && head.body.kind === 'none';
}

/** firstByteAt: when the connection's first byte came (Date.now()); the first head's deadline counts from it. */
export function serveHttp1(client: net.Socket, first: Buffer, deps: Http1Deps, firstByteAt?: number): void {
  new Http1Connection(client, first, deps, firstByteAt).pump();
}

/**
 * head: no request in flight; a head may be arriving (its deadline runs).
 * busy: a request is in flight (its body may still be coming).
 * gone: closed, or handed over to another layer (h2c, a 101 splice).
 */
export type Phase = 'head' | 'busy' | 'gone';

/** The client side of one connection: request heads, timers, flow control; the exchange in flight is `up`'s. */
export class Http1Connection {
  phase: Phase = 'head';
  /** Client bytes read and not yet forwarded (a head, then the body). */
  buf: Buffer;
  /** Bytes of an incomplete head not yet joined to buf (joined when its end comes). */
  #pending: Buffer[] = [];
  #pendingLen = 0;
  readonly #headEnd = new HeadEnd();
  #headTimer: NodeJS.Timeout | undefined;
  #headStart: number | undefined;
  /** The client half-closed (it may have before its first bytes were classified). */
  clientEnded: boolean;
  readonly client: net.Socket;
  readonly deps: Http1Deps;
  readonly from: { ip: string; port: number };
  readonly #headMs: number;
  readonly #idleMs: number;
  readonly #untrack: (() => void) | undefined;
  /** The exchange in flight and the upstream connections. */
  readonly up: Upstreams;

  constructor(client: net.Socket, first: Buffer, deps: Http1Deps, firstByteAt?: number) {
    this.client = client;
    this.deps = deps;
    this.buf = first;
    this.#headEnd.feed(first);
    this.#headMs = deps.headMs ?? HEAD_MS;
    this.#idleMs = deps.idleMs ?? IDLE_MS;
    this.#headStart = firstByteAt;
    this.clientEnded = client.readableEnded;
    this.from = { ip: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
    this.up = new Upstreams(this);
    client.on('data', this.#onData).on('end', this.#onEnd).on('close', this.#onClose).on('drain', this.#onDrain);
    client.on('error', () => client.destroy());
    client.setTimeout(this.#idleMs, this.#onTimeout);
    // Busy while a request is in flight (or its head is coming); at the drain's end an idle one is ended.
    this.#untrack = deps.drain?.track({
      busy: () => this.phase === 'busy' || (this.phase === 'head' && this.buf.length > 0),
      move: () => undefined,
      end: () => {
        if (this.phase !== 'head' || this.buf.length > 0) return;
        this.teardown();
        client.end();
      },
    });
  }

  /** Reads from the client only while what it sent can move on. */
  flow(): void {
    if (this.phase === 'gone') return;
    // Also stop reading while the answers already written have not drained:
    // the next pipelined request waits in the kernel, not in our memory.
    if (this.up.blocked || this.buf.length > HIGH_WATER || this.client.writableNeedDrain) this.client.pause();
    else this.client.resume();
  }

  /** Moves whatever can move: a new request head, or request body bytes to the upstream. */
  pump(): void {
    this.#merge();
    if (this.phase === 'head' && !this.client.writableNeedDrain) this.#startNext();
    if (this.phase === 'busy') {
      const ex = this.up.current;
      if (ex && ex.up && !ex.body.done) this.up.sendBody(ex);
      if (this.clientEnded && this.phase === 'busy' && ex && !ex.body.done && this.buf.length === 0) {
        // The client stopped sending in the middle of a request body: that
        // request can never complete, so neither can its answer.
        this.deps.log(`http1 ${ex.req.method} ${ex.req.target}: the client ended inside the request body`);
        this.teardown();
        this.client.destroy();
        return;
      }
    }
    this.#armHead();
    this.flow();
  }

  /** Answers with an error and closes; whatever else the client sends is read and dropped. */
  reject(status: number, why: string): void {
    this.deps.log(`http1 ${this.from.ip}:${this.from.port}: ${status} ${why}`);
    this.teardown();
    this.client.end(plainResponse(status, REASONS[status] ?? 'Error', `${why}\n`));
    this.client.resume();
  }

  teardown(): void {
    this.phase = 'gone';
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
    this.#untrack?.();
    this.client.removeListener('data', this.#onData);
    this.up.close();
  }

  /** Another layer takes the socket over (h2c, or a 101 splice). */
  handOver(): void {
    this.#untrack?.();
    this.client.off('data', this.#onData).off('end', this.#onEnd).off('close', this.#onClose).off('drain', this.#onDrain);
    this.client.setTimeout(0).off('timeout', this.#onTimeout);
  }

  /** The answer is complete (the upstream is kept, pooled or closed): take the next request, or end. */
  answered(again: boolean): void {
    if (!again) {
      this.teardown();
      this.client.end();
      return;
    }
    this.phase = 'head';
    this.pump();
  }

  readonly #onData = (d: Buffer): void => {
    if (this.phase === 'head') {
      // Incomplete head: keep the bytes aside until its end shows up (or it is too large).
      this.#pending.push(d);
      this.#pendingLen += d.length;
      if (!this.#headEnd.feed(d) && this.buf.length + this.#pendingLen < MAX_HEAD) {
        // A head arriving in tiny reads: join them now and then, so a slow
        // client holds a few buffers, not one per byte (each has its own overhead).
        if (this.#pending.length >= 64) this.#merge();
        this.#armHead();
        return;
      }
      this.#merge();
    } else {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    }
    this.pump();
  };

  readonly #onEnd = (): void => {
    this.clientEnded = true;
    if (this.phase === 'head' && this.buf.length === 0) this.client.end();
    else this.pump();
  };

  readonly #onClose = (): void => this.teardown();

  readonly #onDrain = (): void => {
    this.up.current?.up?.resume();
    this.pump();
  };

  readonly #onTimeout = (): void => {
    if (this.phase !== 'head') return;
    if (this.buf.length > 0) this.reject(408, `request head not complete after ${this.#idleMs} ms`);
    else {
      this.teardown();
      this.client.end();
    }
  };

  /** The head deadline runs while a head is incomplete (from its first byte), and stops once it is parsed. */
  #armHead(): void {
    const waiting = this.phase === 'head' && (this.buf.length > 0 || this.#pendingLen > 0);
    if (waiting && !this.#headTimer) {
      // The first head's clock started with the connection's first byte (before classification).
      const left = this.#headStart === undefined ? this.#headMs : Math.max(0, this.#headMs - (Date.now() - this.#headStart));
      this.#headStart = undefined;
      this.#headTimer = setTimeout(this.#onHeadDeadline, left);
    } else if (!waiting && this.#headTimer) {
      clearTimeout(this.#headTimer);
      this.#headTimer = undefined;
    }
  }

  readonly #onHeadDeadline = (): void => {
    this.#headTimer = undefined;
    if (this.phase !== 'head') return;
    // Our own wait (answers not yet drained to this client) is not the client's delay.
    if (this.client.writableNeedDrain) {
      this.#armHead();
      return;
    }
    this.#merge();
    this.reject(408, `request head not complete within ${this.#headMs} ms`);
  };

  #merge(): void {
    if (this.#pendingLen === 0) return;
    this.buf = Buffer.concat([this.buf, ...this.#pending]);
    this.#pending = [];
    this.#pendingLen = 0;
  }

  #startNext(): void {
    const skip = leadingCrlf(this.buf);
    if (skip > 0) this.buf = this.buf.subarray(skip);
    if (this.buf.length === 0) {
      this.#headEnd.reset();
      if (this.clientEnded) this.client.end();
      return;
    }
    const parsed = parseRequestHead(this.buf, MAX_HEAD);
    if (parsed.kind === 'more') {
      if (this.clientEnded) this.reject(400, 'connection ended inside a request head');
      // From here on only new bytes are scanned for the head's end.
      this.#headEnd.reset();
      this.#headEnd.feed(this.buf);
      return;
    }
    if (parsed.kind === 'error') {
      this.reject(parsed.status, parsed.why);
      return;
    }
    const req = parsed.head;
    if (this.deps.overloaded?.()) {
      this.reject(503, 'the router is short of memory; try again');
      return;
    }
    const headBytes = this.buf.subarray(0, req.headLength);
    this.buf = this.buf.subarray(req.headLength);
    if (wantsH2c(req)) {
      this.teardown();
      this.handOver();
      this.deps.h2cUpgrade(this.client, req, this.buf);
      return;
    }
    this.phase = 'busy';
    this.up.start(req, headBytes);
  }
}
