// Issue 16, the findings that a router in this process shows on real
// sockets: the request-head deadline against a slow client, the h2c
// upgrade's deadline, one rule for repeated tag headers on HTTP/1.1 and
// HTTP/2, caps on routes with typed refusals, and the SSH server's caps on
// unauthenticated sockets, channels and global requests, and its log.
// The floods against the built process are in test/e2e/router-hostile.test.ts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { PROTOCOL_VERSION } from '../../contract/protocol.ts';
import { MAX_ROUTES_PER_HOLDER } from '../../proxy-image/src/router/table.ts';
import { MAX_PENDING_REQUESTS } from '../../proxy-image/src/ssh/global-requests.ts';
import { MAX_CHANNELS, MAX_UNAUTHENTICATED } from '../../proxy-image/src/ssh/server.ts';
import { RouteRefusedError, requestRoute } from '../../plugin/src/tunnel/index.ts';
import { bed, echo, h2Who, podOf, rawConnect, responseReader, tag } from './router-fixtures.ts';

test('slowloris: one byte every 100 ms gets 408 at the head deadline, not never', async (t) => {
  const b = await bed(t, { headTimeoutMs: 1000 });
  const slow = await rawConnect(b.port);
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: svc\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`);
  let i = 0;
  // The fault, held until the router answers: a byte every 100 ms (the idle timer never fires).
  const drip = setInterval(() => {
    if (i < head.length && !slow.destroyed) slow.write(head.subarray(i, ++i));
  }, 100);
  t.after(() => {
    clearInterval(drip);
    slow.destroy();
  });
  let got = '';
  slow.on('data', (d: Buffer) => (got += d.toString()));
  const t0 = performance.now();
  const closed = once(slow, 'close');
  const limit = new Promise((r) => setTimeout(r, 8000).unref());
  await Promise.race([closed, limit]);
  const ms = performance.now() - t0;
  console.log(`slowloris: answered after ${ms.toFixed(0)} ms with ${JSON.stringify(got.split('\r\n')[0])} (deadline 1000 ms, ${i} bytes sent)`);
  assert.match(got, /^HTTP\/1\.1 408 /, 'no 408 within 8 s');
  // A complete head in one write is still served on a fresh connection.
  const ok = await rawConnect(b.port);
  t.after(() => ok.destroy());
  const rd = responseReader(ok);
  ok.write('GET / HTTP/1.1\r\nHost: svc\r\n\r\n');
  assert.equal(podOf(await rd.next()), 'origin-pod');
});

test('h2c upgrade: a client that never sends the preface is closed at the deadline; a huge first SETTINGS at once', async (t) => {
  const b = await bed(t, { headTimeoutMs: 500 });
  const upgrade = 'GET / HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n';
  const silent = await rawConnect(b.port);
  const huge = await rawConnect(b.port);
  t.after(() => {
    silent.destroy();
    huge.destroy();
  });
  // Read (and drop) what comes back: a socket never read sees no 'end', so no 'close'.
  silent.resume();
  huge.resume();
  silent.write(upgrade);
  const settingsHead = Buffer.alloc(9);
  settingsHead.writeUIntBE(0xffffff, 0, 3);
  settingsHead[3] = 4;
  huge.write(upgrade);
  huge.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settingsHead, Buffer.alloc(32 * 1024)]));
  const limit = (ms: number) => new Promise<string>((r) => setTimeout(() => r('still open'), ms).unref());
  const [a, c] = await Promise.all([
    Promise.race([once(silent, 'close').then(() => 'closed'), limit(8000)]),
    Promise.race([once(huge, 'close').then(() => 'closed'), limit(8000)]),
  ]);
  assert.equal(c, 'closed', 'a first SETTINGS frame of 16 MiB is refused at its frame header');
  assert.equal(a, 'closed', 'no preface within the deadline closes the connection');
  assert.ok(b.logs.some((l) => /no HTTP\/2 preface and SETTINGS within 500 ms/.test(l)));
  assert.ok(b.logs.some((l) => /FRAME_SIZE_ERROR/.test(l)));
});

test('repeated tag headers: two lines, one comma-joined line and two HTTP/2 fields all go to the same developer', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const sock = await rawConnect(b.port);
  t.after(() => sock.destroy());
  const rd = responseReader(sock);
  sock.write('GET / HTTP/1.1\r\nHost: svc\r\nx-kt-version: bob\r\nx-kt-version: alice\r\n\r\n');
  const twoLines = podOf(await rd.next());
  sock.write('GET / HTTP/1.1\r\nHost: svc\r\nx-kt-version: bob, alice\r\n\r\n');
  const joined = podOf(await rd.next());
  sock.write('GET / HTTP/1.1\r\nHost: svc\r\nx-kt-version: bob\r\n\r\n');
  const other = podOf(await rd.next());
  const session = http2.connect(`http://127.0.0.1:${b.port}`);
  t.after(() => session.destroy());
  const h2pod = (await h2Who(session, { 'x-kt-version': ['bob', 'alice'] }, '/')).pod;
  assert.deepEqual({ twoLines, joined, h2pod, other }, { twoLines: 'alice', joined: 'alice', h2pod: 'alice', other: 'origin-pod' });
});

