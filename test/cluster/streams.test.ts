// pods/portforward and pods/exec over WebSocket channels, driven by
// @kubernetes/client-node as the plugin drives them, plus raw clients for
// the protocol details and garbage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import WebSocket from 'ws';
import { KubeConfig, PortForward, Exec, type V1Status } from '@kubernetes/client-node';
import type { ExecOptions } from './types.ts';
import { startHarness, pattern, sha256, ECHO_PORT, HTTP_PORT, REFUSED_PORT, SINK_PORT, type Harness } from './streams-harness.ts';
import { decodeChannelMessage, encodeChannelMessage, negotiateChannelProtocol } from './node/streams/wsstream.ts';

let h: Harness;
let kc: KubeConfig;

before(async () => {
  h = await startHarness({ exec: true });
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: h.url, skipTLSVerify: true }],
    users: [{ name: 'test' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test', namespace: 'default' }],
    currentContext: 'test',
  });
});

after(async () => {
  await h.close();
});

/** A local listener that port-forwards every accepted connection through client-node, one WebSocket each. */
async function localForward(podPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const pf = new PortForward(kc);
  const sockets = new Set<net.Socket>();
  const server = net.createServer(async (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    try {
      const ws = (await pf.portForward('default', 'pod-x', [podPort], socket, null, socket)) as WebSocket;
      ws.on('close', () => socket.end());
      socket.on('close', () => ws.close());
    } catch {
      socket.destroy();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function withForward(podPort: number, fn: (port: number) => Promise<void>): Promise<void> {
  const fwd = await localForward(podPort);
  try {
    await fn(fwd.port);
  } finally {
    await fwd.close();
  }
  await h.upstreamsClosed();
}

/** Sends `data` on a fresh connection and collects what comes back until the peer ends. */
async function roundTrip(port: number, data: Buffer, expect: number): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let got = 0;
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    got += c.length;
    if (got >= expect) socket.end();
  });
  socket.write(data);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

test('negotiates like the kubelet: v4 for port-forward even when v5 is offered first', () => {
  assert.equal(negotiateChannelProtocol(['v5.channel.k8s.io', 'v4.channel.k8s.io'], 'portforward')?.name, 'v4.channel.k8s.io');
  assert.equal(negotiateChannelProtocol(['v5.channel.k8s.io'], 'portforward')?.name, 'v5.channel.k8s.io');
  assert.equal(negotiateChannelProtocol(['v5.channel.k8s.io', 'v4.channel.k8s.io'], 'exec')?.name, 'v5.channel.k8s.io');
  assert.equal(negotiateChannelProtocol(['nonsense'], 'exec'), null);
  const b64 = negotiateChannelProtocol(['v4.base64.channel.k8s.io'], 'portforward')!;
  const msg = encodeChannelMessage(b64, 2, Buffer.from('hi'));
  assert.equal(msg, '2aGk=');
  assert.deepEqual(decodeChannelMessage(b64, Buffer.from(msg as string), false), { channel: 2, data: Buffer.from('hi') });
});

test('client-node port-forward: port prefix on both channels, then data', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  const messages: Buffer[] = [];
  ws.on('message', (m: Buffer) => messages.push(m));
  await once(ws, 'open');
  assert.equal(ws.protocol, 'v4.channel.k8s.io');
  ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping')]));
  while (messages.length < 3) await once(ws, 'message');
  const port = Buffer.alloc(2);
  port.writeUInt16LE(ECHO_PORT);
  assert.deepEqual(messages[0], Buffer.concat([Buffer.from([0]), port]));
  assert.deepEqual(messages[1], Buffer.concat([Buffer.from([1]), port]));
  assert.deepEqual(messages[2], Buffer.concat([Buffer.from([0]), Buffer.from('ping')]));
  ws.close();
  await once(ws, 'close');
  await h.upstreamsClosed();
});

test('client-node port-forward: 40 concurrent connections keep their data apart', async () => {
  await withForward(ECHO_PORT, async (port) => {
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const data = pattern(32 * 1024 + i * 997, i + 1);
        const back = await roundTrip(port, data, data.length);
        return sha256(back) === sha256(data);
      }),
    );
    assert.deepEqual(results, results.map(() => true));
  });
});

test('client-node port-forward: 8 MiB each way intact (sha256)', async () => {
  await withForward(ECHO_PORT, async (port) => {
    const data = pattern(8 * 1024 * 1024, 42);
    const back = await roundTrip(port, data, data.length);
    assert.equal(back.length, data.length);
    assert.equal(sha256(back), sha256(data));
  });
});

