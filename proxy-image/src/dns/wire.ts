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
  const refused = headerRefusal(buf);
  if (refused !== undefined) return { ok: false, reply: refused };
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
    query: { id: buf.readUInt16BE(0), flags: buf.readUInt16BE(2), opcode: 0, name: q.name === '.' ? '' : q.name, type: q.type, questionEnd, udpSize, packet: decoded },
  };
}

/** Why a message is not a query to serve: null (no reply), a NOTIMP or FORMERR reply, or undefined when it is one. */
function headerRefusal(buf: Buffer): Buffer | null | undefined {
  if (buf.length < HEADER_LEN) return null;
  const flags = buf.readUInt16BE(2);
  if (flags & QR) return null;
  if ((flags >> 11) & 0xf) return errorReply(buf, RCODE.NOTIMP);
  if (buf.readUInt16BE(4) !== 1) return errorReply(buf, RCODE.FORMERR);
  return undefined;
}

/** A query read at the byte level, without decoding its records (the forwarder's hot path). */
export interface QueryHead {
  id: number;
  /** The question name as dns-packet would give it (labels as UTF-8, joined by dots; '' for the root). */
  name: string;
  /** Byte offset where the question name ends (its type follows). */
  nameEnd: number;
  questionEnd: number;
  udpSize: number;
  /** Some name in the message is compressed: its bytes cannot be spliced without moving pointers. */
  compressed: boolean;
}

/**
 * parseQuery's answers without decoding the records: the names and record
 * lengths are checked to lie inside the message (the rules dns-packet's
 * decoder applies to names), the record data is not read, except the OPT
 * record's UDP size. A query whose record data only the upstream can judge
 * goes there, and the upstream answers it.
 */
export function readQuery(buf: Buffer): { ok: true; query: QueryHead } | { ok: false; reply: Buffer | null } {
  const refused = headerRefusal(buf);
  if (refused !== undefined) return { ok: false, reply: refused };
  const walk: NameWalk = { end: 0, pointer: false };
  if (!walkName(buf, HEADER_LEN, walk) || walk.end + 4 > buf.length) return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
  const nameEnd = walk.end;
  const questionEnd = nameEnd + 4;
  let compressed = walk.pointer;
  let udpSize = CLASSIC_UDP_SIZE;
  let off = questionEnd;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    if (!walkName(buf, off, walk) || walk.end + 10 > buf.length) return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
    compressed ||= walk.pointer;
    off = walk.end;
    const rdEnd = off + 10 + buf.readUInt16BE(off + 8);
    if (rdEnd > buf.length) return { ok: false, reply: errorReply(buf, RCODE.FORMERR) };
    if (buf.readUInt16BE(off) === TYPE_OPT) udpSize = Math.max(CLASSIC_UDP_SIZE, buf.readUInt16BE(off + 2));
    off = rdEnd;
  }
  return { ok: true, query: { id: buf.readUInt16BE(0), name: nameText(buf, HEADER_LEN), nameEnd, questionEnd, udpSize, compressed } };
}

const TYPE_OPT = 41;
/** dns-packet's limit: the labels with their length octets take at most 254 octets (255 with the root's). */
const MAX_NAME_OCTETS = 254;

export interface NameWalk {
  /** Offset just past the name where it is written. */
  end: number;
  /** The name is (partly) a pointer. */
  pointer: boolean;
}

/**
 * Check the name at `off` (RFC 1035 §4.1.4): labels inside the message,
 * pointers only to earlier bytes (so the walk ends), at most 254 octets.
 * Fills `out`; false when the name is malformed.
 */
export function walkName(buf: Buffer, off: number, out: NameWalk): boolean {
  let total = 0;
  let floor = off;
  let end = -1;
  for (;;) {
    if (off >= buf.length) return false;
    const len = buf[off];
    if (len === 0) break;
    const kind = len & 0xc0;
    if (kind === 0) {
      off += 1 + len;
      total += len + 1;
      if (off > buf.length || total > MAX_NAME_OCTETS) return false;
    } else if (kind === 0xc0) {
      if (off + 1 >= buf.length) return false;
      const to = buf.readUInt16BE(off) & 0x3fff;
      if (to >= floor) return false;
      if (end < 0) end = off + 2;
      floor = to;
      off = to;
    } else {
      return false;
    }
  }
  out.pointer = end >= 0;
  out.end = end >= 0 ? end : off + 1;
  return true;
}

/** A checked name's text as dns-packet gives it: labels as UTF-8, joined by dots, '' for the root. */
export function nameText(buf: Buffer, off: number): string {
  let text = '';
  for (;;) {
    const len = buf[off];
    if (len === 0) return text;
    if ((len & 0xc0) === 0xc0) {
      off = buf.readUInt16BE(off) & 0x3fff;
      continue;
    }
    const label = buf.toString('utf8', off + 1, off + 1 + len);
    text = text === '' ? label : `${text}.${label}`;
    off += 1 + len;
  }
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
