// The router's graceful exit (proxy-image/src/router/drain.ts) on real
// sockets: unready at once, every connection still served, HTTP/1.1 answers
// carry `Connection: close` and end their connection, HTTP/2 and gRPC
// sessions get GOAWAY and the channel moves to a new connection with no call
// failing, a request or stream in flight holds the exit, and the exit comes
// once no connection was new for the quiet period.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { test } from 'node:test';
import { bed, tag, whoAnswers } from './router-fixtures.ts';
import { RouteRefusedError } from '../../plugin/src/tunnel/route.ts';
import { grpc, grpcClient, grpcServer } from '../fixtures/grpc/kt-echo.ts';
import type { Reply } from '../fixtures/grpc/kt-echo.ts';
import { END_GRACE_MS, withConnectionClose } from '../../proxy-image/src/router/drain.ts';

const QUIET = 300;

interface Answer {
  status: number;
  connection: string | undefined;
  pod: string;
  socket: net.Socket;
}

function get(agent: http.Agent, port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, pod: (JSON.parse(body) as { pod: string }).pod, socket: req.socket as net.Socket }));
    });
    req.on('error', reject);
  });
}

function healthz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('withConnectionClose adds the header before the blank line', () => {
  const head = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n', 'latin1');
  assert.equal(withConnectionClose(head).toString('latin1'), 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n');
  const kept = Buffer.from('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nx-connection-id: 7\r\n\r\n', 'latin1');
  assert.equal(withConnectionClose(kept).toString('latin1'), 'HTTP/1.1 200 OK\r\nx-connection-id: 7\r\nconnection: close\r\n\r\n');
});

test('HTTP/1.1: unready at once; keep-alive answers say Connection: close and end; a request in flight and new connections are served; exit after the quiet period', async (t) => {
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: 10_000 } });
  const router = b.router;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await get(agent, b.port, '/one');
  assert.equal(first.pod, 'origin-pod');
  assert.equal(first.connection, 'keep-alive');
  assert.equal(await healthz(router.healthPort), 200);

  // A slow request is in flight when the drain starts.
  const slowAgent = new http.Agent({ keepAlive: true });
  t.after(() => slowAgent.destroy());
  // (If its bytes reach the router only after the drain began, it is a request of a new connection: held for just the same.)
  const slow = get(slowAgent, b.port, `/delay/${QUIET * 3}`);
  const t0 = performance.now();
  let drained = 0;
  const draining = router.drain().then(() => (drained = performance.now()));
  assert.equal(await healthz(router.healthPort), 503, 'unready at once');

  // The kept-alive connection is still served; its answer tells the client to leave.
  const second = await get(agent, b.port, '/two');
  assert.equal(second.status, 200);
  assert.equal(second.pod, 'origin-pod');
  assert.equal(second.socket, first.socket, 'the same connection carried it');
  assert.equal(second.connection, 'close');
  if (!second.socket.destroyed) await new Promise((resolve) => second.socket.once('close', resolve));
  // A new connection during the drain is served too.
  const third = await get(agent, b.port, '/three');
  assert.equal(third.status, 200);
  assert.notEqual(third.socket, first.socket);
  assert.equal(third.connection, 'close');
  const lastConnection = performance.now();

  const slowAnswer = await slow;
  assert.equal(slowAnswer.status, 200, 'the request in flight completed');
  assert.equal(slowAnswer.connection, 'close');
  await draining;
  assert.ok(drained - lastConnection >= QUIET - 20, `exit ${Math.round(drained - lastConnection)} ms after the last new connection (quiet ${QUIET} ms)`);
  assert.ok(drained >= t0 + QUIET * 3 - 20, 'not before the slow request was answered');
  assert.ok(b.logs.some((l) => /drained in \d+ ms: [12] connection\(s\) accepted while draining/.test(l)), b.logs.join('\n'));
});

