// The upstream side of one HTTP/1 client connection (http1.ts): the exchange
// in flight — its request body going up, its answer coming back — and the
// upstream connections it uses: kept for the connection's next request to
// the same target, else taken from and given back to the port's pool.
// A request that fails before any answer goes again (to the origin when a
// developer's link is gone; on a fresh connection when a pooled one was
// stale); otherwise the client gets 502.
import type { Duplex } from 'node:stream';
import { splice } from '../../../contract/ssh/splice.ts';
import { RequestBody, ResponseReader } from './http1-body.ts';
import type { ResponseStep } from './http1-body.ts';
import type { RequestHead } from './http1-parse.ts';
import type { Http1Connection } from './http1.ts';
import { describeTarget, ORIGIN, targetKey } from './upstream.ts';
import type { Target } from './upstream.ts';

/** One request and its answer. */
export interface Exchange {
  req: RequestHead;
  body: RequestBody;
  target: Target;
  up?: Duplex;
  /** The upstream connection came from the pool (a stale one is retried on a fresh connection). */
  reused: boolean;
  tries: number;
  reader: ResponseReader;
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

export class Upstreams {
  /** The exchange in flight. */
  current: Exchange | undefined;
  /** A write to the upstream did not drain yet: the client is not read meanwhile. */
  blocked = false;
  /**
   * The upstream connection of the last answer, kept for this client
   * connection's next request to the same target: no pool round trip and no
   * listener churn per request, and the origin sees one connection per
   * client connection (as kube-proxy balances). Any other target sends it
   * to the shared pool.
   */
  #kept: { link: UpLink; up: Duplex; key: string } | undefined;
  readonly #conn: Http1Connection;

  constructor(conn: Http1Connection) {
    this.#conn = conn;
  }

  /** A new request, its head parsed: choose its target and send it there. */
  start(req: RequestHead, headBytes: Buffer): void {
    const e: Exchange = {
      req,
      body: new RequestBody(req, headBytes),
      target: this.#conn.deps.choose(req),
      reused: false,
      tries: 0,
      reader: new ResponseReader(req.method),
      answered: false,
    };
    this.current = e;
    this.#connect(e);
  }

  /** The client connection is gone: the kept upstream goes to the pool, the one in use is closed. */
  close(): void {
    this.#release();
    const ex = this.current;
    if (ex?.up) {
      ex.detach?.();
      ex.up.destroy();
    }
    this.current = undefined;
  }

  /** Request body bytes the client sent go up, as far as the body goes. */
  sendBody(e: Exchange): void {
    const conn = this.#conn;
    if (conn.buf.length === 0) return;
    const n = e.body.take(conn.buf);
    if (typeof n === 'string') {
      conn.reject(400, n);
      return;
    }
    if (n === 0) return;
    const chunk = conn.buf.subarray(0, n);
    conn.buf = conn.buf.subarray(n);
    e.body.sent(chunk);
    this.#write(e.up as Duplex, chunk);
  }

  /** The kept upstream goes to the shared pool (another target, or this client is gone). */
  #release(): void {
    if (!this.#kept) return;
    const k = this.#kept;
    this.#kept = undefined;
    k.link.detach();
    this.#conn.deps.pool.put(k.key, k.up);
  }

  #connect(e: Exchange): void {
    e.tries++;
    const key = targetKey(e.target);
    const k = this.#kept;
    if (k && k.key === key && e.tries === 1) {
      this.#kept = undefined;
      if (!k.up.destroyed && !k.up.readableEnded) {
        k.link.e = e;
        e.link = k.link;
        e.up = k.up;
        e.reused = true;
        e.detach = k.link.detach;
        this.#write(k.up, e.body.replay());
        this.#conn.pump();
        return;
      }
      k.link.detach();
      k.up.destroy();
    }
    this.#release();
    const deps = this.#conn.deps;
    const pooled = deps.pool.take(key);
    if (pooled) {
      this.#attach(e, pooled, true);
      return;
    }
    deps.connector.connect(e.target, this.#conn.from).then(
      (up) => {
        if (this.current !== e) {
          up.destroy();
          return;
        }
        this.#attach(e, up, false);
      },
      (err: Error) => {
        if (this.current !== e) return;
        this.#retryOrFail(e, `could not reach ${describeTarget(e.target)}: ${err.message}`);
      },
    );
  }

