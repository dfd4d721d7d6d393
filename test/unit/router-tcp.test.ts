// Exchange (every connection, any protocol), fallback when the developer's
// connection goes, conflicts, regex and multi-header rules, route cancel,
// and deny by default on a shadow.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { PROTOCOL_VERSION } from '../../contract/protocol.ts';
import { requestRoute, RouteRefusedError } from '../../plugin/src/tunnel/index.ts';
import { bed, SERVICE_PORT, tag, whoAnswers } from './router-fixtures.ts';
import { freePort, sshServer, tcpServer } from './ssh-fixtures.ts';

/** A TCP server that answers every chunk with `${name}:${chunk}`; greets first when asked (server-first protocols). */
const named = (name: string, greet = false) =>
  tcpServer((sock) => {
    if (greet) sock.write(`${name} hello\n`);
    sock.on('data', (d: Buffer) => sock.write(Buffer.concat([Buffer.from(`${name}:`), d])));
  });

/** Sends bytes on a new connection to port and returns the first answer. */
function ask(port: number, bytes: Buffer | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('data', (d: Buffer) => {
      resolve(d.toString('latin1'));
      sock.destroy();
    });
    sock.once('error', reject);
    sock.once('close', () => reject(new Error('closed without an answer')));
    if (bytes) sock.write(bytes);
  });
}

const TLS_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);

test('exchange: non-HTTP connections go to the laptop while the route lives, to origin at once after', async (t) => {
  const origin = await named('origin');
  const laptop = await named('laptop');
  t.after(async () => {
    await origin.close();
    await laptop.close();
  });
  const b = await bed(t, {}, origin.port);
  assert.equal(await ask(b.port, TLS_HELLO), `origin:${TLS_HELLO.toString('latin1')}`);
  const dev = await b.dev('erin', { kind: 'exchange' }, { local: laptop.port });
  assert.equal(await ask(b.port, TLS_HELLO), `laptop:${TLS_HELLO.toString('latin1')}`);
  const pgSslRequest = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);
  assert.equal(await ask(b.port, pgSslRequest), `laptop:${pgSslRequest.toString('latin1')}`);
  // As when the plugin is killed: the kernel closes its socket, no SSH goodbye.
  const started = process.hrtime.bigint();
  dev.socket.destroy();
  let answer = '';
  let tries = 0;
  while (!answer.startsWith('origin:') && tries++ < 10_000) answer = await ask(b.port, TLS_HELLO);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(answer.startsWith('origin:'), 'origin serves again');
  process.stderr.write(`router exchange fallback: ${ms.toFixed(1)} ms from destroying the developer's SSH socket to the first connection served by origin (${tries} tries)\n`);
  assert.ok(ms < 1000, `fallback took ${ms} ms`);
});

test('exchange: a client that says nothing first (a server-first protocol) reaches the laptop after the sniff timeout', async (t) => {
  const laptop = await named('laptop', true);
  t.after(() => laptop.close());
  const b = await bed(t, { sniffTimeoutMs: 50 });
  await b.dev('erin', { kind: 'exchange' }, { local: laptop.port });
  assert.equal(await ask(b.port, undefined), 'laptop hello\n');
});

test('exchange takes untagged HTTP; mesh routes come first; after the exchange goes, origin', async (t) => {
  const b = await bed(t);
  const erin = await b.dev('erin', { kind: 'exchange' });
  await b.dev('alice', { headers: tag('alice') });
  assert.equal(await whoAnswers(b.port), 'erin');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  await erin.route.close();
  assert.deepEqual(b.router.routes().map((r) => r.owner), ['alice@laptop'], 'the cancel removed the exchange');
  assert.equal(await whoAnswers(b.port), 'origin-pod');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
});

test('conflicts are refused with the holder named; the slot frees when the holder goes', async (t) => {
  const b = await bed(t);
  const alice = await b.dev('alice', { headers: tag('alice') });
  await b.dev('erin', { kind: 'exchange' });
  await assert.rejects(b.dev('mallory', { headers: [{ name: 'X-KT-Version', value: 'alice' }] }), (err: unknown) => {
    assert.ok(err instanceof RouteRefusedError);
    assert.match(err.refused, /already routed to alice@laptop \(session s-alice\)/);
    return true;
  });
  await assert.rejects(b.dev('bob', { kind: 'exchange' }), /already exchanged by erin@laptop/);
  await assert.rejects(b.dev('bob', { servicePort: 9999 }), /serves port\(s\) 80, not 9999/);
  await assert.rejects(b.dev('bob', { headers: [{ name: 'x', regex: '(' }] }), /not an RE2 regular expression/);
  await assert.rejects(b.dev('bob', { protocol: PROTOCOL_VERSION + 1 }), /protocol/);
  await alice.tunnel.close();
  // The router drops alice's route when it sees her connection close; the
  // same request is then accepted. Retry until then (bounded, no sleep).
  let ok = false;
  for (let i = 0; i < 200 && !ok; i++) {
    ok = await b.dev(`bob${i}`, { headers: tag('alice') }).then(
      () => true,
      (err: Error) => {
        assert.match(err.message, /already routed to alice/);
        return false;
      },
    );
  }
  assert.ok(ok);
});

test('regex routes and several header conditions, all required', async (t) => {
  const b = await bed(t);
  await b.dev('rex', { headers: [{ name: 'x-kt-version', regex: 'feat-[0-9]+' }] });
  await b.dev('duo', { headers: [{ name: 'x-kt-version', value: 'duo' }, { name: 'x-tenant', value: 'eu' }] });
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'feat-12' }), 'rex');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'feat-x' }), 'origin-pod');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'xfeat-1' }), 'origin-pod', 'anchored');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'duo', 'x-tenant': 'eu' }), 'duo');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'duo' }), 'origin-pod', 'one condition is not enough');
  assert.equal(await whoAnswers(b.port, { 'x-tenant': 'eu' }), 'origin-pod');
});

test('a laptop whose local port is closed: the request goes to origin, not an error', async (t) => {
  const b = await bed(t);
  await b.dev('ghost', { headers: tag('ghost') }, { local: await freePort() });
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'ghost' }), 'origin-pod');
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'ghost' }), 'origin-pod');
});

test('a shadow (no route handler) refuses kt-route: deny by default', async (t) => {
  const s = await sshServer();
  const tunnel = await s.tunnel();
  t.after(async () => {
    await tunnel.close();
    await s.server.close();
  });
  const req = { protocol: PROTOCOL_VERSION, kind: 'mesh' as const, servicePort: SERVICE_PORT, headers: tag('a'), owner: 'a', session: 's' };
  await assert.rejects(requestRoute(tunnel, req, { host: '127.0.0.1', port: 1 }), /refused/);
  assert.equal(tunnel.closed, false);
});
