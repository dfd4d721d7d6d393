// HTTP/1.x message heads and chunked framing, parsed just enough to route
// and to find where each message ends (RFC 9112). The router forwards the
// bytes it received unchanged; this only reads them. Pure: no I/O.
//
// Strict where leniency enables request smuggling (RFC 9112 §6.1, §6.3,
// §11.2): Transfer-Encoding with Content-Length, differing Content-Length
// values, obs-fold, whitespace before the colon, bare CR or LF — all 400.

/** Longest request or response head accepted (request line and headers). */
export const MAX_HEAD = 64 * 1024;
/** Longest chunk-size line or trailer section accepted. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 64 * 1024;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/;
/** Control characters other than HTAB are not allowed in field values (RFC 9110 §5.5). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

interface HeadCommon {
  minor: 0 | 1;
  /** [lowercased name, value] in arrival order. */
  headers: Array<[string, string]>;
  /** Bytes the head takes, CRLFCRLF included. */
  headLength: number;
  /** Whether the connection may carry another message after this one (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** Connection tokens, lowercased. */
  connection: string[];
}

export interface RequestHead extends HeadCommon {
  method: string;
  target: string;
  body: BodyFraming;
  /** The Upgrade header's value when Connection names upgrade. */
  upgrade?: string;
}

export interface ResponseHead extends HeadCommon {
  status: number;
  chunked: boolean;
  contentLength?: number;
}

export type Parsed<T> = { kind: 'more' } | { kind: 'error'; status: 400 | 431 | 501; why: string } | { kind: 'ok'; head: T };

const fail = (status: 400 | 431 | 501, why: string) => ({ kind: 'error' as const, status, why });

/** Number of CRLF pairs at the start (RFC 9112 §2.2: ignore empty lines before a request line). */
export function leadingCrlf(buf: Buffer): number {
  let i = 0;
  while (i + 1 < buf.length && buf[i] === 0x0d && buf[i + 1] === 0x0a) i += 2;
  return i;
}

function splitHead(buf: Buffer, max: number): { kind: 'more' } | { kind: 'error'; status: 400 | 431 | 501; why: string } | { lines: string[]; length: number } {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0 || end + 4 > max) {
    if (buf.length >= max || end + 4 > max) return fail(431, `head larger than ${max} bytes`);
    return { kind: 'more' };
  }
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  for (const l of lines) if (l.includes('\n') || l.includes('\r')) return fail(400, 'bare CR or LF in the head');
  return { lines, length: end + 4 };
}

function parseFields(lines: string[]): Array<[string, string]> | string {
  const out: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    // obs-fold (a line starting with whitespace) is rejected (RFC 9112 §5.2).
    const m = FIELD.exec(line);
    if (!m) return `malformed header line ${JSON.stringify(line.slice(0, 40))}`;
    if (BAD_VALUE.test(m[2])) return `control character in header ${m[1]}`;
    out.push([m[1].toLowerCase(), m[2]]);
  }
  return out;
}

function tokens(headers: Array<[string, string]>, name: string): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) {
    if (n !== name) continue;
    for (const t of v.split(',')) {
      const s = t.trim().toLowerCase();
      if (s) out.push(s);
    }
  }
  return out;
}

/** Content-Length: every value (and list element) the same decimal; undefined when absent; string = why invalid. */
function contentLength(headers: Array<[string, string]>): number | undefined | string {
  let found: string | undefined;
  for (const [n, v] of headers) {
    if (n !== 'content-length') continue;
    for (const part of v.split(',')) {
      const p = part.trim();
      if (!/^\d{1,15}$/.test(p)) return `bad Content-Length ${JSON.stringify(v.slice(0, 20))}`;
      if (found !== undefined && Number(found) !== Number(p)) return 'differing Content-Length values';
      found = p;
    }
  }
  return found === undefined ? undefined : Number(found);
}

function keepAlive(minor: 0 | 1, connection: string[]): boolean {
  if (connection.includes('close')) return false;
  return minor === 1 || connection.includes('keep-alive');
}

/** What requests and responses share: the start line's match, fields, and the framing headers. */
interface Common {
  line: RegExpExecArray;
  length: number;
  headers: Array<[string, string]>;
  connection: string[];
  te: string[];
  cl: number | undefined;
}

function parseCommon(buf: Buffer, max: number, startLine: RegExp, what: string): Common | { kind: 'more' } | { kind: 'error'; status: 400 | 431 | 501; why: string } {
  const split = splitHead(buf, max);
  if ('kind' in split) return split;
  const line = startLine.exec(split.lines[0]);
  if (!line) return fail(400, `malformed ${what}`);
  const headers = parseFields(split.lines);
  if (typeof headers === 'string') return fail(400, headers);
  const cl = contentLength(headers);
  if (typeof cl === 'string') return fail(400, cl);
  return { line, length: split.length, headers, connection: tokens(headers, 'connection'), te: tokens(headers, 'transfer-encoding'), cl };
}

export function parseRequestHead(buf: Buffer, max = MAX_HEAD): Parsed<RequestHead> {
  const c = parseCommon(buf, max, REQUEST_LINE, 'request line');
  if ('kind' in c) return c;
  const { line, headers, connection, te, cl } = c;
  const minor = line[3] === '1' ? 1 : 0;
  let body: BodyFraming;
  if (te.length > 0) {
    if (minor === 0) return fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (cl !== undefined) return fail(400, 'both Transfer-Encoding and Content-Length');
    if (te[te.length - 1] !== 'chunked') return fail(400, 'Transfer-Encoding does not end in chunked');
    body = { kind: 'chunked' };
  } else if (cl !== undefined && cl > 0) {
    body = { kind: 'length', length: cl };
  } else {
    body = { kind: 'none' };
  }
  const method = line[1];
  if (method === 'CONNECT') return fail(501, 'CONNECT is not routed');
  const head: RequestHead = { method, target: line[2], minor, headers, headLength: c.length, keepAlive: keepAlive(minor, connection), connection, body };
  if (connection.includes('upgrade')) {
    const up = headers.find(([n]) => n === 'upgrade');
    if (up) head.upgrade = up[1];
  }
  return { kind: 'ok', head };
}

