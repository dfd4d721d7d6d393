// Our SSH client (plugin/src/tunnel) against our SSH server (proxy-image/src/ssh).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { PROTOCOL_VERSION, SSH_REQUESTS, VERSION } from '../../contract/protocol.ts';
import { encodeHello } from '../../contract/ssh/hello.ts';
import { clientGlobalRequest } from '../../contract/ssh/internals.ts';
import { openTunnel } from '../../plugin/src/tunnel/index.ts';
import { closeAfter, echoServer, exchange, freePort, freezableRelay, readAll, sha256, sshServer, swapServer, tcpServer } from './ssh-fixtures.ts';

test('direct-tcpip reaches a TCP server the proxy can reach', async (t) => {
  const s = await sshServer();
  const echo = await echoServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server, echo);
  const payload = randomBytes(100_000);
  const back = await exchange(await tunnel.connect('127.0.0.1', echo.port), payload);
  assert.equal(sha256(back), sha256(payload));
  assert.equal(s.server.clients(), 1);
});

test('direct-tcpip to a closed port fails the channel open, with the target named', async (t) => {
  const s = await sshServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server);
  const port = await freePort();
  await assert.rejects(tunnel.connect('127.0.0.1', port), new RegExp(`could not connect to 127\\.0\\.0\\.1:${port}: ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
  assert.match(await s.waitLog(/direct-tcpip .* failed/), /ECONNREFUSED/);
  // The connection survives a failed channel.
  assert.equal(tunnel.closed, false);
});

test('hello returns the proxy version, protocol and role', async (t) => {
  const s = await sshServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server);
  assert.deepEqual(await tunnel.hello(), { version: VERSION, protocol: PROTOCOL_VERSION, role: 'shadow' });
});

test('a client speaking another protocol version gets the answer, then is disconnected', async (t) => {
  const s = await sshServer();
  const { Client } = (await import('ssh2')).default;
  const client = new Client();
  const ready = once(client, 'ready');
  client.connect({ sock: net.connect(s.server.port, '127.0.0.1'), username: 'kt', privateKey: s.key.privateKey });
  await ready;
  t.after(async () => {
    client.end();
    await s.server.close();
  });
  const closed = once(client, 'close');
  const reply = await clientGlobalRequest(client, SSH_REQUESTS.hello, encodeHello({ version: 'x', protocol: PROTOCOL_VERSION + 1 }));
  assert.ok(reply && reply.toString().includes(`"protocol":${PROTOCOL_VERSION}`));
  await closed;
});

test('forwardIn to a local port: the proxy listens, each connection comes back through the tunnel', async (t) => {
  const s = await sshServer();
  const echo = await echoServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server, echo);
  const fwd = await tunnel.forwardIn('127.0.0.1', 0, { host: '127.0.0.1', port: echo.port });
  assert.ok(fwd.port > 0);
  const payload = randomBytes(50_000);
  const back = await exchange(net.connect(fwd.port, '127.0.0.1'), payload);
  assert.equal(sha256(back), sha256(payload));

  await fwd.close();
  const refused = net.connect(fwd.port, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('forwardIn to a function gets the stream and the connection details', async (t) => {
  const s = await sshServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server);
  const seen: Array<{ destPort: number }> = [];
  const fwd = await tunnel.forwardIn('127.0.0.1', 0, (stream, info) => {
    seen.push(info);
    stream.end('from the laptop');
    stream.resume();
  });
  const sock = net.connect(fwd.port, '127.0.0.1');
  sock.end();
  assert.equal((await readAll(sock)).toString(), 'from the laptop');
  assert.equal(seen[0].destPort, fwd.port);
});

test('forwards live exactly as long as the connection', async (t) => {
  const s = await sshServer();
  const echo = await echoServer();
  closeAfter(t, s.server, echo);
  const tunnel = await s.tunnel();
  const fwd = await tunnel.forwardIn('127.0.0.1', 0, { host: '127.0.0.1', port: echo.port });
  await tunnel.close();
  await s.waitLog(new RegExp(`tcpip-forward 127\\.0\\.0\\.1:${fwd.port} closed with the connection`));
  const refused = net.connect(fwd.port, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(s.server.clients(), 0);
});

test('forwardIn on a port already taken is refused', async (t) => {
  const s = await sshServer();
  const taken = await tcpServer(() => {});
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server, taken);
  await assert.rejects(tunnel.forwardIn('127.0.0.1', taken.port, { host: '127.0.0.1', port: 1 }), /refused to listen/);
  // Replies stay in order after a failure: a second request still gets its own answer.
  const ok = await tunnel.forwardIn('127.0.0.1', 0, { host: '127.0.0.1', port: 1 });
  assert.ok(ok.port > 0);
});

test('listen: a local port whose connections go through the tunnel (ssh -L)', async (t) => {
  const s = await sshServer();
  const echo = await echoServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server, echo);
  const local = await tunnel.listen(0, '127.0.0.1', echo.port);
  const payload = randomBytes(64_000);
  assert.equal(sha256(await exchange(net.connect(local.port, '127.0.0.1'), payload)), sha256(payload));
  await local.close();
  const refused = net.connect(local.port, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('listen to an unreachable target resets the local connection', async (t) => {
  const s = await sshServer();
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server);
  const local = await tunnel.listen(0, '127.0.0.1', await freePort());
  const sock = net.connect(local.port, '127.0.0.1');
  const [err] = (await once(sock, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
});

test('64 channels at once, 2 MiB each way, half-closing on their own schedule: every byte arrives intact', async (t) => {
  const N = 64;
  const BYTES = 2 * 1024 * 1024;
  const s = await sshServer();
  const swap = await swapServer(BYTES);
  const tunnel = await s.tunnel();
  closeAfter(t, tunnel, s.server, swap);
  const client = await Promise.all(
    Array.from({ length: N }, async () => {
      const mine = randomBytes(BYTES);
      const ch: Duplex = await tunnel.connect('127.0.0.1', swap.port);
      const theirs = await exchange(ch, mine);
      assert.equal(theirs.length, BYTES);
      return `${sha256(mine)}/${sha256(theirs)}`;
    }),
  );
  // Each server record is "what it received/what it sent": the mirror of the client's.
  const server = await swap.settled(N);
  assert.equal(server.length, N);
  assert.deepEqual([...server].sort(), [...client].sort());
});

test('the server notices a client that stopped answering, within a few keepalive intervals', async (t) => {
  const s = await sshServer({ keepaliveMs: 100 });
  const relay = await freezableRelay(s.server.port);
  const tunnel = await openTunnel({ stream: net.connect(relay.port, '127.0.0.1'), privateKey: s.key.privateKey, keepaliveMs: 60_000 });
  closeAfter(t, tunnel, relay, s.server);
  assert.equal(s.server.clients(), 1);
  relay.freeze();
  await s.waitLog(/c1 error: Keepalive timeout/);
  await s.waitLog(/c1 closed \(0 client/);
  assert.equal(s.server.clients(), 0);
});

test('the client notices a proxy that stopped answering, and says so when the tunnel closes', async (t) => {
  const s = await sshServer({ keepaliveMs: 60_000 });
  const relay = await freezableRelay(s.server.port);
  const tunnel = await openTunnel({ stream: net.connect(relay.port, '127.0.0.1'), privateKey: s.key.privateKey, keepaliveMs: 100 });
  closeAfter(t, tunnel, relay, s.server);
  const closed = once(tunnel, 'close') as Promise<[Error | undefined]>;
  relay.freeze();
  const [err] = await closed;
  // Said with how long it was quiet: at least the 3 intervals it waits.
  const quiet = /no answer from the proxy for (\d+\.\d) s/.exec(String(err?.message));
  assert.ok(quiet && Number(quiet[1]) >= 0.3, String(err?.message));
  assert.equal(tunnel.closed, true);
  await assert.rejects(tunnel.connect('127.0.0.1', 1), /tunnel is closed/);
});

test('a socket that never logs in is dropped after the login grace time', async (t) => {
  const s = await sshServer({ loginGraceMs: 100 });
  t.after(() => s.server.close());
  const sock = net.connect(s.server.port, '127.0.0.1');
  sock.resume();
  await once(sock, 'close');
  assert.match(await s.waitLog(/did not log in within 100 ms/), /did not log in/);
});

test('idle: onIdle fires once no client has been connected for idleExitMs, and not while one is', async (t) => {
  const events: string[] = [];
  let idled!: () => void;
  const idle = new Promise<void>((resolve) => (idled = resolve));
  const s = await sshServer({
    idleExitMs: 1500,
    onIdle: () => {
      events.push('idle');
      idled();
    },
  });
  t.after(() => s.server.close());
  const tunnel = await s.tunnel();
  events.push('connected');
  await tunnel.close();
  await s.waitLog(/closed \(0 client/);
  events.push('disconnected');
  await idle;
  assert.deepEqual(events, ['connected', 'disconnected', 'idle']);
});