  /** The upstream failed before answering: try the origin (or a fresh connection), else 502. */
  #retryOrFail(e: Exchange, why: string): void {
    const conn = this.#conn;
    if (e.up) {
      e.detach?.();
      e.up.destroy();
      e.up = undefined;
    }
    const canRetry = !e.answered && e.body.replayable && e.tries < 3;
    if (canRetry && (e.target.kind === 'route' || e.reused)) {
      // A developer's link is gone: the request goes to the origin, never an
      // error. A pooled connection the server had just closed: retry.
      conn.deps.log(`http1 ${e.req.method} ${e.req.target}: ${why}; retrying on ${e.target.kind === 'route' ? 'origin' : 'a fresh connection'}`);
      e.target = ORIGIN;
      e.reused = false;
      e.reader = new ResponseReader(e.req.method);
      this.#connect(e);
      return;
    }
    conn.deps.log(`http1 ${e.req.method} ${e.req.target}: ${why}`);
    if (e.answered) {
      conn.teardown();
      conn.client.destroy();
    } else {
      conn.reject(502, `upstream failed: ${why}`);
    }
  }

  #attach(e: Exchange, up: Duplex, reused: boolean): void {
    e.up = up;
    e.reused = reused;
    // The listeners stay while the connection serves this client's requests; `link.e` is the current one.
    const link: UpLink = { e, detach: () => undefined };
    const onData = (d: Buffer) => this.#onUpData(link.e, d);
    const onEnd = () => this.#onUpEnd(link.e);
    const onErr = (err: Error) => this.#onUpGone(link.e, err.message);
    const onClose = () => this.#onUpGone(link.e, 'connection closed');
    const onDrain = () => {
      this.blocked = false;
      this.#conn.flow();
    };
    up.on('data', onData).on('end', onEnd).on('error', onErr).on('close', onClose).on('drain', onDrain);
    link.detach = () => {
      up.off('data', onData).off('end', onEnd).off('error', onErr).off('close', onClose).off('drain', onDrain);
      if (link.e.detach === link.detach) link.e.detach = undefined;
    };
    e.detach = link.detach;
    e.link = link;
    // Everything sent so far (head, and body bytes on a retry) goes first.
    this.#write(up, e.body.replay());
    this.#conn.pump();
  }

  #write(up: Duplex, chunk: Buffer): void {
    if (!up.write(chunk)) this.blocked = true;
  }

  /** The kept upstream spoke, ended or failed between requests: it is of no more use. */
  #dropKept(e: Exchange): boolean {
    if (this.current === e) return false;
    const k = this.#kept;
    if (k && k.link.e === e) {
      this.#kept = undefined;
      k.link.detach();
      k.up.destroy();
    }
    return true;
  }

  #onUpData(e: Exchange, d: Buffer): void {
    if (this.#dropKept(e)) return;
    e.reader.feed(d);
    const client = this.#conn.client;
    // Head and body (and interim answers) of one read leave in one writev.
    client.cork();
    try {
      while (this.current === e && e.reader.buffered > 0) {
        if (!this.#step(e, e.reader.next(this.#conn.deps.drain?.active === true))) return;
      }
    } finally {
      client.uncork();
    }
  }

  /** Acts on one step of the answer; false when nothing more is to be read now. */
  #step(e: Exchange, step: ResponseStep): boolean {
    const conn = this.#conn;
    const client = conn.client;
    if (step.kind === 'more') return false;
    if (step.kind === 'broken') {
      conn.deps.log(`http1 ${e.req.method} ${e.req.target}: broken chunked response: ${step.why}`);
      conn.teardown();
      client.destroy();
      return false;
    }
    if (step.kind === 'body') {
      if (step.out.length > 0 && !client.write(step.out)) e.up?.pause();
      if (step.done) this.#finish(e);
      return false;
    }
    e.body.forget();
    if (step.kind === 'bad') {
      this.#retryOrFail(e, step.why);
      return false;
    }
    e.answered = true;
    if (step.kind === 'switch') {
      if (!e.req.upgrade) this.#retryOrFail(e, '101 without an upgrade request');
      else this.#switch(e, step.head, step.rest);
      return false;
    }
    if (step.kind === 'interim') {
      // 100 Continue and other interim answers: relay, then wait for the final one.
      client.write(step.head);
      return true;
    }
    if (!client.write(step.out)) e.up?.pause();
    if (!step.done) return true;
    this.#finish(e);
    return false;
  }

  /** The protocol switched (RFC 9110 §15.2.2): from here on bytes, both ways. */
  #switch(e: Exchange, head: Buffer, rest: Buffer): void {
    const conn = this.#conn;
    const up = e.up as Duplex;
    e.detach?.();
    conn.phase = 'gone';
    this.current = undefined;
    conn.handOver();
    conn.client.write(head);
    if (rest.length > 0) conn.client.write(rest);
    if (conn.buf.length > 0) up.write(conn.buf);
    splice(conn.client, up);
  }

  #onUpEnd(e: Exchange): void {
    if (this.#dropKept(e)) return;
    if (e.reader.framing?.kind === 'close') {
      e.reader.keepAlive = false;
      this.#finish(e);
      return;
    }
    this.#onUpGone(e, 'connection ended');
  }

  #onUpGone(e: Exchange, why: string): void {
    if (this.#dropKept(e)) return;
    if (e.reader.framing && e.reader.done) return;
    if (e.reader.framing?.kind === 'close') {
      this.#onUpEnd(e);
      return;
    }
    this.#retryOrFail(e, why);
  }

  /** The answer is complete: reuse or drop the upstream, then take the next request or end. */
  #finish(e: Exchange): void {
    if (this.current !== e) return;
    const conn = this.#conn;
    const up = e.up as Duplex;
    e.up = undefined;
    this.blocked = false;
    up.resume();
    // An answer that came before the request body was all sent leaves the
    // client mid-request; the connection cannot carry another request.
    const reusable = e.body.done && e.reader.keepAlive && e.req.keepAlive && e.reader.framing?.kind !== 'close';
    this.current = undefined;
    if (reusable && e.link && conn.phase !== 'gone') {
      this.#release();
      this.#kept = { link: e.link, up, key: targetKey(e.target) };
    } else {
      e.detach?.();
      if (reusable) conn.deps.pool.put(targetKey(e.target), up);
      else up.destroy();
    }
    conn.answered(reusable);
  }
}
