// The HTTP/1.1 → h2c upgrade (RFC 7540 §3.2), done by the router itself so
// that every later stream is routed on its own headers. After the 101 the
// upgraded request is stream 1, half-closed by the client — but node:http2
// never saw it. So the client's preface and first SETTINGS frame pass
// through, then a HEADERS frame for stream 1 carrying the original request
// is spliced in (encoded without touching the HPACK dynamic table, so the
// client's encoder and the server's decoder stay in step), then the rest of
// the connection is relayed unchanged.
import { Duplex } from 'node:stream';
import type { RequestHead } from './http1-parse.ts';
import { H2_PREFACE } from './sniff.ts';

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2), plus those only the upgrade used. */
const HOP_BY_HOP = new Set(['connection', 'upgrade', 'http2-settings', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'host']);

/**
 * Most bytes held before the client's first SETTINGS frame is complete: the
 * preface, a SETTINGS frame of at most the initial SETTINGS_MAX_FRAME_SIZE
 * (16,384, RFC 9113 §4.2, §6.5.2) and a little of what follows. A larger
 * SETTINGS frame is a FRAME_SIZE_ERROR; before, one connection could make
 * the router hold 16 MiB.
 */
export const MAX_PRE_SETTINGS = 64 * 1024;
const MAX_SETTINGS_FRAME = 16_384;

export const SWITCHING_TO_H2C = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n';

/** The upgraded request as HTTP/2 fields: pseudo-headers first, names lowercase. */
export function upgradeFields(req: RequestHead): Array<[string, string]> {
  const named = new Set(req.connection);
  const host = req.headers.find(([n]) => n === 'host');
  const fields: Array<[string, string]> = [
    [':method', req.method],
    [':scheme', 'http'],
    [':path', req.target],
  ];
  if (host) fields.push([':authority', host[1]]);
  for (const [name, value] of req.headers) {
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers') continue;
    fields.push([name, value]);
  }
  return fields;
}

/** RFC 7541 §5.1 integer with an n-bit prefix. */
function hpackInt(value: number, bits: number): number[] {
  const max = (1 << bits) - 1;
  if (value < max) return [value];
  const out = [max];
  for (value -= max; value >= 128; value >>>= 7) out.push((value & 0x7f) | 0x80);
  out.push(value);
  return out;
}

/** RFC 7541 §6.2.2 literal without indexing, new name, raw strings: leaves the dynamic table alone. */
export function literalHeaderBlock(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0, ...hpackInt(n.length, 7)]), n, Buffer.from(hpackInt(v.length, 7)), v);
  }
  return Buffer.concat(parts);
}

/** HEADERS (+ CONTINUATION) frames for stream 1 with END_STREAM; 16384 is the initial SETTINGS_MAX_FRAME_SIZE. */
export function stream1Headers(fields: Array<[string, string]>): Buffer {
  const block = literalHeaderBlock(fields);
  const frames: Buffer[] = [];
  const max = 16384;
  let off = 0;
  do {
    const part = block.subarray(off, off + max);
    const first = off === 0;
    const last = off + max >= block.length;
    const head = Buffer.alloc(9);
    head.writeUIntBE(part.length, 0, 3);
    head[3] = first ? 0x1 : 0x9; // HEADERS, CONTINUATION
    head[4] = (first ? 0x1 : 0) | (last ? 0x4 : 0); // END_STREAM, END_HEADERS
    head.writeUInt32BE(1, 5);
    frames.push(head, part);
    off += max;
  } while (off < block.length);
  return Buffer.concat(frames);
}

/** The upgraded socket as node:http2 must see it (see the file comment). */
export class UpgradedH2c extends Duplex {
  readonly #socket: Duplex;
  readonly #inject: Buffer;
  #seen: Buffer;
  #injected = false;
  #deadline: NodeJS.Timeout | undefined;

  /** deadlineMs: the preface and SETTINGS must have come within this long after the 101. */
  constructor(socket: Duplex, rest: Buffer, fields: Array<[string, string]>, deadlineMs: number) {
    super();
    this.#socket = socket;
    this.#inject = stream1Headers(fields);
    this.#seen = Buffer.alloc(0);
    this.#deadline = setTimeout(() => {
      if (!this.#injected) this.destroy(new Error(`no HTTP/2 preface and SETTINGS within ${deadlineMs} ms`));
    }, deadlineMs);
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    if (rest.length > 0) this.#onData(rest);
  }

  #onData(d: Buffer): void {
    if (this.#injected) {
      if (!this.push(d)) this.#socket.pause();
      return;
    }
    if (this.#seen.length + d.length > MAX_PRE_SETTINGS) {
      this.destroy(new Error(`more than ${MAX_PRE_SETTINGS} bytes before the first SETTINGS frame`));
      return;
    }
    const p = (this.#seen = Buffer.concat([this.#seen, d]));
    const n = Math.min(p.length, H2_PREFACE.length);
    if (!p.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
      this.destroy(new Error('h2c upgrade: the client did not send the HTTP/2 preface'));
      return;
    }
    // The preface, then a frame header that must be SETTINGS (RFC 9113 §3.4).
    const at = H2_PREFACE.length;
    if (p.length < at + 9) return;
    if (p[at + 3] !== 0x4) {
      this.destroy(new Error('h2c upgrade: the first frame is not SETTINGS'));
      return;
    }
    const len = p.readUIntBE(at, 3);
    if (len > MAX_SETTINGS_FRAME) {
      this.destroy(new Error(`a first SETTINGS frame of ${len} bytes (FRAME_SIZE_ERROR)`));
      return;
    }
    const end = at + 9 + len;
    if (p.length < end) return;
    this.#injected = true;
    clearTimeout(this.#deadline);
    this.#seen = Buffer.alloc(0);
    this.push(p.subarray(0, end));
    this.push(this.#inject);
    if (p.length > end && !this.push(p.subarray(end))) this.#socket.pause();
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.#deadline);
    this.#seen = Buffer.alloc(0);
    this.#socket.destroy();
    cb(err);
  }
}
