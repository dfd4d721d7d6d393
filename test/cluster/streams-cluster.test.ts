// `kubectl port-forward` along the whole path of a real cluster: laptop
// namespace → relay → API server → kubelet → the pod's agent (a process of
// its own, in the pod's namespace) → the pod. The pod writes its payload and
// closes the connection at once; every byte must still arrive, before a
// clean end of stream. (The agent used to destroy the kubelet's socket as
// soon as the pod's closed, dropping what it had not written yet: a few
// KiB short, about one transfer in twelve, both over the WebSocket tunnel
// and the SPDY POST upgrade.) The streaming handlers alone, against local
// "pods", are in streams-kubectl.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { NODE26, startCluster, type Cluster } from './cluster.ts';
import type { KubeObject } from './store.ts';

const NS = 'pf';
const MIB = 1024 * 1024;
/** Pod port → bytes the pod writes on each connection before it closes. */
const PAYLOADS = new Map([
  [9000, 32 * MIB],
  [9001, 1 * MIB],
]);
/** How many connections each mode makes to each port: a few large, many small (each small one races the close again). */
const ROUNDS = new Map([
  [9000, 2],
  [9001, 120],
]);

/** The pod's bytes: SHAKE256 of a fixed seed, as long as asked (deterministic, no repeats, cheap to rebuild here). */
function payload(size: number): Buffer {
  return createHash('shake256', { outputLength: size }).update('kt port-forward payload').digest();
}

// On every connection: write the payload (honouring backpressure), then end it.
const SOURCE = `
const net = require('node:net');
const { createHash } = require('node:crypto');
for (const [port, size] of ${JSON.stringify([...PAYLOADS])}) {
  const body = createHash('shake256', { outputLength: size }).update('kt port-forward payload').digest();
  net.createServer((s) => {
    s.on('error', () => {}); // the readiness probe connects and leaves at once
    let off = 0;
    const pump = () => {
      while (off < body.length) {
        const chunk = body.subarray(off, off + 65536);
        off += chunk.length;
        if (!s.write(chunk)) return s.once('drain', pump);
      }
      s.end();
    };
    pump();
  }).listen(port);
}
`;

// argv: [LOCAL_PORT ROUNDS]...; reads each connection to its end, one after
// another, and prints "<local port> <bytes> <sha256>" per connection.
const SINK = `
const net = require('node:net');
const { createHash } = require('node:crypto');
const jobs = [];
for (let i = 1; i < process.argv.length; i += 2) for (let n = 0; n < Number(process.argv[i + 1]); n++) jobs.push(Number(process.argv[i]));
const next = () => {
  const port = jobs.shift();
  if (port === undefined) return;
  let bytes = 0;
  const hash = createHash('sha256');
  const s = net.connect(port, '127.0.0.1');
  s.on('data', (b) => { bytes += b.length; hash.update(b); });
  s.on('end', () => { process.stdout.write(port + ' ' + bytes + ' ' + hash.digest('hex') + '\\n'); next(); });
  s.on('error', (e) => { process.stdout.write(port + ' ' + bytes + ' error: ' + e.message + '\\n'); next(); });
};
next();
`;

let c: Cluster;
const expected = new Map([...PAYLOADS].map(([port, size]) => [port, `${size} ${createHash('sha256').update(payload(size)).digest('hex')}`]));

function isReady(o: KubeObject | undefined): boolean {
  const conds = (o?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
  return conds?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
}

before(async () => {
  c = await startCluster();
  await c.kubectl(['create', 'namespace', NS]);
  const ready = c.waitFor('pods', NS, 'source', isReady);
  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'source', namespace: NS },
    spec: {
      containers: [{ name: 'main', image: 'shell', command: [NODE26, '-e', SOURCE], readinessProbe: { tcpSocket: { port: 9001 }, periodSeconds: 1 } }],
      terminationGracePeriodSeconds: 0,
    },
  };
  const r = await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  assert.equal(r.code, 0, r.stderr);
  await ready;
});

after(async () => {
  await c?.stop();
});

/** Starts `kubectl port-forward` for every payload port; resolves with pod port → local port. */
function portForward(env: Record<string, string>): Promise<{ child: ChildProcess; local: Map<number, number> }> {
  const child = c.spawnInLaptop('kubectl', ['port-forward', '-n', NS, 'pod/source', ...[...PAYLOADS.keys()].map((p) => `:${p}`)], { env: { KUBECONFIG: c.kubeconfig, ...env } });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const local = new Map<number, number>();
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      for (const m of out.matchAll(/Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/g)) local.set(Number(m[2]), Number(m[1]));
      if (local.size === PAYLOADS.size) resolve({ child, local });
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => reject(new Error(`kubectl port-forward exited with ${code}: ${err}`)));
  });
}

const modes: { name: string; env: Record<string, string> }[] = [
  { name: 'WebSocket-tunnelled SPDY (default)', env: {} },
  { name: 'SPDY POST upgrade', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } },
];

for (const mode of modes) {
  test(`kubectl port-forward over ${mode.name}: the pod writes and closes at once, every byte arrives`, async () => {
    const pf = await portForward(mode.env);
    try {
      const args = [...ROUNDS].flatMap(([port, n]) => [String(pf.local.get(port)), String(n)]);
      const r = await c.inLaptop(NODE26, ['-e', SINK, ...args], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      const podPort = new Map([...pf.local].map(([pod, local]) => [String(local), pod]));
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, [...ROUNDS.values()].reduce((a, b) => a + b, 0));
      const wrong = lines
        .map((line) => {
          const [local, ...rest] = line.split(' ');
          const port = podPort.get(local)!;
          return { port, got: rest.join(' '), want: expected.get(port)! };
        })
        .filter((x) => x.got !== x.want);
      assert.deepEqual(wrong.map((x) => `:${x.port} got ${x.got.split(' ')[0]} of ${x.want.split(' ')[0]} bytes`), [], `${wrong.length} of ${lines.length} transfers were not the pod's bytes`);
    } finally {
      pf.child.kill('SIGTERM');
      if (pf.child.exitCode === null && pf.child.signalCode === null) await once(pf.child, 'exit');
    }
  });
}
