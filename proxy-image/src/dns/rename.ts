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
  return Buffer.concat([query.subarray(0, HEADER_LEN), name, query.subarray(nameEnd)]);
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

/** The name at `off`, uncompressed (labels and the closing zero), or undefined when malformed. */
function readName(buf: Buffer, off: number, walk: NameWalk): Buffer | undefined {
  if (!walkName(buf, off, walk)) return undefined;
  if (!walk.pointer) return buf.subarray(off, walk.end);
  const end = walk.end;
  const parts: Buffer[] = [];
  for (;;) {
    const len = buf[off];
    if (len === 0) break;
    if ((len & 0xc0) === 0xc0) {
      off = buf.readUInt16BE(off) & 0x3fff;
      continue;
    }
    parts.push(buf.subarray(off, off + 1 + len));
    off += 1 + len;
  }
  parts.push(ZERO);
  walk.end = end;
  return Buffer.concat(parts);
}

const ZERO = Buffer.from([0]);

/** Names compare without ASCII case (RFC 4343). Both uncompressed. */
function sameName(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
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
  const header = Buffer.from(resp.subarray(0, HEADER_LEN));
  header.writeUInt16BE(id, 0);
  const question = [asked, resp.subarray(walk.end, off)];
  const parts: Buffer[] = [header, ...question];
  const opts: Buffer[] = [];
  let optCount = 0;
  let size = HEADER_LEN + asked.length + 4;
  const an = resp.readUInt16BE(6);
  const ns = resp.readUInt16BE(8);
  const total = an + ns + resp.readUInt16BE(10);
  for (let i = 0; i < total; i++) {
    const owner = readName(resp, off, walk);
    if (!owner || walk.end + 10 > resp.length) return undefined;
    off = walk.end;
    const type = resp.readUInt16BE(off);
    const rdStart = off + 10;
    const rdEnd = rdStart + resp.readUInt16BE(off + 8);
    if (rdEnd > resp.length || OTHER_NAMES.has(type)) return undefined;
    const inAuthority = i >= an && i < an + ns;
    const record: Buffer[] = [!inAuthority && sameName(owner, tried) ? asked : owner, Buffer.from(resp.subarray(off, rdStart))];
    const layout = NAME_LAYOUTS.get(type);
    let rdLen = rdEnd - rdStart;
    if (!layout) {
      record.push(resp.subarray(rdStart, rdEnd));
    } else {
      rdLen = 0;
      let p = rdStart;
      for (const field of layout) {
        const piece = field === N ? readName(resp, p, walk) : resp.subarray(p, p + field);
        p = field === N ? walk.end : p + field;
        if (!piece || p > rdEnd) return undefined;
        record.push(piece);
        rdLen += piece.length;
      }
      if (p !== rdEnd || rdLen > 0xffff) return undefined;
    }
    record[1].writeUInt16BE(rdLen, 8);
    for (const r of record) size += r.length;
    parts.push(...record);
    if (type === TYPE_OPT) {
      opts.push(...record);
      optCount++;
    }
    off = rdEnd;
  }
  if (udpLimit === 0 || size <= udpLimit) return Buffer.concat(parts, size);
  header[2] |= TC;
  header.writeUInt16BE(0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(optCount, 10);
  return Buffer.concat([header, ...question, ...opts]);
}
