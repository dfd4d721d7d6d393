// W3C Baggage (https://www.w3.org/TR/baggage/, §3.2 "Header Content"):
// the `baggage` request header that OpenTelemetry-instrumented services pass
// on from hop to hop. Pure: no I/O, shared by the router (matching:
// proxy-image/src/router/baggage-match.ts) and the plugin (adding members to
// requests in `connect`).
//
//   baggage-string = list-member 0*179( OWS "," OWS list-member )
//   list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//   property       = key OWS "=" OWS value / key OWS
//   key            = token                       (RFC 9110 §5.6.2)
//   value          = *baggage-octet
//   baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//   OWS            = *( SP / HTAB )
//
// Values are percent-encoded UTF-8 (§3.2.1.1.2): decoded here, with byte
// sequences that are not UTF-8 replaced by U+FFFD as the spec says.
// Anything malformed makes the whole header set unusable: parseBaggage
// returns undefined, and a route never matches on it (deny by default; a
// request with broken baggage goes where an untagged one goes).

/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** One or more baggage-octets. */
const VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
const OWS = /^[ \t]+|[ \t]+$/g;
const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Decoded members: key → the decoded values of every member with that key, in order. */
export type Baggage = ReadonlyMap<string, readonly string[]>;

/** A member's key and decoded value; undefined when the member is malformed. */
export function parseMember(text: string): { key: string; value: string } | undefined {
  const semi = text.indexOf(';');
  const head = semi < 0 ? text : text.slice(0, semi);
  const eq = head.indexOf('=');
  if (eq < 0) return undefined;
  const key = head.slice(0, eq).replace(OWS, '');
  const raw = head.slice(eq + 1).replace(OWS, '');
  if (!TOKEN.test(key) || !VALUE.test(raw)) return undefined;
  if (semi >= 0 && !validProperties(text.slice(semi + 1))) return undefined;
  const value = decodeValue(raw);
  return value === undefined ? undefined : { key, value };
}

/** Properties are metadata about the member (§3.2.1.1.3); we check their syntax and ignore them. */
function validProperties(text: string): boolean {
  for (const prop of text.split(';')) {
    const eq = prop.indexOf('=');
    const key = (eq < 0 ? prop : prop.slice(0, eq)).replace(OWS, '');
    if (!TOKEN.test(key)) return false;
    if (eq >= 0 && !VALUE.test(prop.slice(eq + 1).replace(OWS, ''))) return false;
  }
  return true;
}

/** Percent-decodes a value; a `%` not followed by two hex digits is malformed. */
export function decodeValue(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  return utf8.decode(Uint8Array.from(bytes));
}

/**
 * Parses every `baggage` field line of a request (RFC 9110 §5.3: several
 * lines are one comma-separated list). Empty lines are skipped; any
 * malformed member or empty list element makes the result undefined.
 */
export function parseBaggage(lines: readonly string[] | string): Baggage | undefined {
  const out = new Map<string, string[]>();
  for (const line of typeof lines === 'string' ? [lines] : lines) {
    if (line.replace(OWS, '') === '') continue;
    for (const item of line.split(',')) {
      const m = parseMember(item);
      if (!m) return undefined;
      const list = out.get(m.key);
      if (list) list.push(m.value);
      else out.set(m.key, [m.value]);
    }
  }
  return out;
}

/**
 * Percent-encodes a value for the header (§3.2.1.1.2: every code point
 * outside baggage-octet, and `%` itself, as UTF-8 bytes).
 */
export function encodeValue(value: string): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(b);
    out += b !== 0x25 && b < 0x80 && VALUE.test(ch) && ch !== '' ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Whether KEY is a valid member key (an RFC 9110 token). */
export function isBaggageKey(key: string): boolean {
  return TOKEN.test(key);
}

/**
 * The baggage lines with our members put in: members with the same key are
 * replaced (ours win), malformed members are dropped, the rest keep their
 * order. Returns one field value.
 */
export function mergeBaggage(lines: readonly string[] | string | undefined, ours: ReadonlyArray<{ key: string; value: string }>): string {
  const keys = new Set(ours.map((m) => m.key));
  const kept: string[] = [];
  for (const line of lines === undefined ? [] : typeof lines === 'string' ? [lines] : lines) {
    for (const item of line.split(',')) {
      const m = parseMember(item);
      if (m && !keys.has(m.key)) kept.push(item.replace(OWS, ''));
    }
  }
  return [...ours.map((m) => `${m.key}=${encodeValue(m.value)}`), ...kept].join(',');
}
