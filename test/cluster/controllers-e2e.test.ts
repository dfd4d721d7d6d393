// The controllers and the demo app on a whole test cluster (real node, real
// pods, real kubectl): a rolling update with readiness probes ends with only
// new pods behind the Service, readiness decides the Endpoints, and the demo
// app speaks HTTP/1.1, h2c (prior knowledge and Upgrade) and WebSocket
// through a ClusterIP from another pod.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { NODE26, ROOT, startCluster, type Cluster } from './cluster.ts';
import type { KubeObject } from './store.ts';

const NS = 'roll';

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ${NS}}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: ${NS}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: kt-demo/echo
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}}
spec:
  containers:
  - name: shell
    image: shell
    command: [sleep, infinity]
`;

/** A WebSocket round trip, run with Node 26 inside the client pod. */
const WS_CLIENT = `
import WebSocket from ${JSON.stringify(join(ROOT, 'node_modules/ws/wrapper.mjs'))};
const ws = new WebSocket(process.argv[1]);
ws.on('open', () => ws.send('hello'));
ws.on('message', (m) => { console.log(m.toString()); ws.close(); });
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

type Subsets = { addresses?: { ip: string; targetRef: { name: string } }[]; notReadyAddresses?: unknown[]; ports?: { port: number }[] }[];

let c: Cluster;

function inClient(cmd: string, args: string[]): ReturnType<Cluster['inPod']> {
  return c.inPod(NS, 'client', cmd, args, { timeoutMs: 30_000 });
}

async function curl(...args: string[]): Promise<{ pod: string; httpVersion: string }> {
  const r = await inClient('curl', ['-sS', '--max-time', '10', ...args]);
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { pod: string; httpVersion: string };
}

async function kubectl(...args: string[]): Promise<string> {
  const r = await c.kubectl(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function echoPods(): KubeObject[] {
  return c.store.list('pods', NS).filter((p) => p.metadata.labels?.app === 'echo');
}

describe('controllers and the demo app on a test cluster', { timeout: 300_000 }, () => {
  before(async () => {
    c = await startCluster();
    const r = await c.kubectl(['apply', '-f', '-'], { input: MANIFEST });
    assert.equal(r.code, 0, r.stderr);
    await kubectl('wait', '-n', NS, '--for=condition=Ready', 'pod/client', '--timeout=60s');
  });
  after(async () => {
    await c?.stop();
  });

  test('a Deployment rolls out with readiness probes; its Service lists the ready pods on the named port', async () => {
    assert.match(await kubectl('rollout', 'status', '-n', NS, 'deploy/echo', '--timeout=60s'), /successfully rolled out/);
    const ep = await c.waitFor('endpoints', NS, 'echo', (o) => ((o?.subsets as Subsets | undefined)?.[0]?.addresses?.length ?? 0) === 2);
    const subsets = ep?.subsets as Subsets;
    assert.deepEqual(subsets[0].ports?.map((p) => p.port), [8080]);
    assert.equal(subsets[0].notReadyAddresses, undefined);
    assert.deepEqual(subsets[0].addresses?.map((a) => a.targetRef.name).sort(), echoPods().map((p) => p.metadata.name).sort());
  });

  test('the demo app answers HTTP/1.1, h2c by prior knowledge and by Upgrade, and WebSocket through the ClusterIP', async () => {
    const names = new Set(echoPods().map((p) => p.metadata.name));
    const h1 = await curl('http://echo/');
    assert.ok(names.has(h1.pod), h1.pod);
    assert.equal(h1.httpVersion, '1.1');
    assert.equal((await curl('--http2-prior-knowledge', 'http://echo/')).httpVersion, '2.0');
    assert.equal((await curl('--http2', 'http://echo/')).httpVersion, '2.0');
    const ws = await inClient(NODE26, ['--input-type=module', '-e', WS_CLIENT, 'ws://echo/ws']);
    assert.equal(ws.code, 0, ws.stderr);
    const msg = JSON.parse(ws.stdout) as { pod: string; message: string };
    assert.equal(msg.message, 'hello');
    assert.ok(names.has(msg.pod));
  });

  test('a template change rolls through to new pods only, and they serve the Service', async () => {
    const before = new Set(echoPods().map((p) => p.metadata.name));
    await kubectl('set', 'image', '-n', NS, 'deploy/echo', 'echo=kt-demo/echo:v2');
    assert.match(await kubectl('rollout', 'status', '-n', NS, 'deploy/echo', '--timeout=90s'), /successfully rolled out/);
    await kubectl('wait', '-n', NS, '--for=delete', ...[...before].map((n) => `pod/${n}`), '--timeout=60s');
    const after = echoPods();
    assert.equal(after.length, 2);
    assert.ok(after.every((p) => !before.has(p.metadata.name) && (p.spec as { containers: { image: string }[] }).containers[0].image === 'kt-demo/echo:v2'));
    await c.waitFor('endpoints', NS, 'echo', (o) => {
      const names = (o?.subsets as Subsets | undefined)?.[0]?.addresses?.map((a) => a.targetRef.name) ?? [];
      return names.length === 2 && names.every((n) => !before.has(n));
    });
    const served = await curl('http://echo/');
    assert.ok(after.some((p) => p.metadata.name === served.pod), served.pod);
  });

  test('deleting the Deployment takes its ReplicaSets and pods with it', async () => {
    await kubectl('delete', '-n', NS, 'deploy/echo');
    await kubectl('wait', '-n', NS, '--for=delete', 'pod', '-l', 'app=echo', '--timeout=60s');
    assert.equal((await kubectl('get', '-n', NS, 'rs,pods', '-l', 'app=echo', '-o', 'name')).trim(), '');
    assert.equal(c.store.list('endpoints', NS).find((e) => e.metadata.name === 'echo')?.subsets, undefined);
  });
});
