// SPDY/3.1 as kubectl speaks it (through moby/spdystream): frame codec, the
// zlib header-block codec with the SPDY/3 dictionary, and a server-side
// session that multiplexes streams over one byte stream (a TCP socket after
// the POST upgrade, or the WebSocket tunnel kubectl >= 1.30 tries first).
// Spec: https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { debuglog } from 'node:util';

const debug = debuglog('kt-spdy');

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SETTINGS_MAX_CONCURRENT_STREAMS = 4;
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

/** SPDY/3.1 §2.6.8: both the stream and the session window start at 64 KiB. */
export const DEFAULT_WINDOW = 65536;
const MAX_DATA_CHUNK = 65536;
const MAX_LENGTH = 0xffffff;

/** Header names → values (a header may carry several values, NUL-separated on the wire). */
export type SpdyHeaders = Record<string, string[]>;

export type Frame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | { type: 'syn_stream'; streamId: number; associatedId: number; priority: number; flags: number; headerBlock: Buffer }
  | { type: 'syn_reply'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; flags: number; entries: { flags: number; id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'window_update'; streamId: number; delta: number }
  | { type: 'unknown'; frameType: number };

export class SpdyProtocolError extends Error {
  override name = 'SpdyProtocolError';
}

// The SPDY/3 header-compression dictionary (draft 3, §2.6.10.1), byte for byte
// what Go's spdy framer (moby/spdystream) uses: 1423 bytes, length-prefixed
// words followed by a run of common values, no trailing NUL.
const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding',
  'accept-language', 'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection',
  'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-md5', 'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host',
  'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
  'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via',
  'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url',
  'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY3_DICTIONARY: Buffer = (() => {
  const parts: Buffer[] = [];
  for (const word of DICTIONARY_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(word.length);
    parts.push(len, Buffer.from(word, 'latin1'));
  }
  parts.push(Buffer.from(DICTIONARY_TAIL, 'latin1'));
  return Buffer.concat(parts);
})();

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

// ---------------------------------------------------------------- header blocks

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const [name, values] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    const nl = Buffer.alloc(4);
    nl.writeUInt32BE(n.length);
    const vl = Buffer.alloc(4);
    vl.writeUInt32BE(v.length);
    parts.push(nl, n, vl, v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(buf: Buffer): SpdyHeaders {
  const fail = (why: string): never => {
    throw new SpdyProtocolError(`bad header block: ${why}`);
  };
  if (buf.length < 4) fail('truncated count');
  const count = buf.readUInt32BE(0);
  // Each pair takes at least 8 bytes, so a count larger than that is garbage.
  if (count > (buf.length - 4) / 8) fail(`count ${count} exceeds block`);
  const headers: SpdyHeaders = Object.create(null) as SpdyHeaders;
  let off = 4;
  const take = (): string => {
    if (off + 4 > buf.length) fail('truncated length');
    const len = buf.readUInt32BE(off);
    off += 4;
    if (off + len > buf.length) fail('truncated string');
    const s = buf.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = take().toLowerCase();
    if (name.length === 0) fail('empty header name');
    const value = take();
    if (headers[name]) fail(`duplicate header ${name}`);
    headers[name] = value.split('\0');
  }
  if (off !== buf.length) fail('trailing bytes');
  return headers;
}

/**
 * Compresses header blocks for one direction of a session. It emits a zlib
 * stream (header with the dictionary's id) of stored deflate blocks: level 0,
 * what zlib itself writes at Z_NO_COMPRESSION. Any inflater holding the SPDY
 * dictionary reads it, every block ends byte-aligned (so each frame is
 * complete on its own, as Z_SYNC_FLUSH guarantees), and it is synchronous,
 * which keeps our frames in the order the session writes them.
 */
export class HeaderCompressor {
  #started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      // CMF 0x78 (deflate, 32K window), FLG 0x20 (FDICT); 0x7820 % 31 == 0.
      const header = Buffer.alloc(6);
      header[0] = 0x78;
      header[1] = 0x20;
      header.writeUInt32BE(adler32(SPDY3_DICTIONARY), 2);
      parts.push(header);
    }
    for (let off = 0; off < block.length; off += 0xffff) parts.push(storedBlock(block.subarray(off, off + 0xffff)));
    // The empty stored block is the Z_SYNC_FLUSH marker. It is not optional:
    // Go's inflater hands out buffered output only when it reaches one, so
    // without it moby/spdystream's header read runs past the frame.
    parts.push(storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

/** A non-final stored deflate block; it starts and ends byte-aligned. */
function storedBlock(data: Buffer): Buffer {
  const hdr = Buffer.alloc(5);
  hdr[0] = 0; // BFINAL=0, BTYPE=00 (stored); the rest of the byte is padding
  hdr.writeUInt16LE(data.length, 1);
  hdr.writeUInt16LE(~data.length & 0xffff, 3);
  return Buffer.concat([hdr, data]);
}

/**
 * Inflates the peer's header blocks: one zlib context per direction for the
 * whole session (SPDY/3 §2.6.10), fed one frame's block at a time and flushed
 * with Z_SYNC_FLUSH. Node's zlib is asynchronous, so the session serialises
 * frames behind each decode.
 */
export class HeaderDecompressor {
  #inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  #chunks: Buffer[] = [];
  #size = 0;
  #error: Error | null = null;
  // Decodes in flight, oldest first; a zlib error fails them all (the flush callback never comes then).
  #pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  readonly #max: number;

  constructor(maxBytes = 256 * 1024) {
    this.#max = maxBytes;
    this.#inflate.on('data', (chunk: Buffer) => {
      this.#size += chunk.length;
      if (this.#size <= this.#max) this.#chunks.push(chunk);
    });
    this.#inflate.on('error', (err) => {
      this.#error = new SpdyProtocolError(`header decompression: ${err.message}`);
      for (const p of this.#pending.splice(0)) p.reject(this.#error);
    });
  }

  decompress(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#error) return reject(this.#error);
      const entry = { resolve, reject };
      this.#pending.push(entry);
      this.#inflate.write(block);
      this.#inflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const i = this.#pending.indexOf(entry);
        if (i < 0) return; // already failed
        this.#pending.splice(i, 1);
        const out = Buffer.concat(this.#chunks);
        const size = this.#size;
        this.#chunks = [];
        this.#size = 0;
        if (this.#error) reject(this.#error);
        else if (size > this.#max) reject(new SpdyProtocolError(`header block larger than ${this.#max} bytes`));
        else resolve(out);
      });
    });
  }

  close(): void {
    this.#inflate.close();
  }
}

