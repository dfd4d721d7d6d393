// Byte-level helpers on DNS messages (RFC 1035 §4.1): read a query safely,
// build error replies, change IDs, fit a response into a UDP datagram.
// Everything here survives arbitrary bytes; nothing throws on bad input.
import * as packet from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { RCODE } from './search.ts';

export const HEADER_LEN = 12;
/** RFC 1035 §4.2.1: the UDP limit without EDNS. */
export const CLASSIC_UDP_SIZE = 512;

const QR = 0x8000;
const TC = 0x0200;

export interface Query {
  id: number;
  /** The header's second 16 bits as sent. */
  flags: number;
  opcode: number;
  /** The question name as the client wrote it (case kept, no trailing dot). */
  name: string;
  type: string;
  /** Byte offset where the question section ends. */
  questionEnd: number;
  /** The largest UDP response the client takes (its EDNS size, else 512). */
  udpSize: number;
  packet: DecodedPacket;
}

/** What to do with bytes a client sent: serve the query, answer with an error, or drop them. */
export type Parsed = { ok: true; query: Query } | { ok: false; reply: Buffer | null };

/**
 * Read a client's query. No reply when there is no full header (no ID to
 * answer to) or when the message is itself a response (answering responses
 * lets two servers loop). FORMERR when the header is there but the rest is
 * not a well-formed single-question message; NOTIMP for other opcodes.
 */
export function parseQuery(buf: Buffer): Parsed {
  if (buf.length < HEADER_LEN) return { ok: false, reply: null };
  const flags = buf.readUInt16BE(2);
  if (flags & QR) return { ok: false, reply: null };
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { ok: false, reply: errorReply(buf, RCODE.NOTIMP) };
  if (buf.readUInt16BE(4) !== 1) return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
  let decoded: DecodedPacket;
  try {
    decoded = packet.decode(buf);
  } catch {
    return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
  }
  const q = decoded.questions?.[0];
  const questionEnd = questionEndOffset(buf);
  if (!q || questionEnd < 0) return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
  const opt = decoded.additionals?.find((a) => a.type === 'OPT');
  const udpSize = opt && 'udpPayloadSize' in opt ? Math.max(CLASSIC_UDP_SIZE, opt.udpPayloadSize) : CLASSIC_UDP_SIZE;
  return {
    ok: true,
    query: { id: buf.readUInt16BE(0), flags, opcode, name: q.name === '.' ? '' : q.name, type: q.type, questionEnd, udpSize, packet: decoded },
  };
}

/**
 * Offset just past the first question, or -1. Questions in queries are not
 * compressed in practice, but a pointer still ends the name (RFC 1035 §4.1.4).
 */
export function questionEndOffset(buf: Buffer): number {
  let off = HEADER_LEN;
  for (let labels = 0; labels < 128; labels++) {
    if (off >= buf.length) return -1;
    const len = buf[off];
    if (len === 0) {
      off += 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      off += 2;
      break;
    }
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  off += 4;
  return off <= buf.length ? off : -1;
}

/**
 * A reply with only a header (and the question, when it can be read): QR set,
 * ID, opcode and RD copied from the query, the given rcode. Used for FORMERR,
 * NOTIMP, SERVFAIL and REFUSED.
 */
export function errorReply(query: Buffer, rcode: number): Buffer {
  const flags = query.readUInt16BE(2);
  const qEnd = (flags >> 11) & 0xf ? -1 : questionEndOffset(query);
  const withQuestion = rcode !== RCODE.FORMERR && query.readUInt16BE(4) === 1 && qEnd > 0;
  const out = Buffer.alloc(withQuestion ? qEnd : HEADER_LEN);
  out.writeUInt16BE(query.readUInt16BE(0), 0);
  // Keep opcode (bits 11-14) and RD (bit 8); set QR and the rcode.
  out.writeUInt16BE(QR | (flags & 0x7900) | (rcode & 0xf), 2);
  if (withQuestion) {
    out.writeUInt16BE(1, 4);
    query.copy(out, HEADER_LEN, HEADER_LEN, qEnd);
  }
  return out;
}

/** A copy of a message with another ID. */
export function withId(buf: Buffer, id: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt16BE(id, 0);
  return out;
}

export function rcodeOf(buf: Buffer): number {
  return buf.readUInt16BE(2) & 0xf;
}

export function answerCount(buf: Buffer): number {
  return buf.readUInt16BE(6);
}

export function isTruncated(buf: Buffer): boolean {
  return (buf.readUInt16BE(2) & TC) !== 0;
}

/**
 * Fit a response into the client's UDP size: when it is too big, send the
 * header and question with TC set and no records, so the client asks again
 * over TCP (RFC 1035 §4.2.1, RFC 2181 §9). The OPT record is kept when it
 * fits, so the client still sees that EDNS is understood (RFC 6891 §7).
 */
export function fitUdp(resp: DecodedPacket, encoded: Buffer, limit: number): Buffer {
  if (encoded.length <= limit) return encoded;
  const opt = (resp.additionals ?? []).filter((a) => a.type === 'OPT');
  return packet.encode({
    ...resp,
    flags: (resp.flags ?? 0) | TC,
    answers: [],
    authorities: [],
    additionals: opt,
  });
}
