// The search list's two rewrites at the byte level, so a short name costs
// about what a forwarded name does: the client's query asked again under an
// expanded name, and the upstream's answer made to read as an answer for the
// name the client asked (the rule is search.ts's rewriteAnswer; this is its
// wire form). Each returns undefined for what it does not handle (a
// compressed query, record data with names in a layout not walked here);
// the caller then takes the dns-packet path.
import { HEADER_LEN, walkName, type NameWalk } from './wire.ts';

/** The wire form of a name in text (a search domain): labels of 1–63 octets, or undefined. */
export function encodeName(text: string): Buffer | undefined {
  const labels = text.replace(/^\.|\.$/g, '').split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'utf8');
    if (bytes.length === 0 || bytes.length > 63) return undefined;
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/**
 * The client's question name under a search domain, in wire form: its own
 * label bytes (case and all, not a text round trip) and the domain's.
 * `nameEnd` is where the client's (uncompressed) name ends.
 */
export function expandedName(query: Buffer, nameEnd: number, domain: Buffer): Buffer {
  return Buffer.concat([query.subarray(HEADER_LEN, nameEnd - 1), domain]);
}

/** The client's query with another question name; header, type, class and EDNS kept. Only for queries without pointers. */
export function queryFor(query: Buffer, nameEnd: number, name: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LEN + name.length + query.length - nameEnd);
  query.copy(out, 0, 0, HEADER_LEN);
  name.copy(out, HEADER_LEN);
  query.copy(out, HEADER_LEN + name.length, nameEnd);
  return out;
}

const N = -1;
/**
 * Record types whose data holds names that may be compressed (RFC 1035
 * §3.3, RFC 3597 §4), as fixed octets and names (N) in order.
 */
const NAME_LAYOUTS = new Map<number, readonly number[]>([
  [2, [N]], // NS
  [3, [N]], // MD
  [4, [N]], // MF
  [5, [N]], // CNAME
  [6, [N, N, 20]], // SOA
  [7, [N]], // MB
  [8, [N]], // MG
  [9, [N]], // MR
  [12, [N]], // PTR
  [14, [N, N]], // MINFO
  [15, [2, N]], // MX
  [17, [N, N]], // RP
  [18, [2, N]], // AFSDB
  [21, [2, N]], // RT
  [26, [2, N, N]], // PX
  [33, [6, N]], // SRV
  [36, [2, N]], // KX
  [39, [N]], // DNAME
]);
/** Names among other data (SIG, NXT, NAPTR, RRSIG, NSEC): left to dns-packet. */
const OTHER_NAMES = new Set([24, 30, 35, 46, 47]);
const TYPE_OPT = 41;
const TC = 0x02;

/**
 * Where answers are put together, made once: a message up to 64 KiB, and
 * room for the record that takes it past (a name, its fixed fields and
 * 64 KiB of data), after which the answer is refused.
 */
const scratch = Buffer.allocUnsafe(0x10000 + 256 + 10 + 0x10000);

/**
 * Copy the name at `off` into the scratch buffer at `at`, uncompressed.
 * Returns the scratch offset after it (`walk.end`: after the name in
 * `buf`), or -1 when the name is malformed.
 */
function copyName(buf: Buffer, off: number, at: number, walk: NameWalk): number {
  if (!walkName(buf, off, walk)) return -1;
  for (;;) {
    const len = buf[off];
    if ((len & 0xc0) === 0xc0) {
      off = buf.readUInt16BE(off) & 0x3fff;
      continue;
    }
    scratch[at++] = len;
    if (len === 0) return at;
    buf.copy(scratch, at, off + 1, off + 1 + len);
    at += len;
    off += 1 + len;
  }
}

/** Whether the scratch bytes from `at` are `name`, without ASCII case (RFC 4343). */
function isName(at: number, end: number, name: Buffer): boolean {
  if (end - at !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const x = scratch[at + i];
    const y = name[i];
    if (x !== y && ((x | 0x20) !== (y | 0x20) || (x | 0x20) < 0x61 || (x | 0x20) > 0x7a)) return false;
  }
  return true;
}

