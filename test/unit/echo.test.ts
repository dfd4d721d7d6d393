// The demo app on a real socket: HTTP/1.1 keep-alive and 100-continue,
// WebSocket, HTTP/2 by prior knowledge and by the h2c Upgrade, SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startEcho, type EchoServer } from '../fixtures/echo/app.ts';

/** Reads from a raw socket until `done(buffer)` says the answer is complete. */
function readUntil(socket: net.Socket, done: (b: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (done(buf)) {
        socket.off('data', onData);
        socket.off('error', reject);
        socket.off('end', onEnd);
        resolve(buf);
      }
    };
    const onEnd = (): void => reject(new Error(`connection ended after ${JSON.stringify(buf.toString('latin1'))}`));
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('end', onEnd);
  });
}

/** One HTTP/1.1 response with Content-Length, complete. */
function fullResponse(b: Buffer): boolean {
  const s = b.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const len = /content-length: (\d+)/i.exec(s.slice(0, end));
  return len !== null && b.length >= end + 4 + Number(len[1]);
}

function bodyJson(b: Buffer): Record<string, unknown> {
  const s = b.toString('latin1');
  return JSON.parse(s.slice(s.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('echo demo app', () => {
  let server: EchoServer;
  const lines: string[] = [];

  before(async () => {
    server = await startEcho({ port: 0, host: '127.0.0.1', pod: 'echo-abc', namespace: 'shop', ip: '10.0.0.7', log: (l) => lines.push(l) });
  });
  after(async () => {
    await server.close();
  });

  test('answers two HTTP/1.1 requests on one keep-alive connection, naming the pod', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    const local = socket.localPort;
    socket.write('GET /one HTTP/1.1\r\nHost: x\r\nX-Kt-Version: alice\r\n\r\n');
    const first = await readUntil(socket, fullResponse);
    assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(first.toString('latin1'), /\r\nx-pod: echo-abc\r\n/i);
    assert.match(first.toString('latin1'), /\r\nconnection: keep-alive\r\n/i);
    const a = bodyJson(first);
    assert.equal(a.pod, 'echo-abc');
    assert.equal(a.namespace, 'shop');
    assert.equal(a.ip, '10.0.0.7');
    assert.equal(a.path, '/one');
    assert.equal(a.httpVersion, '1.1');
    assert.equal((a.headers as Record<string, string>)['x-kt-version'], 'alice');
    socket.write('GET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n');
    const second = await readUntil(socket, fullResponse);
    assert.match(second.toString('latin1'), /^HTTP\/1\.1 418 /);
    assert.equal(bodyJson(second).path, '/status/418');
    assert.equal(socket.localPort, local);
    socket.destroy();
    assert.ok(lines.some((l) => / GET \/one HTTP\/1\.1 200 /.test(l)), lines.join('\n'));
  });

  test('serves /healthz and /bytes/N', async () => {
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    const bytes = await fetch(`http://127.0.0.1:${server.port}/bytes/200000`);
    assert.equal(bytes.headers.get('x-pod'), 'echo-abc');
    assert.equal((await bytes.arrayBuffer()).byteLength, 200000);
  });

  test('streams /chunked/N as chunked transfer encoding and answers /delay/MS after the delay', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /chunked/3 HTTP/1.1\r\nHost: x\r\n\r\n');
    const raw = (await readUntil(socket, (b) => b.includes('\r\n0\r\n\r\n'))).toString('latin1');
    assert.match(raw, /\r\ntransfer-encoding: chunked\r\n/i);
    assert.equal(raw.match(/"chunk":\d/g)?.length, 3);
    socket.destroy();
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${server.port}/delay/50`);
    assert.equal(((await res.json()) as { path: string }).path, '/delay/50');
    assert.ok(Date.now() - started >= 45, 'answered after the delay');
  });

  test('sends 100 Continue before reading the body, then its length and sha256', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    const interim = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
    assert.equal(interim.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n');
    socket.write('hello');
    const res = await readUntil(socket, fullResponse);
    const body = bodyJson(res).body as { length: number; sha256: string };
    assert.equal(body.length, 5);
    assert.equal(body.sha256, createHash('sha256').update('hello').digest('hex'));
    socket.destroy();
  });

  test('echoes WebSocket messages with the pod name', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/chat`);
    await once(ws, 'open');
    ws.send('hi there');
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.deepEqual(JSON.parse(data.toString()), { pod: 'echo-abc', message: 'hi there' });
    ws.send('again');
    const [data2] = (await once(ws, 'message')) as [Buffer];
    assert.equal((JSON.parse(data2.toString()) as { message: string }).message, 'again');
    ws.close();
    await once(ws, 'close');
  });

  test('speaks HTTP/2 by prior knowledge, several streams on one session', async () => {
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
      const req = client.request({ ':path': path, ...headers });
      const [h] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      return { status: Number(h[':status']), body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> };
    };
    const [a, b] = await Promise.all([get('/a', { 'x-kt-version': 'bob' }), get('/status/503')]);
    assert.equal(a.status, 200);
    assert.equal(a.body.httpVersion, '2.0');
    assert.equal(a.body.pod, 'echo-abc');
    assert.equal((a.body.headers as Record<string, string>)['x-kt-version'], 'bob');
    assert.equal(b.status, 503);
    client.close();
    await once(client, 'close');
  });

  test('upgrades HTTP/1.1 to h2c and answers the upgraded request on stream 1', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    // Empty SETTINGS payload, base64url-encoded (RFC 7540 §3.2.1).
    socket.write('GET /upgraded HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\nX-Kt-Version: carol\r\n\r\n');
    const head = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
    const text = head.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    const rest = head.subarray(text.indexOf('\r\n\r\n') + 4);
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    // node:http2's client on the switched socket sends the preface; stream 1
    // already exists on the server, so its answer arrives as an unsolicited
    // stream we cannot request — we read it with a raw frame parser instead.
    const frames = await h2Stream1(socket);
    assert.equal(frames.status, 200);
    const body = JSON.parse(frames.body) as Record<string, unknown>;
    assert.equal(body.path, '/upgraded');
    assert.equal(body.httpVersion, '2.0');
    assert.equal((body.headers as Record<string, string>)['x-kt-version'], 'carol');
    assert.equal((body.headers as Record<string, string>).upgrade, undefined);
    socket.destroy();
  });

  test('works with curl --http2 (upgrade) and --http2-prior-knowledge', async () => {
    for (const flag of ['--http2', '--http2-prior-knowledge']) {
      const out = await run('curl', ['-sS', '-i', flag, `http://127.0.0.1:${server.port}/curl`]);
      assert.match(out, /^HTTP\/2 200/m, `${flag}: ${out}`);
      assert.match(out, /"httpVersion":"2\.0"/, `${flag}: ${out}`);
    }
  });
});