// ---------------------------------------------------------------- frames

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_LENGTH) throw new RangeError('control frame too large');
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24 | payload.length) >>> 0, 4);
  return Buffer.concat([head, payload]);
}

export function serializeData(streamId: number, data: Buffer, flags = 0): Buffer {
  if (data.length > MAX_LENGTH) throw new RangeError('data frame too large');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(((flags & 0xff) << 24 | data.length) >>> 0, 4);
  return data.length === 0 ? head : Buffer.concat([head, data]);
}

export function serializeSynStream(streamId: number, compressedHeaders: Buffer, flags = 0, associatedId = 0, priority = 0): Buffer {
  const p = Buffer.alloc(10);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  p.writeUInt32BE(associatedId & 0x7fffffff, 4);
  p[8] = (priority & 7) << 5;
  p[9] = 0;
  return controlFrame(FrameType.SYN_STREAM, flags, Buffer.concat([p, compressedHeaders]));
}

export function serializeSynReply(streamId: number, compressedHeaders: Buffer, flags = 0): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  return controlFrame(FrameType.SYN_REPLY, flags, Buffer.concat([p, compressedHeaders]));
}

export function serializeHeaders(streamId: number, compressedHeaders: Buffer, flags = 0): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  return controlFrame(FrameType.HEADERS, flags, Buffer.concat([p, compressedHeaders]));
}

export function serializeRstStream(streamId: number, status: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  p.writeUInt32BE(status, 4);
  return controlFrame(FrameType.RST_STREAM, 0, p);
}

