// The shadow binds its SSH port before the SSH server's modules load
// (proxy-image/src/early-listen.ts): a client that connects in between is
// held, not refused, and logs in once the server takes the listener over.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { bindEarly } from '../../proxy-image/src/early-listen.ts';
import { startSshServer } from '../../proxy-image/src/ssh/index.ts';
import { makeSessionKey, openTunnel } from '../../plugin/src/tunnel/index.ts';
import { closeAfter, freePort } from './ssh-fixtures.ts';

test('a port nothing listens on yet refuses the client: what the early bind is for', async () => {
  const port = await freePort();
  const sock = net.connect(port, '127.0.0.1');
  const [err] = await once(sock, 'error') as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('a client that connects before the SSH server starts is held, then served: it logs in and says hello', async (t) => {
  const early = await bindEarly(0);
  const port = (early.server.address() as net.AddressInfo).port;
  const key = makeSessionKey();
  const accepted = once(early.server, 'connection');
  const first = openTunnel({ stream: net.connect(port, '127.0.0.1'), privateKey: key.privateKey });
  await accepted;
  // Only now the server: it takes the listener over, with the socket it holds.
  const server = await startSshServer({ port, listener: early, authorizedKeys: [key.publicKey], debug: () => undefined });
  closeAfter(t, server);
  assert.equal(server.port, port);
  const tunnel = await first;
  closeAfter(t, tunnel);
  assert.equal((await tunnel.hello()).role, 'shadow');
  // And every connection after the hand-over.
  const second = await openTunnel({ stream: net.connect(port, '127.0.0.1'), privateKey: key.privateKey });
  closeAfter(t, second);
  assert.equal((await second.hello()).role, 'shadow');
});

test('a held client that gave up before the hand-over does not reach the SSH server', async (t) => {
  const early = await bindEarly(0);
  const port = (early.server.address() as net.AddressInfo).port;
  const accepted = once(early.server, 'connection');
  const gone = net.connect(port, '127.0.0.1');
  const [held] = await accepted as [net.Socket];
  gone.destroy();
  await once(held, 'close');
  const served: net.Socket[] = [];
  early.handOver((sock) => served.push(sock));
  closeAfter(t, { close: () => new Promise<void>((resolve) => early.server.close(() => resolve())) });
  assert.equal(served.length, 0);
});
