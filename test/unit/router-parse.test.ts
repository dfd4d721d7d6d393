// HTTP/1 head parsing and chunked framing, byte by byte where it matters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkedScanner, MAX_HEAD, parseRequestHead, parseResponseHead, responseFraming } from '../../proxy-image/src/router/http1-parse.ts';
import type { RequestHead, ResponseHead } from '../../proxy-image/src/router/http1-parse.ts';

const B = (s: string) => Buffer.from(s, 'latin1');
function ok(s: string): RequestHead {
  const r = parseRequestHead(B(s));
  if (r.kind !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r.head;
}
function bad(s: string | Buffer): string {
  const r = parseRequestHead(typeof s === 'string' ? B(s) : s);
  assert.equal(r.kind, 'error', `accepted ${JSON.stringify(String(s).slice(0, 60))}`);
  return r.kind === 'error' ? `${r.status} ${r.why}` : '';
}

test('request heads: method, target, version, headers, framing, keep-alive, upgrade', () => {
  const h = ok('GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-KT-Version:  alice \r\n\r\nrest');
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/a?b=1');
  assert.equal(h.minor, 1);
  assert.deepEqual(h.headers, [['host', 'x'], ['x-kt-version', 'alice']]);
  assert.equal(h.headLength, B('GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-KT-Version:  alice \r\n\r\n').length);
  assert.deepEqual(h.body, { kind: 'none' });
  assert.equal(h.keepAlive, true);
  assert.equal(ok('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(ok('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
  assert.equal(ok('GET / HTTP/1.1\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.deepEqual(ok('POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n').body, { kind: 'length', length: 5 });
  assert.deepEqual(ok('POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n').body, { kind: 'length', length: 5 });
  assert.deepEqual(ok('POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').body, { kind: 'chunked' });
  assert.equal(ok('GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade, 'websocket');
  assert.equal(ok('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n').upgrade, undefined, 'Upgrade not named in Connection');
  assert.equal(parseRequestHead(B('GET / HTTP/1.1\r\nHost: x\r\n')).kind, 'more');
});

test('request heads that smuggle or break are refused', () => {
  assert.match(bad('GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'), /^400 both/);
  assert.match(bad('GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'), /^400 differing/);
  assert.match(bad('GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n'), /^400 bad Content-Length/);
  assert.match(bad('GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n'), /^400/);
  assert.match(bad('GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'), /^400/);
  assert.match(bad('GET / HTTP/1.1\r\nHost : x\r\n\r\n'), /^400 malformed header/);
  assert.match(bad('GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n'), /^400 malformed header/, 'obs-fold');
  assert.match(bad('GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n'), /^400 bare CR or LF/);
  assert.match(bad('GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n'), /^400 control character/);
  assert.match(bad('GET /a b HTTP/1.1\r\n\r\n'), /^400 malformed request line/);
  assert.match(bad('GET / HTTP/2.0\r\n\r\n'), /^400 malformed request line/);
  assert.match(bad('G@T / HTTP/1.1\r\n\r\n'), /^400 malformed request line/);
  assert.match(bad('CONNECT a:443 HTTP/1.1\r\n\r\n'), /^501/);
  assert.match(bad(Buffer.concat([B('GET / HTTP/1.1\r\nA: '), Buffer.alloc(MAX_HEAD, 'a')])), /^431/);
  assert.match(bad(Buffer.concat([B('GET / HTTP/1.1\r\nA: '), Buffer.alloc(MAX_HEAD, 'a'), B('\r\n\r\n')])), /^431/);
});

test('responses: framing by method and status (RFC 9112 §6.3)', () => {
  const res = (s: string): ResponseHead => {
    const r = parseResponseHead(B(s));
    if (r.kind !== 'ok') throw new Error(JSON.stringify(r));
    return r.head;
  };
  assert.deepEqual(responseFraming('GET', res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n')), { kind: 'length', length: 3 });
  assert.deepEqual(responseFraming('HEAD', res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n')), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', res('HTTP/1.1 204 No Content\r\n\r\n')), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', res('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n')), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), { kind: 'chunked' });
  assert.deepEqual(responseFraming('GET', res('HTTP/1.1 200 OK\r\n\r\n')), { kind: 'close' });
  assert.equal(res('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(res('HTTP/1.1 100 Continue\r\n\r\n').status, 100);
  assert.equal(parseResponseHead(B('HTTP/1.1 20 OK\r\n\r\n')).kind, 'error');
});

test('chunked scanner finds the end at any split, passing extensions and trailers', () => {
  const body = B('5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
  const after = B('GET / HTTP/1.1\r\n\r\n');
  const all = Buffer.concat([body, after]);
  for (let split = 0; split <= all.length; split++) {
    const s = new ChunkedScanner();
    const a = s.scan(all.subarray(0, split));
    assert.equal(typeof a, 'number');
    let used = a as number;
    if (!s.done) {
      const b = s.scan(all, split);
      assert.equal(typeof b, 'number');
      used += b as number;
    }
    assert.equal(s.done, true, `split ${split}`);
    assert.equal(used, body.length, `split ${split}`);
  }
  for (const broken of ['x\r\n', '5\r\nhelloXX', '5\nhello', '0\r\nA: b\n', '1ffffffffffffff\r\n', `${'1'.repeat(5)};${'e'.repeat(5000)}\r\n`]) {
    assert.equal(typeof new ChunkedScanner().scan(B(broken)), 'string', JSON.stringify(broken.slice(0, 20)));
  }
});