export function serializeSettings(entries: { id: number; value: number; flags?: number }[], flags = 0): Buffer {
  const p = Buffer.alloc(4 + entries.length * 8);
  p.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    p.writeUInt32BE((((e.flags ?? 0) & 0xff) << 24 | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
    p.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return controlFrame(FrameType.SETTINGS, flags, p);
}

export function serializePing(id: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(id >>> 0, 0);
  return controlFrame(FrameType.PING, 0, p);
}

export function serializeGoAway(lastGoodStreamId: number, status: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastGoodStreamId & 0x7fffffff, 0);
  p.writeUInt32BE(status, 4);
  return controlFrame(FrameType.GOAWAY, 0, p);
}

export function serializeWindowUpdate(streamId: number, delta: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  p.writeUInt32BE(delta & 0x7fffffff, 4);
  return controlFrame(FrameType.WINDOW_UPDATE, 0, p);
}

/** Incremental frame parser: push bytes, get whole frames. Throws SpdyProtocolError on malformed input. */
export class FrameParser {
  // Received chunks not yet parsed; joined only when a frame spans several,
  // so a large frame costs one copy, not one per chunk.
  #chunks: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.#length >= 8) {
      const length = this.#front(8).readUInt32BE(4) & 0xffffff;
      if (this.#length < 8 + length) break;
      const frame = this.#front(8 + length).subarray(0, 8 + length);
      this.#consume(8 + length);
      frames.push(parseFrame(frame));
    }
    return frames;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#length;
  }

  /** The first chunk, joined with the following ones until it holds at least n bytes. */
  #front(n: number): Buffer {
    if (this.#chunks[0].length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }

  #consume(n: number): void {
    this.#length -= n;
    const first = this.#chunks[0];
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
  }
}

/** Parses one complete frame (8-byte header + payload). */
export function parseFrame(frame: Buffer): Frame {
  const fail = (why: string): never => {
    throw new SpdyProtocolError(why);
  };
  const word0 = frame.readUInt32BE(0);
  const flags = frame[4];
  const payload = frame.subarray(8);
  if ((word0 & 0x80000000) === 0) {
    const streamId = word0 & 0x7fffffff;
    if (streamId === 0) fail('data frame on stream 0');
    // Copy: the payload must not pin the parser's whole receive buffer.
    return { type: 'data', streamId, flags, data: Buffer.from(payload) };
  }
  const version = (word0 >>> 16) & 0x7fff;
  const type = word0 & 0xffff;
  if (version !== SPDY_VERSION) fail(`unsupported SPDY version ${version}`);
  const need = (n: number): void => {
    if (payload.length < n) fail(`control frame type ${type} too short (${payload.length} < ${n})`);
  };
  const streamIdAt = (off: number): number => {
    const id = payload.readUInt32BE(off) & 0x7fffffff;
    if (id === 0) fail(`control frame type ${type} on stream 0`);
    return id;
  };
  switch (type) {
    case FrameType.SYN_STREAM:
      need(10);
      return {
        type: 'syn_stream',
        streamId: streamIdAt(0),
        associatedId: payload.readUInt32BE(4) & 0x7fffffff,
        priority: payload[8] >> 5,
        flags,
        headerBlock: Buffer.from(payload.subarray(10)),
      };
    case FrameType.SYN_REPLY:
      need(4);
      return { type: 'syn_reply', streamId: streamIdAt(0), flags, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.HEADERS:
      need(4);
      return { type: 'headers', streamId: streamIdAt(0), flags, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.RST_STREAM:
      if (payload.length !== 8) fail('RST_STREAM length must be 8');
      return { type: 'rst_stream', streamId: streamIdAt(0), status: payload.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(4);
      const n = payload.readUInt32BE(0);
      if (payload.length !== 4 + n * 8) fail('SETTINGS length does not match its entry count');
      const entries = [];
      for (let i = 0; i < n; i++) {
        const w = payload.readUInt32BE(4 + i * 8);
        entries.push({ flags: w >>> 24, id: w & 0xffffff, value: payload.readUInt32BE(8 + i * 8) });
      }
      return { type: 'settings', flags, entries };
    }
    case FrameType.PING:
      if (payload.length !== 4) fail('PING length must be 4');
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case FrameType.GOAWAY:
      if (payload.length !== 8) fail('GOAWAY length must be 8');
      return { type: 'goaway', lastGoodStreamId: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) };
    case FrameType.WINDOW_UPDATE: {
      if (payload.length !== 8) fail('WINDOW_UPDATE length must be 8');
      const delta = payload.readUInt32BE(4) & 0x7fffffff;
      if (delta === 0) fail('WINDOW_UPDATE with delta 0');
      return { type: 'window_update', streamId: payload.readUInt32BE(0) & 0x7fffffff, delta };
    }
    default:
      // §2.2.1: a control frame of an unknown type must be ignored.
      return { type: 'unknown', frameType: type };
  }
}

// ---------------------------------------------------------------- session

export interface SpdySessionOptions {
  /** A stream the peer opened. Call stream.reply() (or write, which replies) to accept it, stream.refuse() to reject it. */
  onStream(stream: SpdyStream): void;
  /** Called once when the session is gone (transport closed, GOAWAY done or protocol error). */
  onClose?(err?: Error): void;
  /**
   * Stop sending when the peer's flow-control windows are used up. SPDY/3.1
   * requires it, but moby/spdystream (kubectl) never sends WINDOW_UPDATE and
   * ignores windows, so a server talking to kubectl must not wait for them.
   */
  enforcePeerWindow?: boolean;
  /** Largest inflated header block accepted. */
  maxHeaderBytes?: number;
}

interface PendingWrite {
  data: Buffer;
  cb: (err?: Error | null) => void;
}

/** One stream of a session, as a Duplex: readable = peer's DATA, writable = our DATA; end() sends FIN. */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: SpdyHeaders;
  readonly session: SpdySession;
  replied = false;
  /** The peer reset the stream (RST_STREAM), or the session died under it. */
  aborted = false;
  remoteClosed = false;
  localClosed = false;
  sendWindow: number;
  recvUnacked = 0;
  blocked: PendingWrite | null = null;

  constructor(session: SpdySession, id: number, headers: SpdyHeaders, sendWindow: number) {
    super({ allowHalfOpen: true });
    this.session = session;
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
  }

  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  /** Accept the stream (SYN_REPLY). */
  reply(headers: SpdyHeaders = {}, fin = false): void {
    if (this.replied || this.aborted) return;
    this.replied = true;
    if (fin) this.localClosed = true;
    this.session.sendSynReply(this, headers, fin);
    if (fin) this.session.maybeForget(this);
  }

  /** Reject or abort the stream (RST_STREAM). */
  refuse(status: number = RstStatus.REFUSED_STREAM): void {
    if (this.aborted) return;
    this.aborted = true;
    this.session.sendRst(this.id, status);
    this.session.forget(this);
    this.destroy();
  }

  override _read(): void {
    this.session.resumeTransport(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.aborted || this.localClosed) return cb(new Error(`SPDY stream ${this.id} is closed`));
    if (!this.replied) this.reply();
    this.session.sendData(this, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.aborted && !this.localClosed) {
      if (!this.replied) this.reply({}, true);
      else {
        this.localClosed = true;
        this.session.sendFin(this);
        this.session.maybeForget(this);
      }
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.aborted && !(this.localClosed && this.remoteClosed)) {
      this.aborted = true;
      this.session.sendRst(this.id, RstStatus.CANCEL);
    }
    this.session.forget(this);
    cb(err);
  }
}

