// The router on HTTP/2 cleartext and gRPC: each stream is routed on its own
// headers (gRPC metadata), by prior knowledge and after an h2c upgrade,
// streaming both ways with trailers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { bed, grpcBed, h2Who, tag } from './router-fixtures.ts';
import { grpc } from '../fixtures/grpc/kt-echo.ts';
import type { Reply } from '../fixtures/grpc/kt-echo.ts';

const run = promisify(execFile);

test('h2c prior knowledge: streams on one connection are routed each on its own headers', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  await b.dev('bob', { headers: tag('bob') });
  const session = http2.connect(`http://127.0.0.1:${b.port}`);
  t.after(() => session.destroy());
  // Concurrent streams, interleaved on the one connection.
  const want = ['alice', 'bob', undefined, 'alice', undefined, 'bob', 'carol'];
  const got = await Promise.all(want.map((v) => h2Who(session, v ? { 'x-kt-version': v } : {})));
  assert.deepEqual(
    got.map((g) => g.pod),
    want.map((v) => (v === 'alice' || v === 'bob' ? v : 'origin-pod')),
  );
  assert.ok(got.every((g) => g.status === 200));
});

test('h2c upgrade (curl --http2): the upgraded request and later ones are routed', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: tag('alice') });
  const curl = async (args: string[]) => {
    const { stdout } = await run('/usr/bin/curl', ['-sS', '--http2', '-w', '\\n%{http_version}', ...args]);
    const lines = stdout.trim().split('\n');
    const body = lines[0];
    const version = lines[lines.length - 1];
    return { pod: (JSON.parse(body) as { pod: string }).pod, version };
  };
  assert.deepEqual(await curl(['-H', 'x-kt-version: alice', `http://127.0.0.1:${b.port}/a`]), { pod: 'alice', version: '2' });
  assert.deepEqual(await curl([`http://127.0.0.1:${b.port}/b`]), { pod: 'origin-pod', version: '2' });
  // Two URLs on one connection: the first upgrades, the second is a new stream.
  const { stdout, stderr } = await run('/usr/bin/curl', ['-sS', '-v', '--http2', '-H', 'x-kt-version: alice', `http://127.0.0.1:${b.port}/1`, `http://127.0.0.1:${b.port}/2`]);
  void stderr;
  const pods = stdout.trim().split('\n').map((l) => (JSON.parse(l) as { pod: string }).pod);
  assert.deepEqual(pods, ['alice', 'alice']);
});

test('gRPC: metadata routes unary, server-streaming and bidi calls; status and trailers come through', async (t) => {
  const { client } = await grpcBed(t, tag('alice'));
  const md = (v?: string) => {
    const m = new grpc.Metadata();
    if (v) m.set('x-kt-version', v);
    return m;
  };
  const unary = (v: string | undefined, text = 'hi') =>
    new Promise<{ reply?: Reply; err?: grpc.ServiceError; trailers: grpc.Metadata }>((resolve) => {
      // The callback and the 'status' event (which carries the trailers) come in either order.
      let result: { reply?: Reply; err?: grpc.ServiceError } | undefined;
      let trailers: grpc.Metadata | undefined;
      const settle = () => {
        if (result && trailers) resolve({ ...result, trailers });
      };
      const call = client.Who({ text, n: 0 }, md(v), (err, reply) => {
        result = err ? { err } : { reply };
        settle();
      });
      (call as unknown as grpc.ClientUnaryCall).on('status', (s: grpc.StatusObject) => {
        trailers = s.metadata;
        settle();
      });
    });
  assert.equal((await unary('alice')).reply?.pod, 'alice-grpc');
  assert.equal((await unary(undefined)).reply?.pod, 'origin-grpc');
  assert.equal((await unary('bob')).reply?.pod, 'origin-grpc');
  // An error status travels in trailers (trailers-only answer).
  const failed = await unary('alice', 'fail');
  assert.equal(failed.err?.code, grpc.status.NOT_FOUND);
  assert.match(failed.err?.details ?? '', /alice-grpc/);
  assert.deepEqual(failed.err?.metadata.get('x-pod'), ['alice-grpc']);

  const count = async (v?: string) => {
    const out: Reply[] = [];
    const call = client.Count({ text: 'c', n: 20 }, md(v));
    for await (const r of call) out.push(r as Reply);
    return out;
  };
  const ca = await count('alice');
  assert.equal(ca.length, 20);
  assert.ok(ca.every((r) => r.pod === 'alice-grpc'));
  assert.deepEqual(ca.map((r) => r.i), [...Array(20).keys()]);
  assert.ok((await count()).every((r) => r.pod === 'origin-grpc'));

  const chat = async (v?: string) => {
    const call = client.Chat(md(v));
    const got: Reply[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: Reply) => got.push(r));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const text of ['a', 'b', 'c']) call.write({ text, n: 0 });
    call.end();
    await done;
    return got;
  };
  const bidi = await chat('alice');
  assert.deepEqual(bidi.map((r) => `${r.pod}:${r.text}`), ['alice-grpc:a', 'alice-grpc:b', 'alice-grpc:c']);
  assert.ok((await chat()).every((r) => r.pod === 'origin-grpc'));
  // Trailers of a successful call come through too.
  assert.deepEqual((await unary('alice')).trailers.get('x-pod'), ['alice-grpc']);
  assert.deepEqual((await unary(undefined)).trailers.get('x-pod'), ['origin-grpc']);
});