test('an idle keep-alive connection is ended at the exit; the deadline ends a drain that never goes quiet', async (t) => {
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: QUIET * 4 } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const idle = await get(agent, b.port, '/idle');
  const closed = new Promise((resolve) => idle.socket.once('close', resolve));
  // A client that opens a new connection every 50 ms keeps the router from going quiet.
  let stop = false;
  let served = 0;
  const pester = (async () => {
    while (!stop) {
      const r = await get(new http.Agent({ keepAlive: false }), b.port, '/again');
      assert.equal(r.status, 200);
      served++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const t0 = performance.now();
  await b.router.drain();
  const took = performance.now() - t0;
  stop = true;
  await pester;
  await closed;
  assert.ok(took >= QUIET * 4 - 20 && took < QUIET * 4 + 1000, `ended by the deadline after ${Math.round(took)} ms`);
  assert.ok(served > 3, `${served} requests served while draining`);
});

test('gRPC: one channel across the drain — GOAWAY moves it to a new connection, no call fails, a stream in flight completes and holds the exit', async (t) => {
  const origin = await grpcServer('origin-grpc');
  t.after(() => origin.close());
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: 10_000 } }, origin.port);
  const client = grpcClient(b.port);
  t.after(() => client.close());
  const unary = () => new Promise<Reply>((resolve, reject) => {
    client.Who({ text: 'hi', n: 0 }, new grpc.Metadata(), (err, r) => (err ? reject(err) : resolve(r)));
  });
  assert.equal((await unary()).pod, 'origin-grpc');
  // A bidi stream is open when the drain starts.
  const chat = client.Chat(new grpc.Metadata());
  const replies: Reply[] = [];
  chat.on('data', (r: Reply) => replies.push(r));
  const chatEnded = new Promise<grpc.StatusObject>((resolve) => chat.on('status', resolve));
  chat.write({ text: 'before', n: 0 });
  await new Promise<void>((resolve) => chat.once('data', () => resolve()));

  let drained = false;
  const draining = b.router.drain().then(() => (drained = true));
  // Calls keep going on the same channel: none fails.
  let failed = 0;
  let ok = 0;
  for (let i = 0; i < 50; i++) {
    try {
      assert.equal((await unary()).pod, 'origin-grpc');
      ok++;
    } catch {
      failed++;
    }
  }
  assert.equal(failed, 0);
  assert.ok(b.logs.some((l) => /draining: unready/.test(l)));
  // The stream in flight still works and holds the exit.
  chat.write({ text: 'during', n: 0 });
  await new Promise<void>((resolve) => chat.once('data', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, QUIET * 2));
  assert.equal(drained, false, 'an open stream holds the exit');
  chat.end();
  const status = await chatEnded;
  assert.equal(status.code, grpc.status.OK);
  assert.deepEqual(replies.map((r) => r.text), ['before', 'during']);
  await draining;
  // The calls after GOAWAY went over a connection opened during the drain.
  const line = b.logs.find((l) => /^drained in/.test(l)) ?? '';
  assert.match(line, /: [1-9]\d* connection\(s\) accepted while draining/, b.logs.join('\n'));
  assert.equal(ok, 50);
});

test('a router idle for long still waits the quiet period after the drain begins, and serves a late connection', async (t) => {
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: 10_000 } });
  const agent = new http.Agent({ keepAlive: false });
  t.after(() => agent.destroy());
  assert.equal((await get(agent, b.port, '/early')).status, 200);
  // Idle for longer than the quiet period (a stated hold): the quiet measured before the drain must not count.
  await new Promise((resolve) => setTimeout(resolve, QUIET * 2));
  const t0 = performance.now();
  let done = 0;
  const draining = b.router.drain().then(() => (done = performance.now()));
  // A connection the service proxy still sent here, after the endpoint change.
  const late = await get(agent, b.port, '/late');
  assert.equal(late.status, 200);
  assert.equal(late.connection, 'close');
  await draining;
  assert.ok(done - t0 >= QUIET - 20, `drained ${Math.round(done - t0)} ms after it began (quiet ${QUIET} ms)`);
});

test('HTTP/2 sessions that arrive while draining get GOAWAY at the exit, which waits for their clients to close them (at most END_GRACE_MS)', async (t) => {
  const origin = await grpcServer('origin-grpc');
  t.after(() => origin.close());
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: 10_000 } }, origin.port);
  const draining = b.router.drain().then(() => performance.now());
  // Two clients the service proxy still sent here after the endpoint change; each has a stream served.
  const client = () => {
    const c = http2.connect(`http://127.0.0.1:${b.port}`);
    c.on('error', () => undefined);
    const goaway = new Promise<number>((resolve) => c.once('goaway', () => resolve(performance.now())));
    const closed = new Promise<number>((resolve) => c.once('close', () => resolve(performance.now())));
    return { c, goaway, closed };
  };
  const served = async (c: http2.ClientHttp2Session) => {
    const req = c.request({ ':method': 'POST', ':path': '/kt.echo.Echo/Who', 'content-type': 'application/grpc' });
    req.end();
    req.resume();
    await new Promise((resolve) => req.on('close', resolve));
  };
  const polite = client();
  const deaf = client();
  await served(polite.c);
  await served(deaf.c);
  // The polite one leaves a while after its GOAWAY (a stated hold: a client still finishing); the deaf one never does.
  const goawayAt = await polite.goaway;
  await deaf.goaway;
  let politeLeft = false;
  let serverClosedFirst = false;
  void polite.closed.then(() => (serverClosedFirst = !politeLeft));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(serverClosedFirst, false, 'the router closed the connection before its client did');
  politeLeft = true;
  const leftAt = performance.now();
  polite.c.close();
  const drainedAt = await draining;
  assert.ok(drainedAt >= leftAt, 'the exit came before the client closed its connection');
  // The deaf one was closed by the router once its grace ran out, and the exit waited for that.
  const deafClosedAt = await deaf.closed;
  assert.ok(deafClosedAt - goawayAt >= END_GRACE_MS - 50, `closed ${Math.round(deafClosedAt - goawayAt)} ms after GOAWAY`);
  assert.ok(drainedAt - goawayAt < END_GRACE_MS + 1000, `the exit ${Math.round(drainedAt - goawayAt)} ms after GOAWAY`);
});

test('while it drains the router takes no new route (refused: leaving); the routes it has serve until the exit', async (t) => {
  const b = await bed(t, { drain: { quietMs: QUIET, maxMs: 10_000 } });
  await b.dev('alice', { headers: tag('alice') });
  const draining = b.router.drain();
  await assert.rejects(b.dev('bob', { headers: tag('bob') }), (err: unknown) => err instanceof RouteRefusedError && err.code === 'leaving');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'bob' }), 'origin-pod');
  await draining;
});
