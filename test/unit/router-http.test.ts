// The router on HTTP/1.1 and WebSocket: per-request routing on one
// keep-alive connection, chunked bodies, 100-continue, upgrades, fallback to
// origin when a developer's connection is gone. Real sockets, a real SSH
// tunnel from the plugin's client, the echo demo app as origin and laptops.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { bed, podOf, rawConnect, responseReader, tag, whoAnswers } from './router-fixtures.ts';

test('untagged goes to origin, tagged to the developer, tagged for a gone session to origin', async (t) => {
  const b = await bed(t);
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'origin-pod', 'no route yet');
  const alice = await b.dev('alice', { headers: tag('alice') });
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  assert.equal(await whoAnswers(b.port, { 'X-KT-Version': 'alice' }), 'alice', 'header names are case-insensitive');
  assert.equal(await whoAnswers(b.port), 'origin-pod');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'bob' }), 'origin-pod');
  const routes = b.router.routes();
  assert.equal(routes.length, 1);
  assert.equal(routes[0].owner, 'alice@laptop');
  await alice.tunnel.close();
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'origin-pod', 'session gone: origin, not an error');
});

test('one keep-alive connection carries alice, bob and untagged requests, each routed on its own', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  await b.dev('bob', { headers: tag('bob') });
  const sock = await rawConnect(b.port);
  t.after(() => sock.destroy());
  const rd = responseReader(sock);
  const get = (v?: string) => `GET /who HTTP/1.1\r\nHost: svc\r\n${v ? `x-kt-version: ${v}\r\n` : ''}\r\n`;
  // Pipelined: three requests in one write; answers come back in order.
  sock.write(get('alice') + get('bob') + get());
  assert.deepEqual([podOf(await rd.next()), podOf(await rd.next()), podOf(await rd.next())], ['alice', 'bob', 'origin-pod']);
  // And one at a time on the same connection, in another order.
  for (const [v, want] of [[undefined, 'origin-pod'], ['bob', 'bob'], ['alice', 'alice'], ['bob', 'bob']] as const) {
    sock.write(get(v));
    assert.equal(podOf(await rd.next()), want);
  }
  assert.equal(sock.destroyed, false, 'the connection stayed open');
});

test('chunked request bodies arrive whole at the developer and at origin', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const sock = await rawConnect(b.port);
  t.after(() => sock.destroy());
  const rd = responseReader(sock);
  const parts = ['hello ', 'chunked ', 'world'.repeat(3000)];
  const sha = createHash('sha256').update(parts.join('')).digest('hex');
  const chunked = parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
  for (const v of ['alice', undefined]) {
    const head = `POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n${v ? `x-kt-version: ${v}\r\n` : ''}\r\n`;
    // Written in small pieces so the body crosses many reads.
    const all = Buffer.from(head + chunked);
    for (let i = 0; i < all.length; i += 1000) sock.write(all.subarray(i, i + 1000));
    const res = await rd.next();
    const body = JSON.parse(res.body.toString()) as { pod: string; body: { sha256: string; length: number } };
    assert.equal(body.pod, v ?? 'origin-pod');
    assert.equal(body.body.sha256, sha);
  }
  // A chunked answer comes back whole too.
  sock.write('GET /chunked/50 HTTP/1.1\r\nHost: svc\r\nx-kt-version: alice\r\n\r\n');
  const res = await rd.next();
  const lines = res.body.toString().trim().split('\n').map((l) => JSON.parse(l) as { pod: string; chunk: number });
  assert.equal(lines.length, 50);
  assert.ok(lines.every((l) => l.pod === 'alice'));
});

test('Expect: 100-continue: the interim answer is relayed before the body is sent', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const sock = await rawConnect(b.port);
  t.after(() => sock.destroy());
  const rd = responseReader(sock);
  const body = 'x'.repeat(10_000);
  sock.write(`POST /c HTTP/1.1\r\nHost: svc\r\nx-kt-version: alice\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
  // Wait for the 100 before sending a byte of body.
  await new Promise<void>((resolve) => {
    const check = (d: Buffer) => {
      if (d.toString('latin1').startsWith('HTTP/1.1 100')) {
        sock.off('data', check);
        resolve();
      }
    };
    sock.on('data', check);
  });
  sock.write(body);
  const res = await rd.next();
  assert.equal(rd.interim[0], 'HTTP/1.1 100 Continue');
  assert.equal(podOf(res), 'alice');
  assert.equal((JSON.parse(res.body.toString()) as { body: { length: number } }).body.length, body.length);
});

test('WebSocket upgrades are routed by their headers, then spliced', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const talk = async (headers: Record<string, string>) => {
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/ws`, { headers });
    t.after(() => ws.terminate());
    await once(ws, 'open');
    const got: string[] = [];
    for (const m of ['one', 'two']) {
      ws.send(m);
      const [data] = (await once(ws, 'message')) as [Buffer];
      const v = JSON.parse(data.toString()) as { pod: string; message: string };
      assert.equal(v.message, m);
      got.push(v.pod);
    }
    ws.close();
    await once(ws, 'close');
    return got;
  };
  assert.deepEqual(await talk({ 'x-kt-version': 'alice' }), ['alice', 'alice']);
  assert.deepEqual(await talk({}), ['origin-pod', 'origin-pod']);
});