test('client-node port-forward: an HTTP request through the tunnel', async () => {
  await withForward(HTTP_PORT, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/hello`, { headers: { connection: 'close' } });
    assert.equal(await res.text(), 'hello from the pod\n');
  });
});

test('refused pod port: the error channel says so, then the WebSocket closes', async () => {
  const pf = new PortForward(kc);
  const errors: Buffer[] = [];
  const err = new Writable({
    write(chunk: Buffer, _e, cb) {
      errors.push(chunk);
      cb();
    },
  });
  const input = new PassThrough();
  const ws = (await pf.portForward('default', 'pod-x', [REFUSED_PORT], new PassThrough(), err, input)) as WebSocket;
  await once(ws, 'close');
  const text = Buffer.concat(errors).toString();
  assert.match(text, /^error forwarding port 1 to pod pod-x, uid : .*ECONNREFUSED/);
});

test('v5 close signal half-closes the pod connection, the answer still arrives', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${SINK_PORT}`, ['v5.channel.k8s.io']);
  const data: Buffer[] = [];
  let seen = 0;
  ws.on('message', (m: Buffer) => {
    if (m[0] === 0 && seen++ > 0) data.push(m.subarray(1));
  });
  await once(ws, 'open');
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  ws.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(1000, 1)]));
  ws.send(Buffer.from([255, 0]));
  await once(ws, 'close');
  assert.equal(Buffer.concat(data).toString(), '1000\n');
});

test('closing the WebSocket closes the pod connection', async () => {
  const before = h.upstreamCount();
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, ['v4.channel.k8s.io']);
  let messages = 0;
  ws.on('message', () => messages++);
  await once(ws, 'open');
  ws.send(Buffer.from([0, 65]));
  while (messages < 3) await once(ws, 'message'); // two port frames, then the echo
  assert.equal(h.upstreamCount(), before + 1);
  assert.equal(h.openUpstreams(), 1);
  ws.close();
  await h.upstreamsClosed();
  assert.equal(h.openUpstreams(), 0);
});

test('garbage on the WebSocket does not take the server down', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, ['v4.channel.k8s.io']);
  const echoed: Buffer[] = [];
  ws.on('message', (m: Buffer) => {
    if (m[0] === 0 && m.length > 3) echoed.push(m.subarray(1));
  });
  await once(ws, 'open');
  ws.send('text where binary is expected');
  ws.send(Buffer.alloc(0));
  ws.send(Buffer.from([1, 2, 3])); // write to the error channel: ignored
  ws.send(Buffer.from([200, 1, 2])); // no such channel
  ws.send(Buffer.from([255, 77])); // close signal on v4 / bad channel
  ws.send(Buffer.concat([Buffer.from([6]), pattern(70000, 3)]));
  ws.send(Buffer.from('\0alive'));
  while (Buffer.concat(echoed).toString() !== 'alive') await once(ws, 'message');
  ws.terminate();
  // A raw socket that sends a broken frame (reserved opcode, RSV bits) right after the handshake:
  // the server answers with a close frame (0x88) instead of falling over.
  const raw = net.connect(h.port, '127.0.0.1');
  raw.on('error', () => {});
  raw.write(
    `GET /api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n',
  );
  raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02]));
  let got = Buffer.alloc(0);
  while (!got.subarray(got.indexOf('\r\n\r\n') + 4).includes(0x88)) {
    const [chunk] = (await once(raw, 'data')) as [Buffer];
    got = Buffer.concat([got, chunk]);
  }
  assert.match(got.toString('latin1'), /^HTTP\/1.1 101/);
  raw.destroy();
  // A handshake without a key is refused with an HTTP error, not a crash.
  const res = await fetch(`${h.url}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, { headers: { upgrade: 'h2c', connection: 'upgrade' } }).catch((e: Error) => e);
  assert.ok(res instanceof Error || res.status === 400);
  // The server still forwards.
  await withForward(ECHO_PORT, async (port) => {
    const back = await roundTrip(port, Buffer.from('still alive'), 11);
    assert.equal(back.toString(), 'still alive');
  });
});

test('an unsupported subprotocol gets a Status, not an upgrade', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, ['v9.nonsense']);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
  assert.equal(res.statusCode, 400);
  res.resume();
  ws.terminate();
});

async function execViaClientNode(command: string[], stdin: string | null, tty = false): Promise<{ stdout: string; stderr: string; status: V1Status }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const errOut: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => errOut.push(c));
  const input = stdin === null ? null : new PassThrough();
  const status = new Promise<V1Status>((resolve) => {
    void new Exec(kc).exec('default', 'pod-x', 'main', command, stdout, stderr, input, tty, (s) => resolve(s));
  });
  if (input) {
    input.end(stdin);
  }
  const s = await status;
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errOut).toString(), status: s };
}

test('client-node exec (v5): stdout, stderr, exit status', async () => {
  const ok = await execViaClientNode(['sh', '-c', 'echo hi; echo oops >&2'], null);
  assert.equal(ok.stdout, 'hi\n');
  assert.equal(ok.stderr, 'oops\n');
  assert.equal(ok.status.status, 'Success');
  const failed = await execViaClientNode(['sh', '-c', 'exit 3'], null);
  assert.equal(failed.status.status, 'Failure');
  assert.equal(failed.status.reason, 'NonZeroExitCode');
  assert.deepEqual(failed.status.details?.causes, [{ reason: 'ExitCode', message: '3' }]);
});

