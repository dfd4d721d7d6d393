// What a connection speaks, from its first bytes: HTTP/2 by prior knowledge
// (the RFC 9113 §3.4 preface), HTTP/1.x (a method token and a space), or
// anything else (TLS, database protocols), which is routed as plain TCP.
// Pure: no I/O.

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Longest method token taken as HTTP (the longest registered methods are ~17 characters). */
const MAX_METHOD = 20;

export type Sniffed = 'h2' | 'h1' | 'raw' | 'more';

function isTokenChar(c: number): boolean {
  // RFC 9110 §5.6.2 tchar; methods are in practice upper-case letters, but any token is valid.
  return (
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e
  );
}

export function sniff(buf: Buffer): Sniffed {
  // Empty lines before a request line are allowed (RFC 9112 §2.2).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start > 4) return 'raw';
  const n = Math.min(buf.length - start, H2_PREFACE.length);
  if (start === 0 && buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    return buf.length >= H2_PREFACE.length ? 'h2' : 'more';
  }
  for (let i = start; i < buf.length; i++) {
    const c = buf[i];
    if (c === 0x20) return i > start ? 'h1' : 'raw';
    if (!isTokenChar(c) || i - start >= MAX_METHOD) return 'raw';
  }
  return 'more';
}
