// SPDY/3.1 frames (draft 3.1, §2.2-2.6): constants, the serializers and an
// incremental parser. Pure: no I/O, no zlib (header blocks stay compressed here).
// Spec: https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/

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
