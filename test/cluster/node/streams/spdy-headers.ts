// SPDY/3 header blocks: the name/value block format and its compression,
// one zlib context per direction for the whole session, primed with the
// SPDY/3 dictionary (draft 3, §2.6.10).
import zlib from 'node:zlib';
import { SpdyProtocolError, type SpdyHeaders } from './spdy-frames.ts';

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