export function parseResponseHead(buf: Buffer, max = MAX_HEAD): Parsed<ResponseHead> {
  const c = parseCommon(buf, max, STATUS_LINE, 'status line');
  if ('kind' in c) return c;
  const { line, headers, connection, te, cl } = c;
  const minor = line[1] === '1' ? 1 : 0;
  const chunked = te.length > 0 && te[te.length - 1] === 'chunked';
  const head: ResponseHead = {
    status: Number(line[2]),
    minor,
    headers,
    headLength: c.length,
    keepAlive: keepAlive(minor, connection) && (te.length === 0 || chunked),
    connection,
    chunked,
  };
  if (te.length === 0 && cl !== undefined) head.contentLength = cl;
  return { kind: 'ok', head };
}

/** How a response's body is delimited (RFC 9112 §6.3), given the request method. */
export function responseFraming(method: string, res: ResponseHead): BodyFraming {
  if (method === 'HEAD' || res.status < 200 || res.status === 204 || res.status === 304) return { kind: 'none' };
  if (res.chunked) return { kind: 'chunked' };
  if (res.contentLength !== undefined) return res.contentLength > 0 ? { kind: 'length', length: res.contentLength } : { kind: 'none' };
  return { kind: 'close' };
}

const ST = { size: 0, ext: 1, sizeLf: 2, data: 3, dataCr: 4, dataLf: 5, trailerStart: 6, trailerLine: 7, trailerLf: 8, endLf: 9, done: 10 } as const;
type State = (typeof ST)[keyof typeof ST];

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Finds where a chunked body ends (RFC 9112 §7.1) without decoding it: feed
 * it bytes, it says how many belong to the body and whether the body is
 * complete. Extensions and trailers are passed over.
 */
export class ChunkedScanner {
  #state: State = ST.size;
  #size = 0;
  #digits = 0;
  #line = 0;
  #trailers = 0;

  get done(): boolean {
    return this.#state === ST.done;
  }

  /** Bytes of buf (from off) that belong to the body; an error string when the framing is broken. */
  scan(buf: Buffer, off = 0): number | string {
    let i = off;
    const n = buf.length;
    while (i < n && this.#state !== ST.done) {
      const c = buf[i];
      switch (this.#state) {
        case ST.size: {
          const h = hexVal(c);
          if (h >= 0) {
            if (++this.#digits > 13) return 'chunk size too large';
            this.#size = this.#size * 16 + h;
          } else if (this.#digits === 0) {
            return 'chunk size missing';
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.#state = ST.ext;
          } else if (c === 0x0d) {
            this.#state = ST.sizeLf;
          } else {
            return 'bad character in chunk size';
          }
          if (++this.#line > MAX_CHUNK_LINE) return 'chunk size line too long';
          i++;
          break;
        }
        case ST.ext:
          if (c === 0x0d) this.#state = ST.sizeLf;
          else if (c === 0x0a || (c < 0x20 && c !== 0x09) || c === 0x7f) return 'bad character in chunk extension';
          if (++this.#line > MAX_CHUNK_LINE) return 'chunk size line too long';
          i++;
          break;
        case ST.sizeLf:
          if (c !== 0x0a) return 'chunk size line not ended by CRLF';
          i++;
          this.#line = 0;
          this.#digits = 0;
          this.#state = this.#size === 0 ? ST.trailerStart : ST.data;
          break;
        case ST.data: {
          const take = Math.min(this.#size, n - i);
          i += take;
          this.#size -= take;
          if (this.#size === 0) this.#state = ST.dataCr;
          break;
        }
        case ST.dataCr:
          if (c !== 0x0d) return 'chunk data not followed by CRLF';
          this.#state = ST.dataLf;
          i++;
          break;
        case ST.dataLf:
          if (c !== 0x0a) return 'chunk data not followed by CRLF';
          this.#state = ST.size;
          i++;
          break;
        case ST.trailerStart:
          if (c === 0x0d) this.#state = ST.endLf;
          else if (c === 0x0a) return 'bare LF in trailers';
          else this.#state = ST.trailerLine;
          i++;
          if (++this.#trailers > MAX_TRAILERS) return 'trailers too large';
          break;
        case ST.trailerLine:
          if (c === 0x0d) this.#state = ST.trailerLf;
          else if (c === 0x0a) return 'bare LF in trailers';
          i++;
          if (++this.#trailers > MAX_TRAILERS) return 'trailers too large';
          break;
        case ST.trailerLf:
          if (c !== 0x0a) return 'trailer line not ended by CRLF';
          this.#state = ST.trailerStart;
          i++;
          break;
        case ST.endLf:
          if (c !== 0x0a) return 'chunked body not ended by CRLF';
          this.#state = ST.done;
          i++;
          break;
      }
    }
    return i - off;
  }
}

/** A header lookup over a parsed head, for route matching. */
export function headerLookup(headers: Array<[string, string]>): (name: string) => string[] | undefined {
  return (name) => {
    let out: string[] | undefined;
    for (const [n, v] of headers) if (n === name) (out ??= []).push(v);
    return out;
  };
}

/**
 * Finds the CRLFCRLF that ends a head across reads, looking at each byte
 * once: a head sent a byte at a time costs O(n), not a rescan per byte.
 */
export class HeadEnd {
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
