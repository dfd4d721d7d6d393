// The router's way out, as Kubernetes means a pod to leave: the pod is
// deleted with a grace period, the kubelet sends SIGTERM, and the router
//   1. turns itself unready (/healthz answers 503). A Service a router holds
//      publishes not-ready addresses (its standby: standby.ts), so what takes
//      it out of the endpoints is the selector: put back before the router
//      is deleted, and a deleted router's target label removed before a new
//      router takes the Service over (plugin/src/kube/takeover-apply.ts);
//   2. keeps accepting and serving every connection it gets: a node's service
//      proxy applies an endpoint change on its own schedule, and a SYN it sent
//      here just before may arrive (or be retransmitted) late;
//   3. tells clients of kept-alive connections to move, so their next request
//      opens a connection that the service proxy sends to the original pods:
//      HTTP/1.1 answers carry `Connection: close` (RFC 9112 §9.6) and the
//      connection ends after them; HTTP/2 sessions get GOAWAY (RFC 9113 §6.8),
//      which gRPC channels take as "reconnect", and streams in flight complete;
//   4. exits once it has seen no new connection for a quiet period and no
//      HTTP request or stream is in flight — or at a deadline inside the grace
//      period, before the kubelet's SIGKILL.
// Plain TCP and WebSocket splices cannot be told to move; they are served
// until the exit. http1.ts and h2.ts only report to a Drain; the policy is here.
import type http2 from 'node:http2';
import { ROUTER_DRAIN } from '../../../contract/protocol.ts';

/** Something that carries HTTP: an HTTP/1 client connection or an HTTP/2 session. */
export interface Drainable {
  /** A request or stream is in flight. */
  busy(): boolean;
  /**
   * Called once when draining starts, for those there then: HTTP/2 sends
   * GOAWAY here; HTTP/1 needs nothing, its next answer carries `Connection:
   * close`. One that arrives while draining came through a service proxy
   * that has not caught up yet: it is served, and ended at the exit (a
   * GOAWAY at once would race the first streams it sends).
   */
  move(): void;
  /**
   * Called at the exit for one that is not busy: end it politely. A promise
   * holds the exit until it settles (an HTTP/2 session waits for its client
   * to close: endGracefully).
   */
  end(): void | Promise<void>;
}

export interface DrainOptions {
  /** Exit after this long without a new connection (and nothing in flight). */
  quietMs: number;
  /** Exit at the latest this long after draining began: inside the pod's grace period. */
  maxMs: number;
  log: (msg: string) => void;
  now?: () => number;
}

/** Defaults for a router pod (the shared contract: protocol/index.ts). */
export const DRAIN_DEFAULTS = { quietMs: ROUTER_DRAIN.quietMs, maxMs: ROUTER_DRAIN.maxMs } as const;

export class Drain {
  #draining = false;
  #lastConnection: number;
  #connections = 0;
  readonly #tracked = new Set<Drainable>();
  readonly #opts: DrainOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #done: (() => void) | undefined;
  #finished: Promise<void> | undefined;
  #started = 0;

  constructor(opts: DrainOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
    this.#lastConnection = this.#now();
  }

  /** True once draining began: HTTP/1 answers carry `Connection: close`. */
  get active(): boolean {
    return this.#draining;
  }

