// The two halves of one HTTP/1 exchange that http1.ts relays, each with its
// own state and no I/O: the request body (where it ends, and what of the
// request is kept to send again on another connection), and the response
// reader (heads, interim answers, where the body ends, whether the upstream
// may carry another request).
import { withConnectionClose } from './drain.ts';
import { ChunkedScanner, parseResponseHead, responseFraming } from './http1-parse.ts';
import type { BodyFraming, RequestHead } from './http1-parse.ts';

/** Request bodies up to this size are kept until the answer starts, so the request can be retried elsewhere. */
export const RETRY_BODY = 64 * 1024;

/** A request's body as it passes: its framing, and its bytes while the request can still be retried. */
export class RequestBody {
  #left: number;
  readonly #scanner: ChunkedScanner | undefined;
  /** Head and body bytes sent so far, while the request can still be retried. */
  #sent: Buffer[] | undefined;
  #sentBytes: number;
  /** The whole body has been passed on. */
  done: boolean;

  constructor(req: RequestHead, headBytes: Buffer) {
    this.#left = req.body.kind === 'length' ? req.body.length : 0;
    this.#scanner = req.body.kind === 'chunked' ? new ChunkedScanner() : undefined;
    this.done = req.body.kind === 'none';
    this.#sent = [headBytes];
    this.#sentBytes = headBytes.length;
  }

  /** The request can go again on another connection (nothing answered it, and all it sent is kept). */
  get replayable(): boolean {
    return this.#sent !== undefined;
  }

  /** Everything sent so far, to send (again) on a new connection. */
  replay(): Buffer {
    const sent = this.#sent as Buffer[];
    return sent.length === 1 ? sent[0] : Buffer.concat(sent);
  }

  /** An answer started (or came broken): the request is never sent again. */
  forget(): void {
    this.#sent = undefined;
  }

  /** How many of buf's first bytes belong to this body (a string: the chunked framing is broken). */
  take(buf: Buffer): number | string {
    let n: number;
    if (this.#scanner) {
      const r = this.#scanner.scan(buf);
      if (typeof r === 'string') return r;
      n = r;
      if (this.#scanner.done) this.done = true;
    } else {
      n = Math.min(this.#left, buf.length);
      this.#left -= n;
      if (this.#left === 0) this.done = true;
    }
    return n;
  }

  /** Body bytes that went to the upstream: kept for a retry until RETRY_BODY. */
  sent(chunk: Buffer): void {
    if (!this.#sent) return;
    this.#sentBytes += chunk.length;
    if (this.#sentBytes > RETRY_BODY) this.#sent = undefined;
    else this.#sent.push(chunk);
  }
}

/** What the bytes read so far from the upstream amount to. */
export type ResponseStep =
  /** Not a whole head yet. */
  | { kind: 'more' }
  /** Not an HTTP/1 response. */
  | { kind: 'bad'; why: string }
  /** An interim answer (100 Continue, 103): relay it, a final one follows. */
  | { kind: 'interim'; head: Buffer }
  /** 101: the protocol switches; rest is what followed the head. */
  | { kind: 'switch'; head: Buffer; rest: Buffer }
  /** The final head, with the whole body when it came in the same read (then done). */
  | { kind: 'head'; out: Buffer; done: boolean }
  /** Body bytes; done when they end the answer. */
  | { kind: 'body'; out: Buffer; done: boolean }
  /** The chunked framing is broken. */
  | { kind: 'broken'; why: string };

const MORE: ResponseStep = { kind: 'more' };
const EMPTY = Buffer.alloc(0);

/** Reads one answer (its interim answers first) from an upstream connection. */
export class ResponseReader {
  #buf: Buffer = EMPTY;
  #left = 0;
  #scanner: ChunkedScanner | undefined;
  /** The final answer's body framing, once its head is read. */
  framing: BodyFraming | undefined;
  /** The final answer lets the upstream carry another request (false once bytes follow its end). */
  keepAlive = false;

  readonly method: string;

  constructor(method: string) {
    this.method = method;
  }

  /** Bytes read and not yet stepped over. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** What came after a 101's head (the new protocol's first bytes). */
  get rest(): Buffer {
    return this.#buf;
  }

  feed(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
  }

  /** The final answer has ended (its framing says so). */
  get done(): boolean {
    const f = this.framing;
    if (!f) return false;
    if (f.kind === 'none') return true;
    if (f.kind === 'length') return this.#left === 0;
    if (f.kind === 'chunked') return (this.#scanner as ChunkedScanner).done;
    return false;
  }

  /** The next step over the bytes fed. closing: the router drains, so a final answer gets `Connection: close`. */
  next(closing: boolean): ResponseStep {
    return this.framing ? this.#body() : this.#head(closing);
  }

  #head(closing: boolean): ResponseStep {
    const parsed = parseResponseHead(this.#buf);
    if (parsed.kind === 'more') return MORE;
    if (parsed.kind === 'error') return { kind: 'bad', why: `bad response: ${parsed.why}` };
    let res = parsed.head;
    let all = this.#buf;
    if (res.status >= 200 && closing) {
      // The router drains (drain.ts): this answer sends the client's next request to a new connection.
      const head = withConnectionClose(all.subarray(0, res.headLength));
      all = Buffer.concat([head, all.subarray(res.headLength)]);
      res = { ...res, headLength: head.length, keepAlive: false };
    }
    const head = all.subarray(0, res.headLength);
    this.#buf = all.subarray(res.headLength);
    if (res.status === 101) return { kind: 'switch', head, rest: this.#buf };
    if (res.status < 200) return { kind: 'interim', head };
    this.keepAlive = res.keepAlive;
    const framing = (this.framing = responseFraming(this.method, res));
    if (framing.kind === 'length') this.#left = framing.length;
    if (framing.kind === 'chunked') this.#scanner = new ChunkedScanner();
    if (framing.kind === 'length' && this.#buf.length >= this.#left) {
      // The common case: head and the whole body came in one read. They
      // are contiguous there, so they leave in one write.
      const n = this.#left;
      this.#left = 0;
      this.#buf = this.#buf.subarray(n);
      if (this.#buf.length > 0) this.keepAlive = false;
      return { kind: 'head', out: all.subarray(0, res.headLength + n), done: true };
    }
    if (framing.kind === 'none') {
      if (this.#buf.length > 0) this.keepAlive = false;
      return { kind: 'head', out: head, done: true };
    }
    return { kind: 'head', out: head, done: false };
  }

  #body(): ResponseStep {
    const framing = this.framing as BodyFraming;
    let n = this.#buf.length;
    if (framing.kind === 'length') {
      n = Math.min(this.#left, n);
      this.#left -= n;
    } else if (framing.kind === 'chunked') {
      const r = (this.#scanner as ChunkedScanner).scan(this.#buf);
      if (typeof r === 'string') return { kind: 'broken', why: r };
      n = r;
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    const done = this.done;
    // Bytes after the end of the answer: the upstream is out of step; do not reuse it.
    if (done && this.#buf.length > 0) this.keepAlive = false;
    return { kind: 'body', out, done };
  }
}