/** The server side of a SPDY/3.1 session. */
export class SpdySession {
  readonly #transport: Duplex;
  readonly #opts: SpdySessionOptions;
  readonly #parser = new FrameParser();
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor: HeaderDecompressor;
  readonly #streams = new Map<number, SpdyStream>();
  readonly #inbox: Frame[] = [];
  #decoding = false;
  #lastPeerStreamId = 0;
  #goneAway = false;
  #closed = false;
  #sessionSendWindow = DEFAULT_WINDOW;
  #sessionRecvUnacked = 0;
  #initialSendWindow = DEFAULT_WINDOW;
  #drainWaiters: (() => void)[] = [];
  #pausedBy = new Set<SpdyStream>();

  constructor(transport: Duplex, opts: SpdySessionOptions, head?: Buffer) {
    this.#transport = transport;
    this.#opts = opts;
    this.#decompressor = new HeaderDecompressor(opts.maxHeaderBytes);
    transport.on('data', (chunk: Buffer) => this.#onBytes(chunk));
    transport.on('drain', () => {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    });
    transport.on('end', () => this.destroy());
    transport.on('close', () => this.destroy());
    transport.on('error', (err) => this.destroy(err));
    if (head && head.length > 0) this.#onBytes(head);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Tell the peer we are done (GOAWAY) and close the transport once our writes are out. */
  close(status: number = GoAwayStatus.OK): void {
    if (this.#closed) return;
    this.#write(serializeGoAway(this.#lastPeerStreamId, status));
    this.destroy();
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (err) debug('session closed: %s', err.message);
    for (const s of [...this.#streams.values()]) {
      s.aborted = true;
      s.destroy();
    }
    this.#streams.clear();
    this.#decompressor.close();
    for (const w of this.#drainWaiters) w();
    this.#drainWaiters = [];
    this.#shutdownTransport();
    this.#opts.onClose?.(err);
  }

  // Our last frames (a final Status, the GOAWAY) may still be in the
  // transport's buffer: end it and release it once they are out, or after a
  // few seconds if the peer stops reading.
  #shutdownTransport(): void {
    const t = this.#transport;
    if (t.destroyed) return;
    const timer = setTimeout(() => t.destroy(), 5_000);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      t.destroy();
    };
    if (t.writableFinished) return done();
    t.once('finish', done);
    t.once('close', done);
    if (!t.writableEnded) t.end();
  }

  #write(buf: Buffer): boolean {
    if (this.#closed || this.#transport.writableEnded || this.#transport.destroyed) return true;
    return this.#transport.write(buf);
  }

  #protocolError(err: Error): void {
    if (this.#closed) return;
    debug('protocol error: %s', err.message);
    this.#write(serializeGoAway(this.#lastPeerStreamId, GoAwayStatus.PROTOCOL_ERROR));
    this.destroy(err);
  }

  #onBytes(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Frame[];
    try {
      frames = this.#parser.push(chunk);
    } catch (err) {
      this.#protocolError(err as Error);
      return;
    }
    this.#inbox.push(...frames);
    this.#pump();
  }

  // Frames are handled strictly in order; a frame with a header block waits
  // for the (asynchronous) inflate before anything after it is looked at.
  #pump(): void {
    while (!this.#decoding && !this.#closed && this.#inbox.length > 0) {
      const frame = this.#inbox.shift()!;
      if (frame.type === 'syn_stream' || frame.type === 'syn_reply' || frame.type === 'headers') {
        this.#decoding = true;
        this.#decompressor.decompress(frame.headerBlock).then(
          (block) => {
            this.#decoding = false;
            try {
              this.#onHeaderFrame(frame, decodeHeaderBlock(block));
            } catch (err) {
              this.#protocolError(err as Error);
              return;
            }
            this.#pump();
          },
          (err: Error) => {
            this.#decoding = false;
            this.#protocolError(err);
          },
        );
        return;
      }
      try {
        this.#onFrame(frame);
      } catch (err) {
        this.#protocolError(err as Error);
        return;
      }
    }
  }