  /** A connection was accepted (any protocol): the quiet period starts again. */
  connection(): void {
    this.#lastConnection = this.#now();
    if (this.#draining) this.#connections++;
  }

  /** Keeps track of an HTTP carrier; the returned function forgets it (call it when it closes). */
  track(d: Drainable): () => void {
    this.#tracked.add(d);
    return () => {
      this.#tracked.delete(d);
      this.settled();
    };
  }

  /** Something tracked may have become idle (an answer completed, a stream closed). */
  settled(): void {
    if (this.#draining) this.#check();
  }

  /** Starts draining; resolves when the router may exit. Idempotent. */
  start(): Promise<void> {
    this.#finished ??= new Promise<void>((resolve) => {
      this.#draining = true;
      this.#started = this.#now();
      // The quiet period starts now at the earliest: the service proxies apply the endpoint change
      // after it was made, so a connection can come late however quiet it was before.
      this.#lastConnection = this.#started;
      this.#done = resolve;
      this.#opts.log(`draining: unready; serving every connection until none is new for ${this.#opts.quietMs} ms (at most ${this.#opts.maxMs} ms)`);
      for (const d of this.#tracked) d.move();
      this.#check();
    });
    return this.#finished;
  }

  #check(): void {
    if (!this.#done) return;
    const now = this.#now();
    const quietLeft = this.#lastConnection + this.#opts.quietMs - now;
    const deadlineLeft = this.#started + this.#opts.maxMs - now;
    const busy = [...this.#tracked].filter((d) => d.busy()).length;
    if (deadlineLeft > 0 && (quietLeft > 0 || busy > 0)) {
      // Wake at the end of the quiet period (or the deadline); an answer that completes earlier calls settled().
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#check(), Math.max(1, Math.min(quietLeft > 0 ? quietLeft : deadlineLeft, deadlineLeft)));
      return;
    }
    clearTimeout(this.#timer);
    const done = this.#done;
    // Before ending anything: an end() untracks, which comes back here.
    this.#done = undefined;
    const ending = [...this.#tracked].filter((d) => !d.busy()).map((d) => d.end());
    this.#opts.log(`drained in ${Math.round(now - this.#started)} ms: ${this.#connections} connection(s) accepted while draining${busy > 0 ? `; ${busy} still busy at the deadline` : ''}`);
    // The endings have their own bound (END_GRACE_MS); this one keeps a stuck one from holding the exit past it.
    let cap: NodeJS.Timeout | undefined;
    void Promise.race([Promise.all(ending), new Promise((resolve) => (cap = setTimeout(resolve, END_GRACE_MS + 500)))]).then(() => {
      clearTimeout(cap);
      done();
    });
  }
}

/**
 * How long an HTTP/2 client has, at the drain's exit, to close its
 * connection itself after the GOAWAY before the router closes it.
 */
export const END_GRACE_MS = 1000;

/**
 * The exit's end of an HTTP/2 session that is not busy: GOAWAY, then wait
 * for the client to close the connection (it does once it has read the
 * GOAWAY and its streams are done), at most END_GRACE_MS, then close it.
 * Closing at once raced the client: a session that arrived while draining
 * (through a service proxy that had not caught up) got no GOAWAY before
 * (Drainable.move), and a call its client sent just then met a closed
 * connection instead of a GOAWAY that refuses it — gRPC failed that call
 * with UNAVAILABLE (the mesh E2E lost 1 of 3,208 calls so once), where a
 * refused stream is retried on a new connection.
 */
export function endGracefully(s: http2.ServerHttp2Session, graceMs = END_GRACE_MS): Promise<void> {
  if (s.closed || s.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => s.close(), graceMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    goawayGracefully(s);
  });
}

/**
 * The HTTP/1 answer head with `connection: close` in place of the
 * upstream's own Connection and Keep-Alive fields (hop-by-hop, RFC 9110
 * §7.6.1: they were about the upstream's connection, not the client's).
 */
export function withConnectionClose(head: Buffer): Buffer {
  const lines = head.toString('latin1').split('\r\n');
  // The status line, the fields, then the two empty strings of the final CRLF CRLF.
  const fields = lines.slice(1, -2).filter((l) => !/^(connection|keep-alive)[ \t]*:/i.test(l));
  return Buffer.from([lines[0], ...fields, 'connection: close', '', ''].join('\r\n'), 'latin1');
}

/**
 * RFC 9113 §6.8: GOAWAY with the last stream id processed; open streams run
 * to their end. The session is not closed here: a stream the client sent
 * meanwhile is above that id, so the client's own HTTP/2 layer takes it as
 * never processed (REFUSED_STREAM, §8.7) and retries it elsewhere (gRPC
 * does so transparently), then closes the connection itself. Closing it
 * from this side could reset the connection with that stream's bytes
 * unread (the client would see ECONNRESET, and gRPC fails such a call: the
 * mesh E2E saw one). The drain's end closes what is left.
 *
 * The two-step form (a first GOAWAY with 2^31-1, the real one a PING
 * later) cannot be had from node:http2: its goaway() marks the session as
 * having sent GOAWAY, after which nghttp2 ignores new streams silently (a
 * gRPC call made then waited forever), and nghttp2's shutdown notice is not
 * exposed.
 */
export function goawayGracefully(s: http2.ServerHttp2Session): void {
  // No arguments: NO_ERROR, and node:http2 fills in the last stream id processed.
  if (!s.closed && !s.destroyed) s.goaway();
}