test('routes are capped per session, refused with code "limit"; a regex the engine cannot run with code "invalid"', async (t) => {
  const b = await bed(t);
  const first = await b.dev('alice', { headers: tag('alice-0') });
  const laptop = await echo('alice-more');
  t.after(() => laptop.close());
  const route = (value: string, headers = tag(value)) =>
    requestRoute(first.tunnel, { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers, owner: 'alice@laptop', session: 's-alice' }, { host: '127.0.0.1', port: laptop.port });
  for (let i = 1; i < MAX_ROUTES_PER_HOLDER; i++) await route(`alice-${i}`);
  const over = await route('alice-over').then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(over instanceof RouteRefusedError, `route ${MAX_ROUTES_PER_HOLDER + 1} of one session is refused`);
  assert.equal(over.code, 'limit');
  assert.match(over.refused, /32 routes/);
  // A new session still gets its route: the cap is per session.
  await b.dev('bob', { headers: tag('bob') });
  const back = await b.dev('carol', { headers: [{ name: 'x-user', regex: '(a)\\1' }] }).then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(back instanceof RouteRefusedError);
  assert.equal(back.code, 'invalid');
  assert.match(back.refused, /not an RE2 regular expression.*backreferences and lookaround are not supported/);
});

test('SSH: unauthenticated sockets beyond the cap are closed at once', async (t) => {
  const b = await bed(t);
  // Unauthenticated: sockets that connect and say nothing (the login grace is 30 s).
  const idle: net.Socket[] = [];
  t.after(() => {
    for (const s of idle) s.destroy();
  });
  const n = MAX_UNAUTHENTICATED + 36;
  let closedEarly = 0;
  await Promise.all(
    Array.from({ length: n }, () => {
      const s = net.connect(b.router.sshPort, '127.0.0.1');
      s.on('error', () => {});
      idle.push(s);
      s.once('close', () => closedEarly++);
      return once(s, 'connect');
    }),
  );
  const seen = await waitFor(() => closedEarly >= n - MAX_UNAUTHENTICATED, 5000);
  console.log(`ssh: ${n} silent sockets, ${closedEarly} closed at once (cap ${MAX_UNAUTHENTICATED})`);
  assert.ok(seen, `only ${closedEarly} of ${n} silent sockets were closed`);
  for (const s of idle) s.destroy();
});

test('SSH: global requests in flight are capped, and refused requests do not write a log line each', async (t) => {
  const b = await bed(t);
  const dev = await b.dev('alice', { headers: tag('alice') });
  // Global requests in flight: a burst of 200 in one go.
  const linesBefore = b.logs.length;
  const replies = await Promise.allSettled(Array.from({ length: 200 }, () => dev.tunnel.hello()));
  const refused = replies.filter((r) => r.status === 'rejected').length;
  console.log(`ssh: 200 hello requests at once, ${refused} refused (cap ${MAX_PENDING_REQUESTS} in flight)`);
  assert.ok(refused > 0 && refused <= 200 - MAX_PENDING_REQUESTS, `${refused} refused`);
  // Unknown requests: refused, and the log does not get a line for each.
  await Promise.allSettled(Array.from({ length: 1000 }, () => dev.tunnel.request('nobody@kt.dev', Buffer.alloc(0))));
  const lines = b.logs.length - linesBefore;
  console.log(`ssh: 1,200 refused global requests wrote ${lines} log lines`);
  assert.ok(lines <= 60, `${lines} log lines for 1,200 refused requests`);
});

test('SSH: channels open on one connection are capped', async (t) => {
  const b = await bed(t);
  const dev = await b.dev('alice', { headers: tag('alice') });
  const target = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const tport = (target.address() as net.AddressInfo).port;
  t.after(() => new Promise<void>((r) => target.close(() => r())));
  const opened = await Promise.allSettled(Array.from({ length: MAX_CHANNELS + 50 }, () => dev.tunnel.connect('127.0.0.1', tport)));
  const ok = opened.filter((r) => r.status === 'fulfilled');
  for (const r of ok) r.value.destroy();
  console.log(`ssh: ${MAX_CHANNELS + 50} channels asked on one connection, ${ok.length} opened (cap ${MAX_CHANNELS})`);
  assert.equal(ok.length, MAX_CHANNELS);
  target.close();
});

async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
