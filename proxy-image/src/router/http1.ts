// HTTP/1.x on one client connection, routed per request (ARCHITECTURE.md rule 2):
// each request head is parsed, matched against the route table, and the
// request's bytes go unchanged to a pooled keep-alive connection to its
// target; the response's bytes come back unchanged. Pipelined requests are
// taken one after another, so answers keep their order (RFC 9112 §9.3.2).
// 1xx answers (100 Continue) are relayed as they come; a 101 turns the
// connection into a byte splice (WebSocket), except h2c, which the router
// takes itself so that every HTTP/2 stream is routed on its own.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { splice } from '../../../contract/ssh/splice.ts';
import { withConnectionClose } from './drain.ts';
import type { Drain } from './drain.ts';
import { ChunkedScanner, MAX_HEAD, leadingCrlf, parseRequestHead, parseResponseHead, responseFraming } from './http1-parse.ts';
import type { BodyFraming, RequestHead, ResponseHead } from './http1-parse.ts';
import { describeTarget, ORIGIN, targetKey } from './upstream.ts';
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
/** Request bodies up to this size are kept until the answer starts, so the request can be retried elsewhere. */
const RETRY_BODY = 64 * 1024;

interface Exchange {
  req: RequestHead;
  /** Head and body bytes sent so far, while the request can still be retried. */
  sent: Buffer[] | undefined;
  sentBytes: number;
  target: Target;
  up?: Duplex;
  /** The upstream connection came from the pool (a stale one is retried on a fresh connection). */
  reused: boolean;
  tries: number;
  reqLeft: number;
  reqScanner?: ChunkedScanner;
  reqDone: boolean;
  res?: ResponseHead;
  resBuf: Buffer;
  resFraming?: BodyFraming;
  resLeft: number;
  resScanner?: ChunkedScanner;
  /** Some response byte has gone to the client: no retry any more. */
  answered: boolean;
  detach?: () => void;
  /** The upstream's listeners, which follow the connection from request to request. */
  link?: UpLink;
}

interface UpLink {
  e: Exchange;
  detach: () => void;
}

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

/**
 * Finds the CRLFCRLF that ends a head across reads, looking at each byte
 * once: a head sent a byte at a time costs O(n), not a rescan per byte.
 */
class HeadEnd {
  #matched = 0;
  reset(): void {
    this.#matched = 0;
  }
  /** True when the bytes fed so far contain the end of a head. */
  feed(d: Buffer): boolean {
    let m = this.#matched;
    for (let i = 0; i < d.length; i++) {
      const c = d[i];
      if (c === (m % 2 === 0 ? 0x0d : 0x0a)) {
        if (++m === 4) {
          this.#matched = 0;
          return true;
        }
      } else {
        m = c === 0x0d ? 1 : 0;
      }
    }
    this.#matched = m;
    return false;
  }
}

