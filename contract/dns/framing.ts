// DNS over TCP framing (RFC 1035 §4.2.2): every message is preceded by its
// length as two bytes, network order. Several messages may share one read
// and one message may span reads, so bytes are collected until a frame is whole.

export function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly onMessage: (m: Buffer) => void;

  constructor(onMessage: (m: Buffer) => void) {
    this.onMessage = onMessage;
  }

  /** At most one partial frame (< 64 KiB + 2) stays buffered. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= 2) {
      const len = this.buf.readUInt16BE(off);
      if (this.buf.length - off - 2 < len) break;
      const msg = this.buf.subarray(off + 2, off + 2 + len);
      off += 2 + len;
      this.onMessage(msg);
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
  }
}