test('health and routes endpoints', async (t) => {
  const b = await bed(t);
  const h = await fetch(`http://127.0.0.1:${b.router.healthPort}/healthz`);
  assert.equal(h.status, 200);
  await h.text();
  await b.dev('alice', { headers: [{ name: 'x-kt-version', regex: 'ali.*' }] });
  const r = (await (await fetch(`http://127.0.0.1:${b.router.healthPort}/routes`)).json()) as { routes: Array<Record<string, unknown>> };
  assert.equal(r.routes.length, 1);
  assert.deepEqual(r.routes[0].headers, [{ name: 'x-kt-version', regex: 'ali.*' }]);
  assert.equal(r.routes[0].kind, 'mesh');
  assert.equal(r.routes[0].owner, 'alice@laptop');
  assert.equal(typeof r.routes[0].connections, 'number');
  assert.equal((await fetch(`http://127.0.0.1:${b.router.healthPort}/nope`)).status, 404);
});

test('idle keep-alive connections close; a head that never completes gets 408', async (t) => {
  const b = await bed(t, { idleTimeoutMs: 200 });
  const idle = await rawConnect(b.port);
  const slow = await rawConnect(b.port);
  t.after(() => {
    idle.destroy();
    slow.destroy();
  });
  const rd = responseReader(idle);
  idle.write('GET / HTTP/1.1\r\nHost: svc\r\n\r\n');
  assert.equal(podOf(await rd.next()), 'origin-pod');
  let slowGot = '';
  slow.on('data', (d: Buffer) => (slowGot += d.toString()));
  slow.write('GET / HTTP/1.1\r\nHost: sv');
  await Promise.all([once(idle, 'close'), once(slow, 'close')]);
  assert.match(slowGot, /^HTTP\/1\.1 408 /);
});

test('a client connection keeps its upstream connection from request to request; another client gets its own', async (t) => {
  // An origin that says which of its connections carried each request.
  const origin = http.createServer((req, res) => {
    const text = JSON.stringify({ pod: 'origin-pod', peer: req.socket.remotePort });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.after(() => {
    origin.closeAllConnections();
    origin.close();
  });
  const b = await bed(t, {}, (origin.address() as AddressInfo).port);
  await b.dev('alice', { headers: tag('alice') });
  const get = (v?: string) => `GET /who HTTP/1.1\r\nHost: svc\r\n${v ? `x-kt-version: ${v}\r\n` : ''}\r\n`;
  const peerOf = (r: { body: Buffer }): number => (JSON.parse(r.body.toString()) as { peer: number }).peer;
  const a = await rawConnect(b.port);
  const c = await rawConnect(b.port);
  t.after(() => {
    a.destroy();
    c.destroy();
  });
  const ra = responseReader(a);
  const rc = responseReader(c);
  const peersA: number[] = [];
  for (let i = 0; i < 5; i++) {
    a.write(get());
    peersA.push(peerOf(await ra.next()));
  }
  assert.equal(new Set(peersA).size, 1, `one upstream connection for five requests: ${peersA}`);
  // Client c, while a is idle: not a's connection (the origin balances per client connection, as kube-proxy does).
  c.write(get());
  assert.notEqual(peerOf(await rc.next()), peersA[0]);
  // A tagged request in between still goes to the developer, and a's next untagged one reaches the origin again.
  a.write(get('alice'));
  assert.equal(podOf(await ra.next()), 'alice');
  a.write(get());
  assert.equal(podOf(await ra.next()), 'origin-pod');
  // The origin closing an idle kept connection costs nothing: the next request goes on a new one.
  origin.closeIdleConnections();
  a.write(get());
  const r = await ra.next();
  assert.equal(podOf(r), 'origin-pod');
  assert.equal(r.status, 200);
});
