// Malformed input: thousands of mutated HTTP/1 requests, random bytes and
// garbage HTTP/2 frames. Each connection ends in an answer (400 from the
// router, or an origin answer when the mutation left a valid request) or a
// close — never a hang, never a 502 — and the router keeps serving.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { bed, tag, whoAnswers } from './router-fixtures.ts';

/** mulberry32: a seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE = [
  'GET /path?q=1 HTTP/1.1\r\nHost: svc\r\nx-kt-version: alice\r\nAccept: */*\r\n\r\n',
  'POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello',
  'POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nx-kt-version: alice\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
];
const NASTY = ['\r', '\n', '\r\n', '\0', ' ', ':', '\t', '\x7f', '\xff', 'HTTP/1.1', 'Content-Length: 3\r\n', 'Transfer-Encoding: chunked\r\n', ' folded\r\n', 'zz', '-1', '99999999999999999'];
const HAND = [
  'GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
  'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
  'GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n',
  'GET / HTTP/9.9\r\n\r\n',
  'GET  / HTTP/1.1\r\n\r\n',
  'GET /\x00 HTTP/1.1\r\n\r\n',
  'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n',
  'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n',
  `GET / HTTP/1.1\r\nX: ${'a'.repeat(70 * 1024)}\r\n\r\n`,
  `GET / HTTP/1.1\r\n${'X-A: b\r\n'.repeat(10_000)}\r\n`,
  'CONNECT example.com:443 HTTP/1.1\r\n\r\n',
];

function mutate(r: () => number, base: string): Buffer {
  const b = [...Buffer.from(base, 'latin1')];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * b.length);
    const op = r();
    if (op < 0.35) b[at] = Math.floor(r() * 256);
    else if (op < 0.6) b.splice(at, 0, ...Buffer.from(NASTY[Math.floor(r() * NASTY.length)], 'latin1'));
    else if (op < 0.8) b.splice(at, 1 + Math.floor(r() * 5));
    else b.splice(at, 0, ...Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)));
  }
  return Buffer.from(b);
}

/** Writes bytes, half-closes, and reports the first status line (or '' for a close without an answer). */
function send(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    sock.setTimeout(10_000, () => {
      sock.destroy();
      reject(new Error(`no answer and no close for ${JSON.stringify(bytes.toString('latin1').slice(0, 120))}`));
    });
    sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    sock.on('error', () => {});
    sock.on('close', () => {
      const line = got.toString('latin1').split('\r\n')[0];
      resolve(line);
    });
    sock.end(bytes);
  });
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

test('thousands of malformed HTTP/1 requests: 400 or close, and the router keeps serving', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const r = rng(20261122);
  const cases: Buffer[] = HAND.map((h) => Buffer.from(h, 'latin1'));
  for (let i = 0; i < 3000; i++) cases.push(mutate(r, BASE[i % BASE.length]));
  for (let i = 0; i < 200; i++) cases.push(Buffer.from(Array.from({ length: 1 + Math.floor(r() * 300) }, () => Math.floor(r() * 256))));
  // Unmutated, each base request is answered even though the client half-closes right after it.
  for (const base of BASE) assert.match(await send(b.port, Buffer.from(base, 'latin1')), /^HTTP\/1\.1 200 /);
  const seen = new Map<string, number>();
  await pool(cases, 16, async (c) => {
    const line = await send(b.port, c);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? (line === '' ? 'closed' : 'other');
    seen.set(status, (seen.get(status) ?? 0) + 1);
    // 502 would mean the router broke a request it accepted; anything not
    // HTTP or a close would mean it answered garbage with garbage.
    assert.ok(['200', '400', '404', '413', '431', '501', 'closed'].includes(status), `status ${status} (${JSON.stringify(line)}) for ${JSON.stringify(c.toString('latin1').slice(0, 100))}`);
  });
  process.stderr.write(`router fuzz: ${cases.length} HTTP/1 cases → ${JSON.stringify(Object.fromEntries(seen))}\n`);
  // The hand-written smuggling and limit cases are all refused by the router itself.
  for (const h of HAND) assert.match(await send(b.port, Buffer.from(h, 'latin1')), /^HTTP\/1\.1 (400|431|501) /, JSON.stringify(h.slice(0, 60)));
  assert.ok((seen.get('400') ?? 0) > 500, 'most mutations are refused');
  assert.ok((seen.get('200') ?? 0) > 50, 'mutations that stay valid are served');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  assert.equal(await whoAnswers(b.port), 'origin-pod');
});

test('garbage HTTP/2 frames: the connection closes, the router keeps serving h2', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const r = rng(7);
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
  const cases: Buffer[] = [];
  for (let i = 0; i < 500; i++) {
    const junk = Buffer.from(Array.from({ length: 9 + Math.floor(r() * 200) }, () => Math.floor(r() * 256)));
    cases.push(Buffer.concat(i % 2 ? [preface, settings, junk] : [preface, junk]));
  }
  // A HEADERS frame whose HPACK block is nonsense, and a frame claiming 16 MiB.
  cases.push(Buffer.concat([preface, settings, Buffer.from([0, 0, 4, 1, 5, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])]));
  cases.push(Buffer.concat([preface, settings, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1])]));
  await pool(cases, 16, async (c) => {
    const line = await send(b.port, c);
    assert.ok(!line.startsWith('HTTP/1'), 'h2 garbage is not answered as HTTP/1');
  });
  const session = http2.connect(`http://127.0.0.1:${b.port}`);
  t.after(() => session.destroy());
  const pod = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/', 'x-kt-version': 'alice' });
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => resolve((JSON.parse(body) as { pod: string }).pod));
    req.on('error', reject);
    req.end();
  });
  assert.equal(pod, 'alice');
});