test('client-node exec (v5): stdin reaches the command and its end closes it', async () => {
  const r = await execViaClientNode(['cat'], 'through stdin\n');
  assert.equal(r.stdout, 'through stdin\n');
  assert.equal(r.status.status, 'Success');
});

test('exec of a command that cannot start reports a Failure status', async () => {
  const r = await execViaClientNode(['/nonexistent/binary'], null);
  assert.equal(r.status.status, 'Failure');
  assert.match(r.status.message ?? '', /ENOENT/);
});

/** Opens a raw WebSocket and records every message by channel. */
async function rawSocket(url: string, protocols: string[]): Promise<{ ws: WebSocket; messages: { channel: number; data: Buffer }[]; closed: Promise<void> }> {
  const ws = new WebSocket(url, protocols);
  const messages: { channel: number; data: Buffer }[] = [];
  const proto = negotiateChannelProtocol(protocols, 'portforward') ?? negotiateChannelProtocol(protocols, 'exec')!;
  ws.on('message', (m: Buffer, isBinary: boolean) => {
    const msg = decodeChannelMessage(proto, m, isBinary);
    if (msg) messages.push(msg);
  });
  const closed = once(ws, 'close').then(() => undefined);
  await once(ws, 'open');
  return { ws, messages, closed };
}

const channelText = (messages: { channel: number; data: Buffer }[], channel: number, skip = 0): string =>
  Buffer.concat(messages.filter((m) => m.channel === channel).slice(skip).map((m) => m.data)).toString();

test('several ports on one WebSocket: channel pairs 0/1 and 2/3, each prefixed with its port', async () => {
  const { ws, messages, closed } = await rawSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}&ports=${SINK_PORT}`, ['v4.channel.k8s.io']);
  ws.send(Buffer.from('\0to echo'));
  ws.send(Buffer.from('\x02to sink'));
  while (channelText(messages, 0, 1) !== 'to echo') await once(ws, 'message');
  const prefix = (port: number): string => Buffer.from([port & 0xff, port >> 8]).toString();
  assert.deepEqual(
    [0, 1, 2, 3].map((c) => messages.find((m) => m.channel === c)?.data.toString()),
    [prefix(ECHO_PORT), prefix(ECHO_PORT), prefix(SINK_PORT), prefix(SINK_PORT)],
  );
  ws.close();
  await closed;
  await h.upstreamsClosed();
  assert.equal(h.sinkTotals.at(-1), 'to sink'.length);
});

test('base64 channel protocol: text frames, ASCII channel digit', async () => {
  const { ws, messages, closed } = await rawSocket(`ws://127.0.0.1:${h.port}/api/v1/namespaces/default/pods/pod-x/portforward?ports=${ECHO_PORT}`, ['v4.base64.channel.k8s.io']);
  assert.equal(ws.protocol, 'v4.base64.channel.k8s.io');
  ws.send('0' + Buffer.from('base64 echo').toString('base64'));
  while (channelText(messages, 0, 1) !== 'base64 echo') await once(ws, 'message');
  ws.close();
  await closed;
  await h.upstreamsClosed();
});

test('exec with a TTY: resize messages reach the process, stderr is not a separate channel', async () => {
  const resizes: [number, number][] = [];
  let seen: ExecOptions | undefined;
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const tty = await startHarness({
    exec: async (_ns, _pod, opts) => {
      seen = opts;
      await gate;
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let exit!: (code: number) => void;
      const exited = new Promise<number>((r) => (exit = r));
      stdin.on('data', (c: Buffer) => {
        if (c.toString() === 'q') {
          stdout.end(`size ${JSON.stringify(resizes)}`);
          stderr.end();
          exit(0);
        }
      });
      return { stdin, stdout, stderr, exited, resize: (w, hgt) => resizes.push([w, hgt]), kill: () => exit(137) };
    },
  });
  try {
    const { ws, messages, closed } = await rawSocket(`ws://127.0.0.1:${tty.port}/api/v1/namespaces/default/pods/pod-x/exec?command=sh&stdin=true&stdout=true&tty=true`, ['v5.channel.k8s.io']);
    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: 120, Height: 40 }))]));
    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{not json')]));
    ws.send(Buffer.from('\0q'));
    // The process starts only after the server has handled all of the above
    // (it answers the ping after the messages before it): the size and the
    // input wait for it rather than getting lost.
    ws.ping();
    await once(ws, 'pong');
    openGate();
    await closed;
    assert.deepEqual(seen, { command: ['sh'], stdin: true, tty: true, container: undefined });
    assert.equal(channelText(messages, 1), 'size [[120,40]]');
    assert.deepEqual(JSON.parse(channelText(messages, 3)), { metadata: {}, status: 'Success' });
    assert.equal(messages.filter((m) => m.channel === 2).length, 0);
  } finally {
    await tty.close();
  }
});