/** firstByteAt: when the connection's first byte came (Date.now()); the first head's deadline counts from it. */
export function serveHttp1(client: net.Socket, first: Buffer, deps: Http1Deps, firstByteAt?: number): void {
  let buf = first;
  /** Bytes of an incomplete head not yet joined to buf (joined when its end comes). */
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const headEnd = new HeadEnd();
  headEnd.feed(first);
  let headTimer: NodeJS.Timeout | undefined;
  const headMs = deps.headMs ?? HEAD_MS;
  let headStart = firstByteAt;
  let ex: Exchange | undefined;
  let phase: 'head' | 'busy' | 'gone' = 'head';
  // The client may have half-closed before its first bytes were classified.
  let clientEnded = client.readableEnded;
  let upBlocked = false;
  const from = { ip: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
  /**
   * The upstream connection of the last answer, kept for this client
   * connection's next request to the same target: no pool round trip and no
   * listener churn per request, and the origin sees one connection per
   * client connection (as kube-proxy balances). Any other target sends it
   * to the shared pool.
   */
  let kept: { link: UpLink; up: Duplex; key: string } | undefined;

  const flow = () => {
    if (phase === 'gone') return;
    // Also stop reading while the answers already written have not drained:
    // the next pipelined request waits in the kernel, not in our memory.
    if (upBlocked || buf.length > HIGH_WATER || client.writableNeedDrain) client.pause();
    else client.resume();
  };

  /** The head deadline runs while a head is incomplete (from its first byte), and stops once it is parsed. */
  const armHead = () => {
    const waiting = phase === 'head' && (buf.length > 0 || pendingLen > 0);
    if (waiting && !headTimer) {
      // The first head's clock started with the connection's first byte (before classification).
      const left = headStart === undefined ? headMs : Math.max(0, headMs - (Date.now() - headStart));
      headStart = undefined;
      headTimer = setTimeout(onHeadDeadline, left);
    } else if (!waiting && headTimer) {
      clearTimeout(headTimer);
      headTimer = undefined;
    }
  };
  const onHeadDeadline = () => {
    headTimer = undefined;
    if (phase !== 'head') return;
    // Our own wait (answers not yet drained to this client) is not the client's delay.
    if (client.writableNeedDrain) {
      armHead();
      return;
    }
    merge();
    reject(408, `request head not complete within ${headMs} ms`);
  };
  const merge = () => {
    if (pendingLen === 0) return;
    buf = Buffer.concat([buf, ...pending]);
    pending = [];
    pendingLen = 0;
  };

  const reject = (status: number, why: string) => {
    deps.log(`http1 ${from.ip}:${from.port}: ${status} ${why}`);
    teardown();
    client.end(plainResponse(status, REASONS[status] ?? 'Error', `${why}\n`));
    // Whatever else the client sends is read and dropped until it closes.
    client.resume();
  };

  const teardown = () => {
    phase = 'gone';
    clearTimeout(headTimer);
    headTimer = undefined;
    untrack?.();
    client.removeListener('data', onClientData);
    release();
    if (ex?.up) {
      ex.detach?.();
      ex.up.destroy();
    }
    ex = undefined;
  };

  const onClientData = (d: Buffer) => {
    if (phase === 'head') {
      // Incomplete head: keep the bytes aside until its end shows up (or it is too large).
      pending.push(d);
      pendingLen += d.length;
      if (!headEnd.feed(d) && buf.length + pendingLen < MAX_HEAD) {
        // A head arriving in tiny reads: join them now and then, so a slow
        // client holds a few buffers, not one per byte (each has its own overhead).
        if (pending.length >= 64) merge();
        armHead();
        return;
      }
      merge();
    } else {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    }
    pump();
  };

  const onClientEnd = () => {
    clientEnded = true;
    if (phase === 'head' && buf.length === 0) client.end();
    else pump();
  };
  const onClientClose = () => teardown();
  const onClientDrain = () => {
    ex?.up?.resume();
    pump();
  };
  client.on('data', onClientData).on('end', onClientEnd).on('close', onClientClose).on('drain', onClientDrain);
  client.on('error', () => client.destroy());
  const onTimeout = () => {
    if (phase !== 'head') return;
    if (buf.length > 0) reject(408, `request head not complete after ${idleMs} ms`);
    else {
      teardown();
      client.end();
    }
  };
  const idleMs = deps.idleMs ?? IDLE_MS;
  client.setTimeout(idleMs, onTimeout);
  // Busy while a request is in flight (or its head is coming); at the drain's end an idle one is ended.
  const untrack = deps.drain?.track({
    busy: () => phase === 'busy' || (phase === 'head' && buf.length > 0),
    move: () => undefined,
    end: () => {
      if (phase !== 'head' || buf.length > 0) return;
      teardown();
      client.end();
    },
  });
  /** Another layer takes the socket over (h2c, or a 101 splice). */
  const handOver = () => {
    untrack?.();
    client.off('data', onClientData).off('end', onClientEnd).off('close', onClientClose).off('drain', onClientDrain);
    client.setTimeout(0).off('timeout', onTimeout);
  };

  pump();

  /** Moves whatever can move: a new request head, or request body bytes to the upstream. */
  function pump(): void {
    merge();
    if (phase === 'head' && !client.writableNeedDrain) startNext();
    if (phase === 'busy' && ex && ex.up && !ex.reqDone) sendBody(ex);
    if (clientEnded && phase === 'busy' && ex && !ex.reqDone && buf.length === 0) {
      // The client stopped sending in the middle of a request body: that
      // request can never complete, so neither can its answer.
      deps.log(`http1 ${ex.req.method} ${ex.req.target}: the client ended inside the request body`);
      teardown();
      client.destroy();
      return;
    }
    armHead();
    flow();
  }

  function startNext(): void {
    const skip = leadingCrlf(buf);
    if (skip > 0) buf = buf.subarray(skip);
    if (buf.length === 0) {
      headEnd.reset();
      if (clientEnded) client.end();
      return;
    }
    const parsed = parseRequestHead(buf, MAX_HEAD);
    if (parsed.kind === 'more') {
      if (clientEnded) reject(400, 'connection ended inside a request head');
      // From here on only new bytes are scanned for the head's end.
      headEnd.reset();
      headEnd.feed(buf);
      return;
    }
    if (parsed.kind === 'error') {
      reject(parsed.status, parsed.why);
      return;
    }
    const req = parsed.head;
    if (deps.overloaded?.()) {
      reject(503, 'the router is short of memory; try again');
      return;
    }
    const headBytes = buf.subarray(0, req.headLength);
    buf = buf.subarray(req.headLength);
    if (wantsH2c(req)) {
      teardown();
      handOver();
      deps.h2cUpgrade(client, req, buf);
      return;
    }
    phase = 'busy';
    const e: Exchange = {
      req,
      sent: [headBytes],
      sentBytes: headBytes.length,
      target: deps.choose(req),
      reused: false,
      tries: 0,
      reqLeft: req.body.kind === 'length' ? req.body.length : 0,
      reqDone: req.body.kind === 'none',
      resBuf: Buffer.alloc(0),
      resLeft: 0,
      answered: false,
    };
    if (req.body.kind === 'chunked') e.reqScanner = new ChunkedScanner();
    ex = e;
    connectUpstream(e);
  }

  /** The kept upstream goes to the shared pool (another target, or this client is gone). */
  function release(): void {
    if (!kept) return;
    const k = kept;
    kept = undefined;
    k.link.detach();
    deps.pool.put(k.key, k.up);
  }

  function connectUpstream(e: Exchange): void {
    e.tries++;
    const key = targetKey(e.target);
    if (kept && kept.key === key && e.tries === 1) {
      const k = kept;
      kept = undefined;
      if (!k.up.destroyed && !k.up.readableEnded) {
        k.link.e = e;
        e.link = k.link;
        e.up = k.up;
        e.reused = true;
        e.detach = k.link.detach;
        write(k.up, e.sent?.length === 1 ? e.sent[0] : Buffer.concat(e.sent as Buffer[]));
        pump();
        return;
      }
      k.link.detach();
      k.up.destroy();
    }
    release();
    const pooled = deps.pool.take(key);
    if (pooled) {
      attach(e, pooled, true);
      return;
    }
    deps.connector.connect(e.target, from).then(
      (up) => {
        if (ex !== e) {
          up.destroy();
          return;
        }
        attach(e, up, false);
      },
      (err: Error) => {
        if (ex !== e) return;
        retryOrFail(e, `could not reach ${describeTarget(e.target)}: ${err.message}`);
      },
    );
  }

  /** The upstream failed before answering: try the origin (or a fresh connection), else 502. */
  function retryOrFail(e: Exchange, why: string): void {
    if (e.up) {
      e.detach?.();
      e.up.destroy();
      e.up = undefined;
    }
    const canRetry = !e.answered && e.sent !== undefined && e.tries < 3;
    if (canRetry && (e.target.kind === 'route' || e.reused)) {
      // A developer's link is gone: the request goes to the origin, never an
      // error. A pooled connection the server had just closed: retry.
      deps.log(`http1 ${e.req.method} ${e.req.target}: ${why}; retrying on ${e.target.kind === 'route' ? 'origin' : 'a fresh connection'}`);
      e.target = ORIGIN;
      e.reused = false;
      e.resBuf = Buffer.alloc(0);
      connectUpstream(e);
      return;
    }
    deps.log(`http1 ${e.req.method} ${e.req.target}: ${why}`);
    if (e.answered) {
      teardown();
      client.destroy();
    } else {
      reject(502, `upstream failed: ${why}`);
    }
  }

  function attach(e: Exchange, up: Duplex, reused: boolean): void {
    e.up = up;
    e.reused = reused;
    // The listeners stay while the connection serves this client's requests; `link.e` is the current one.
    const link: UpLink = { e, detach: () => undefined };
    const onData = (d: Buffer) => onUpData(link.e, d);
    const onEnd = () => onUpEnd(link.e);
    const onErr = (err: Error) => onUpGone(link.e, err.message);
    const onClose = () => onUpGone(link.e, 'connection closed');
    const onDrain = () => {
      upBlocked = false;
      flow();
    };
    up.on('data', onData).on('end', onEnd).on('error', onErr).on('close', onClose).on('drain', onDrain);
    link.detach = () => {
      up.off('data', onData).off('end', onEnd).off('error', onErr).off('close', onClose).off('drain', onDrain);
      if (link.e.detach === link.detach) link.e.detach = undefined;
    };
    e.detach = link.detach;
    e.link = link;
    // Everything sent so far (head, and body bytes on a retry) goes first.
    const out = e.sent as Buffer[];
    write(up, out.length === 1 ? out[0] : Buffer.concat(out));
    pump();
  }

  function write(up: Duplex, chunk: Buffer): void {
    if (!up.write(chunk)) upBlocked = true;
  }

  function sendBody(e: Exchange): void {
    const up = e.up as Duplex;
    if (buf.length === 0) return;
    let n: number;
    if (e.reqScanner) {
      const r = e.reqScanner.scan(buf);
      if (typeof r === 'string') {
        reject(400, r);
        return;
      }
      n = r;
      if (e.reqScanner.done) e.reqDone = true;
    } else {
      n = Math.min(e.reqLeft, buf.length);
      e.reqLeft -= n;
      if (e.reqLeft === 0) e.reqDone = true;
    }
    if (n === 0) return;
    const chunk = buf.subarray(0, n);
    buf = buf.subarray(n);
    if (e.sent) {
      e.sentBytes += n;
      if (e.sentBytes > RETRY_BODY) e.sent = undefined;
      else e.sent.push(chunk);
    }
    write(up, chunk);
  }

  /** The kept upstream spoke, ended or failed between requests: it is of no more use. */
  function dropKept(e: Exchange): boolean {
    if (ex === e) return false;
    if (kept && kept.link.e === e) {
      const k = kept;
      kept = undefined;
      k.link.detach();
      k.up.destroy();
    }
    return true;
  }

  function onUpData(e: Exchange, d: Buffer): void {
    if (dropKept(e)) return;
    e.resBuf = e.resBuf.length === 0 ? d : Buffer.concat([e.resBuf, d]);
    // Head and body (and interim answers) of one read leave in one writev.
    client.cork();
    try {
      while (ex === e && e.resBuf.length > 0) {
        if (!e.resFraming) {
          if (!readResponseHead(e)) return;
        } else {
          readResponseBody(e);
          return;
        }
      }
    } finally {
      client.uncork();
    }
  }

  /** Handles one response head if complete; false when more bytes are needed or the exchange ended. */
  function readResponseHead(e: Exchange): boolean {
    const parsed = parseResponseHead(e.resBuf);
    if (parsed.kind === 'more') return false;
    if (parsed.kind === 'error') {
      e.sent = undefined;
      retryOrFail(e, `bad response: ${parsed.why}`);
      return false;
    }
    let res = parsed.head;
    let all = e.resBuf;
    if (res.status >= 200 && deps.drain?.active) {
      // The router drains (drain.ts): this answer sends the client's next request to a new connection.
      const head = withConnectionClose(all.subarray(0, res.headLength));
      all = Buffer.concat([head, all.subarray(res.headLength)]);
      res = { ...res, headLength: head.length, keepAlive: false };
    }
    const head = all.subarray(0, res.headLength);
    e.resBuf = all.subarray(res.headLength);
    e.answered = true;
    e.sent = undefined;
    if (res.status === 101) {
      if (!e.req.upgrade) {
        retryOrFail(e, '101 without an upgrade request');
        return false;
      }
      // The protocol switched (RFC 9110 §15.2.2): from here on bytes, both ways.
      const up = e.up as Duplex;
      e.detach?.();
      phase = 'gone';
      ex = undefined;
      handOver();
      client.write(head);
      if (e.resBuf.length > 0) client.write(e.resBuf);
      if (buf.length > 0) up.write(buf);
      splice(client, up);
      return false;
    }
    if (res.status < 200) {
      // 100 Continue and other interim answers: relay, then wait for the final one.
      client.write(head);
      return true;
    }
    e.res = res;
    e.resFraming = responseFraming(e.req.method, res);
    if (e.resFraming.kind === 'length') e.resLeft = e.resFraming.length;
    if (e.resFraming.kind === 'chunked') e.resScanner = new ChunkedScanner();
    if (e.resFraming.kind === 'length' && e.resBuf.length >= e.resLeft) {
      // The common case: head and the whole body came in one read. They
      // are contiguous there, so they leave in one write.
      const n = e.resLeft;
      e.resLeft = 0;
      e.resBuf = e.resBuf.subarray(n);
      if (!client.write(all.subarray(0, res.headLength + n))) e.up?.pause();
      if (e.resBuf.length > 0) e.res.keepAlive = false;
      finish(e);
      return false;
    }
    if (!client.write(head)) e.up?.pause();
    if (e.resFraming.kind === 'none') {
      if (e.resBuf.length > 0) e.res.keepAlive = false;
      finish(e);
      return false;
    }
    return true;
  }

  function readResponseBody(e: Exchange): void {
    const framing = e.resFraming as BodyFraming;
    let n = e.resBuf.length;
    if (framing.kind === 'length') {
      n = Math.min(e.resLeft, n);
      e.resLeft -= n;
    } else if (framing.kind === 'chunked') {
      const r = (e.resScanner as ChunkedScanner).scan(e.resBuf);
      if (typeof r === 'string') {
        deps.log(`http1 ${e.req.method} ${e.req.target}: broken chunked response: ${r}`);
        teardown();
        client.destroy();
        return;
      }
      n = r;
    }
    const chunk = e.resBuf.subarray(0, n);
    e.resBuf = e.resBuf.subarray(n);
    if (chunk.length > 0 && !client.write(chunk)) e.up?.pause();
    if (doneResponse(e)) {
      // Bytes after the end of the answer: the upstream is out of step; do not reuse it.
      if (e.resBuf.length > 0 && e.res) e.res.keepAlive = false;
      finish(e);
    }
  }

  function doneResponse(e: Exchange): boolean {
    const f = e.resFraming;
    if (!f) return false;
    if (f.kind === 'none') return true;
    if (f.kind === 'length') return e.resLeft === 0;
    if (f.kind === 'chunked') return (e.resScanner as ChunkedScanner).done;
    return false;
  }

  function onUpEnd(e: Exchange): void {
    if (dropKept(e)) return;
    if (e.resFraming?.kind === 'close') {
      if (e.res) e.res.keepAlive = false;
      finish(e);
      return;
    }
    onUpGone(e, 'connection ended');
  }

  function onUpGone(e: Exchange, why: string): void {
    if (dropKept(e)) return;
    if (e.resFraming && doneResponse(e)) return;
    if (e.resFraming?.kind === 'close') {
      onUpEnd(e);
      return;
    }
    retryOrFail(e, why);
  }

  /** The answer is complete: reuse or drop the upstream, then take the next request or end. */
  function finish(e: Exchange): void {
    if (ex !== e) return;
    const up = e.up as Duplex;
    e.up = undefined;
    upBlocked = false;
    up.resume();
    const res = e.res as ResponseHead;
    const reusable = e.reqDone && res.keepAlive && e.req.keepAlive && e.resFraming?.kind !== 'close';
    ex = undefined;
    if (reusable && e.link && phase !== 'gone') {
      release();
      kept = { link: e.link, up, key: targetKey(e.target) };
    } else {
      e.detach?.();
      if (reusable) deps.pool.put(targetKey(e.target), up);
      else up.destroy();
    }
    // An answer that came before the request body was all sent leaves the
    // client mid-request; the connection cannot carry another request.
    if (!e.reqDone || !res.keepAlive || !e.req.keepAlive || e.resFraming?.kind === 'close') {
      teardown();
      client.end();
      return;
    }
    phase = 'head';
    pump();
  }
}