  #onHeaderFrame(frame: Frame, headers: SpdyHeaders): void {
    if (frame.type === 'syn_stream') {
      // Client-initiated streams are odd and strictly increasing (§2.3.2).
      if (frame.streamId % 2 === 0 || frame.streamId <= this.#lastPeerStreamId) {
        this.sendRst(frame.streamId, RstStatus.PROTOCOL_ERROR);
        return;
      }
      this.#lastPeerStreamId = frame.streamId;
      if (this.#goneAway) {
        this.sendRst(frame.streamId, RstStatus.REFUSED_STREAM);
        return;
      }
      const stream = new SpdyStream(this, frame.streamId, headers, this.#initialSendWindow);
      stream.on('error', (err) => debug('stream %d: %s', stream.id, err.message));
      if (frame.flags & FLAG_UNIDIRECTIONAL) {
        stream.localClosed = true;
        stream.replied = true;
      }
      this.#streams.set(stream.id, stream);
      if (frame.flags & FLAG_FIN) {
        stream.remoteClosed = true;
        stream.push(null);
      }
      this.#opts.onStream(stream);
      return;
    }
    // SYN_REPLY (we open no streams) and HEADERS carry nothing we use; their
    // blocks were still inflated above to keep the zlib context in step.
    if (frame.type === 'headers' && frame.flags & FLAG_FIN) {
      const stream = this.#streams.get(frame.streamId);
      if (stream) this.#remoteFin(stream);
    }
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'data':
        return this.#onData(frame.streamId, frame.flags, frame.data);
      case 'rst_stream': {
        const stream = this.#streams.get(frame.streamId);
        if (stream) {
          stream.aborted = true;
          this.forget(stream);
          stream.destroy();
        }
        return;
      }
      case 'settings':
        for (const e of frame.entries) {
          if (e.id === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = e.value - this.#initialSendWindow;
            this.#initialSendWindow = e.value;
            for (const s of this.#streams.values()) s.sendWindow += delta;
            this.#retryBlocked();
          }
        }
        return;
      case 'ping':
        // Peer (client) pings are odd; echo them. Even ids would answer our own pings, and we send none.
        if (frame.id % 2 === 1) this.#write(serializePing(frame.id));
        return;
      case 'goaway':
        this.#goneAway = true;
        if (this.#streams.size === 0) this.close();
        return;
      case 'window_update':
        if (frame.streamId === 0) this.#sessionSendWindow += frame.delta;
        else {
          const stream = this.#streams.get(frame.streamId);
          if (stream) stream.sendWindow += frame.delta;
        }
        this.#retryBlocked();
        return;
      case 'unknown':
        return;
      default:
        // syn_stream / syn_reply / headers go through #onHeaderFrame.
        return;
    }
  }

  #onData(streamId: number, flags: number, data: Buffer): void {
    const stream = this.#streams.get(streamId);
    if (!stream) {
      // A stream we already forgot (reset or finished); DATA still in flight is harmless.
      if (streamId > this.#lastPeerStreamId) this.sendRst(streamId, RstStatus.INVALID_STREAM);
      return;
    }
    if (stream.remoteClosed) {
      this.sendRst(streamId, RstStatus.STREAM_ALREADY_CLOSED);
      stream.aborted = true;
      this.forget(stream);
      stream.destroy();
      return;
    }
    if (data.length > 0) {
      this.#ackReceived(stream, data.length);
      if (!stream.push(data)) this.#pauseTransport(stream);
    }
    if (flags & FLAG_FIN) this.#remoteFin(stream);
  }

  // Our receive windows: tell the peer to keep sending once half a window is
  // consumed. Backpressure itself comes from pausing the transport, because
  // spdystream ignores these updates anyway.
  #ackReceived(stream: SpdyStream, n: number): void {
    stream.recvUnacked += n;
    this.#sessionRecvUnacked += n;
    if (stream.recvUnacked >= DEFAULT_WINDOW / 2 && !stream.remoteClosed) {
      this.#write(serializeWindowUpdate(stream.id, stream.recvUnacked));
      stream.recvUnacked = 0;
    }
    if (this.#sessionRecvUnacked >= DEFAULT_WINDOW / 2) {
      this.#write(serializeWindowUpdate(0, this.#sessionRecvUnacked));
      this.#sessionRecvUnacked = 0;
    }
  }

