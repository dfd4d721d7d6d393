// The link emulator's delay line (net/delay.ts through net/splice.ts), on
// real sockets: bytes arrive whole and in order, half-closes pass through
// after the bytes before them, and nothing is released before its delay.
// (Its rate and round trip against the settings are measured in
// test/bench/link.bench.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { splice } from './net/splice.ts';

const DELAY_MS = 40;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** client → relay (delaying each way) → server; returns the client socket and the server's. */
async function through(delayMs: number): Promise<{ client: Socket; far: Socket; close: () => void }> {
  const farServer = createServer({ allowHalfOpen: true });
  const farPort = await listen(farServer);
  const relay = createServer({ allowHalfOpen: true }, (s) => splice(s, connect({ host: '127.0.0.1', port: farPort }), { delayMs }));
  const relayPort = await listen(relay);
  const farConn = once(farServer, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: relayPort, allowHalfOpen: true });
  const [far] = await farConn;
  return { client, far, close: () => { client.destroy(); far.destroy(); relay.close(); farServer.close(); } };
}

test('the delay line keeps every byte, in order, both ways, and passes each FIN after them', async () => {
  const { client, far, close } = await through(5);
  try {
    const up = randomBytes(3 * 1024 * 1024 + 17);
    const down = randomBytes(2 * 1024 * 1024 + 5);
    const gotUp: Buffer[] = [];
    const gotDown: Buffer[] = [];
    far.on('data', (b: Buffer) => gotUp.push(b));
    client.on('data', (b: Buffer) => gotDown.push(b));
    const farEnded = once(far, 'end');
    const clientEnded = once(client, 'end');
    client.end(up);
    await farEnded;
    assert.ok(Buffer.concat(gotUp).equals(up), 'upload arrives whole and in order before its FIN');
    // Half-close: the other direction still flows after the client's FIN.
    far.end(down);
    await clientEnded;
    assert.ok(Buffer.concat(gotDown).equals(down), 'download arrives whole after the upload ended');
  } finally {
    close();
  }
});

test('nothing is released before its delay: a one-byte round trip takes at least two delays', async () => {
  const { client, far, close } = await through(DELAY_MS);
  try {
    far.on('data', (b: Buffer) => far.write(b));
    const rtts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      client.write('x');
      await once(client, 'data');
      rtts.push(performance.now() - t0);
    }
    // A lower bound only: a loaded machine makes a round trip longer, never shorter.
    for (const rtt of rtts) assert.ok(rtt >= 2 * DELAY_MS - 1, `round trip ${rtt.toFixed(1)} ms < 2 × ${DELAY_MS} ms`);
  } finally {
    close();
  }
});