/** Sends the client preface on a switched socket and reads stream 1's answer from raw frames. */
async function h2Stream1(socket: net.Socket): Promise<{ status: number; body: string }> {
  const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), settings]));
  socket.resume();
  let status = 0;
  let body = '';
  let buf = Buffer.alloc(0);
  for await (const chunk of socket) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      const type = buf[3];
      const flags = buf[4];
      const stream = buf.readUInt32BE(5) & 0x7fffffff;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      if (type === 0x4 && (flags & 1) === 0) socket.write(Buffer.from([0, 0, 0, 0x4, 1, 0, 0, 0, 0]));
      if (stream !== 1) continue;
      // The server's first header is :status; node encodes 200 as the
      // static-table index 8 (0x88) and others as a literal.
      if (type === 0x1) status = payload[0] === 0x88 ? 200 : -1;
      if (type === 0x0) body += payload.toString();
      if ((type === 0x0 || type === 0x1) && flags & 1) return { status, body };
    }
  }
  throw new Error('connection closed before stream 1 ended');
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out}`))));
  });
}

describe('echo server process', () => {
  test('closes gracefully on SIGTERM and exits 0', async () => {
    const script = fileURLToPath(new URL('../fixtures/echo/server.ts', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', POD_NAME: 'echo-sig', POD_NAMESPACE: 'default', POD_IP: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on port (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`exited ${code} before listening: ${out}`)));
      });
      // A keep-alive connection that is idle must not hold the exit back.
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /before HTTP/1.1\r\nHost: x\r\n\r\n');
      await readUntil(socket, fullResponse);
      // A request in flight must still be answered: the 100 Continue proves
      // the server has it before we signal.
      const busy = net.connect(port, '127.0.0.1');
      await once(busy, 'connect');
      busy.write('POST /delay/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n');
      await readUntil(busy, (b) => b.includes('\r\n\r\n'));
      busy.write('hi');
      const answer = readUntil(busy, fullResponse);
      const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
      child.kill('SIGTERM');
      const last = (await answer).toString('latin1');
      assert.match(last, /^HTTP\/1\.1 200 /);
      assert.match(last, /\r\nconnection: close\r\n/i);
      const [code, signal] = await exited;
      assert.equal(signal, null);
      assert.equal(code, 0);
      assert.match(out, /GET \/before HTTP\/1\.1 200/);
      socket.destroy();
      busy.destroy();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