  #remoteFin(stream: SpdyStream): void {
    if (stream.remoteClosed) return;
    stream.remoteClosed = true;
    stream.push(null);
    this.maybeForget(stream);
  }

  #pauseTransport(stream: SpdyStream): void {
    this.#pausedBy.add(stream);
    this.#transport.pause();
  }

  resumeTransport(stream: SpdyStream): void {
    if (this.#pausedBy.delete(stream) && this.#pausedBy.size === 0 && !this.#closed) this.#transport.resume();
  }

  maybeForget(stream: SpdyStream): void {
    if (stream.localClosed && stream.remoteClosed) this.forget(stream);
  }

  forget(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this.resumeTransport(stream);
    if (this.#goneAway && this.#streams.size === 0 && !this.#closed) this.close();
  }

  sendSynReply(stream: SpdyStream, headers: SpdyHeaders, fin: boolean): void {
    const block = this.#compressor.compress(encodeHeaderBlock(headers));
    this.#write(serializeSynReply(stream.id, block, fin ? FLAG_FIN : 0));
  }

  sendRst(streamId: number, status: number): void {
    this.#write(serializeRstStream(streamId, status));
  }

  sendFin(stream: SpdyStream): void {
    this.#write(serializeData(stream.id, Buffer.alloc(0), FLAG_FIN));
  }

  sendData(stream: SpdyStream, data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(new Error('SPDY session closed'));
    let off = 0;
    let flushed = true;
    while (off < data.length) {
      let n = Math.min(data.length - off, MAX_DATA_CHUNK);
      if (this.#opts.enforcePeerWindow) n = Math.min(n, stream.sendWindow, this.#sessionSendWindow);
      if (n <= 0) {
        stream.blocked = { data: data.subarray(off), cb };
        return;
      }
      stream.sendWindow -= n;
      this.#sessionSendWindow -= n;
      flushed = this.#write(serializeData(stream.id, data.subarray(off, off + n)));
      off += n;
    }
    if (flushed) cb();
    else this.#drainWaiters.push(() => cb(this.#closed ? new Error('SPDY session closed') : null));
  }

  #retryBlocked(): void {
    for (const s of this.#streams.values()) {
      if (s.blocked) {
        const { data, cb } = s.blocked;
        s.blocked = null;
        this.sendData(s, data, cb);
      }
    }
  }
}
