// pods/portforward through the API server's upgrade routing: its checks
// answer as Status before upgrading; a Running pod's stream goes to the
// streaming handlers (streams.ts) and through the kubelet hook.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { startHarness, waitForOutput, type Harness } from './harness.ts';
import { RESOURCES } from './resources.ts';

let h: Harness;
let echo: Server;
let echoPort: number;

before(async () => {
  h = await startHarness();
  echo = createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as AddressInfo).port;
  h.store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pf' } });
});

after(async () => {
  await h.close();
  echo.close();
});

/** An upgrade request as a client sends it; resolves with the status and body of a refusal. */
function upgrade(path: string): Promise<{ status: number; body: { reason: string; message: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(`${h.server.url}${path}`, {
      method: 'GET',
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'v4.channel.k8s.io' },
    });
    req.on('upgrade', () => reject(new Error('unexpected upgrade')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as { reason: string; message: string } }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('port-forward to a missing pod is 404, to a pod not running 400, as a Status', { timeout: 60_000 }, async () => {
  const missing = await upgrade(`/api/v1/namespaces/pf/pods/nope/portforward?ports=${echoPort}`);
  assert.deepEqual([missing.status, missing.body.reason, missing.body.message], [404, 'NotFound', 'pods "nope" not found']);
  h.store.create(RESOURCES.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pending', namespace: 'pf' }, spec: { containers: [{ name: 'c', image: 'i' }] }, status: { phase: 'Pending' } });
  const pending = await upgrade(`/api/v1/namespaces/pf/pods/pending/portforward?ports=${echoPort}`);
  assert.equal(pending.status, 400);
  assert.match(pending.body.message, /pod pending is not running/);
  const plain = await fetch(`${h.server.url}/api/v1/namespaces/pf/pods/pending/portforward?ports=1`);
  assert.equal(plain.status, 400, 'a request without an upgrade is refused');
});

test('kubectl port-forward reaches the pod port through the kubelet hook', { timeout: 60_000 }, async () => {
  h.runningPod('pf', 'web');
  const child = h.spawnKubectl(['port-forward', '-n', 'pf', 'pod/web', `:${echoPort}`]);
  try {
    const out = await waitForOutput(child, /Forwarding from 127\.0\.0\.1:(\d+) ->/);
    const local = Number(/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    const sock = connect(local, '127.0.0.1');
    sock.end('hello through the API server');
    let got = '';
    for await (const d of sock) got += (d as Buffer).toString();
    assert.equal(got, 'hello through the API server');
  } finally {
    child.kill();
  }
});
