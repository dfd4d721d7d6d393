// The demo app's chain mode on real sockets: each hop passes `baggage` and
// `x-kt-version` (and nothing else) on to the next, over HTTP/1.1 and gRPC,
// and the answer names every pod on the way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import protoLoader from '@grpc/proto-loader';
import { startEcho } from '../fixtures/echo/app.ts';
import { startGrpcEcho } from '../fixtures/echo/grpc.ts';
import { grpc, grpcClient, type Reply } from '../fixtures/grpc/kt-echo.ts';

const opts = (pod: string, next?: string) => ({ port: 0, host: '127.0.0.1', pod, namespace: 'shop', ip: '127.0.0.1', log: () => undefined, ...(next ? { next } : {}) });

function get(port: number, headers: Record<string, string | string[]>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/who', headers, agent: false }, (res) => {
      let t = '';
      res.on('data', (d: Buffer) => (t += d.toString()));
      res.on('end', () => resolve(JSON.parse(t) as Record<string, unknown>));
    }).on('error', reject);
  });
}

test('chain mode over HTTP/1.1: baggage and x-kt-version travel to the last hop, other headers do not', async () => {
  const back = await startEcho(opts('back'));
  const front = await startEcho(opts('front', `http://127.0.0.1:${back.port}`));
  try {
    const a = await get(front.port, { baggage: ['kt=alice', 'u=1'], 'x-kt-version': 'alice', 'x-other': 'no' });
    assert.equal(a.chain, 'front > back');
    const last = (a.next as { headers: Record<string, string> }).headers;
    assert.equal(last.baggage, 'kt=alice, u=1');
    assert.equal(last['x-kt-version'], 'alice');
    assert.equal(last['x-other'], undefined);
    const closed = await startEcho(opts('dead'));
    await closed.close();
    const lost = await startEcho(opts('lost', `http://127.0.0.1:${closed.port}`));
    const b = await get(lost.port, {});
    assert.match(String(b.chain), /^lost > \? \(the next hop/);
    await lost.close();
  } finally {
    await front.close();
    await back.close();
  }
});

test('chain mode over gRPC: the baggage and x-kt-version metadata reach the last hop', async () => {
  // The last hop records the metadata it got.
  const def = protoLoader.loadSync(fileURLToPath(new URL('../fixtures/grpc/kt-echo.proto', import.meta.url)), { keepCase: true, defaults: true });
  const svc = (grpc.loadPackageDefinition(def) as unknown as { ktecho: { Echo: { service: grpc.ServiceDefinition } } }).ktecho.Echo.service;
  const seen: Record<string, unknown>[] = [];
  const server = new grpc.Server();
  server.addService(svc, {
    Who: (call: grpc.ServerUnaryCall<{ text: string }, Reply>, cb: grpc.sendUnaryData<Reply>) => {
      seen.push({ baggage: call.metadata.get('baggage'), version: call.metadata.get('x-kt-version'), other: call.metadata.get('x-other') });
      cb(null, { pod: 'back', text: call.request.text, i: 0 });
    },
  });
  const backPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const middle = await startGrpcEcho({ port: 0, host: '127.0.0.1', pod: 'middle', next: `127.0.0.1:${backPort}` });
  const front = await startGrpcEcho({ port: 0, host: '127.0.0.1', pod: 'front', next: `127.0.0.1:${middle.port}` });
  const client = grpcClient(front.port);
  try {
    const md = new grpc.Metadata();
    md.set('baggage', 'kt=alice');
    md.set('x-kt-version', 'alice');
    md.set('x-other', 'no');
    const r = await new Promise<Reply>((resolve, reject) => client.Who({ text: 'hi', n: 0 }, md, (err, x) => (err ? reject(err) : resolve(x))));
    assert.equal(r.pod, 'front > middle > back');
    assert.deepEqual(seen, [{ baggage: ['kt=alice'], version: ['alice'], other: [] }]);
  } finally {
    client.close();
    await front.close();
    await middle.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
});