/**
 * The upstream's answer for `tried` as an answer for `asked` (both names
 * uncompressed wire form), with the client's ID: the question and the
 * owners of answer and additional records named `tried` become `asked`;
 * the authority section and record data keep their names. Names are
 * written uncompressed (moving bytes would break pointers), record data
 * is copied as it came. Too big for `udpLimit` (0: no limit): header and
 * question with TC and the OPT record, so the client asks over TCP
 * (RFC 1035 §4.2.1, RFC 6891 §7).
 */
export function renameAnswer(resp: Buffer, id: number, tried: Buffer, asked: Buffer, udpLimit: number): Buffer | undefined {
  if (resp.length < HEADER_LEN || resp.readUInt16BE(4) !== 1) return undefined;
  const walk: NameWalk = { end: 0, pointer: false };
  if (!walkName(resp, HEADER_LEN, walk) || walk.end + 4 > resp.length) return undefined;
  let off = walk.end + 4;
  resp.copy(scratch, 0, 0, HEADER_LEN);
  scratch.writeUInt16BE(id, 0);
  asked.copy(scratch, HEADER_LEN);
  let at = HEADER_LEN + asked.length;
  resp.copy(scratch, at, walk.end, off);
  at += 4;
  const questionEnd = at;
  /** Where the OPT record starts in the scratch and ends, when there is one. */
  let optAt = -1;
  let optEnd = -1;
  const an = resp.readUInt16BE(6);
  const ns = resp.readUInt16BE(8);
  const total = an + ns + resp.readUInt16BE(10);
  for (let i = 0; i < total; i++) {
    if (at > 0xffff) return undefined;
    const start = at;
    at = copyName(resp, off, at, walk);
    if (at < 0 || walk.end + 10 > resp.length) return undefined;
    const inAuthority = i >= an && i < an + ns;
    if (!inAuthority && isName(start, at, tried)) {
      asked.copy(scratch, start);
      at = start + asked.length;
    }
    off = walk.end;
    const type = resp.readUInt16BE(off);
    const rdStart = off + 10;
    const rdEnd = rdStart + resp.readUInt16BE(off + 8);
    if (rdEnd > resp.length || OTHER_NAMES.has(type)) return undefined;
    resp.copy(scratch, at, off, rdStart);
    const rdLenAt = at + 8;
    at += 10;
    const dataAt = at;
    const layout = NAME_LAYOUTS.get(type);
    if (!layout) {
      resp.copy(scratch, at, rdStart, rdEnd);
      at += rdEnd - rdStart;
    } else {
      let p = rdStart;
      for (const field of layout) {
        if (field === N) {
          at = copyName(resp, p, at, walk);
          if (at < 0) return undefined;
          p = walk.end;
        } else {
          if (p + field > rdEnd) return undefined;
          resp.copy(scratch, at, p, p + field);
          at += field;
          p += field;
        }
        if (p > rdEnd) return undefined;
      }
      if (p !== rdEnd) return undefined;
    }
    if (at - dataAt > 0xffff) return undefined;
    scratch.writeUInt16BE(at - dataAt, rdLenAt);
    if (type === TYPE_OPT) {
      optAt = start;
      optEnd = at;
    }
    off = rdEnd;
  }
  if (at > 0xffff) return undefined;
  if (udpLimit === 0 || at <= udpLimit) return Buffer.from(scratch.subarray(0, at));
  // Header and question, with TC and no records but the OPT one.
  scratch[2] |= TC;
  scratch.writeUInt32BE(0, 6);
  scratch.writeUInt16BE(optAt < 0 ? 0 : 1, 10);
  const cut = Buffer.allocUnsafe(questionEnd + (optAt < 0 ? 0 : optEnd - optAt));
  scratch.copy(cut, 0, 0, questionEnd);
  if (optAt >= 0) scratch.copy(cut, questionEnd, optAt, optEnd);
  return cut;
}
