// The test cluster's own costs: how long a pod takes from create to Ready
// (against the bare cost of starting a Node process), and how fast 256 MiB
// cross `kubectl port-forward` (WebSocket, through the API server and the
// pod's agent) against a direct TCP connection to the pod from the node.
// And what a cluster command of ours costs: `kubectl kt status` against
// `kubectl get pods,svc` in the same namespace, as the developer user, with
// kubectl's discovery cache warm as it is on a laptop.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startCluster, NODE26, type Cluster } from '../cluster/cluster.ts';
import type { BenchRow } from './run.ts';
import { echoApp, isReady } from '../fixtures/workloads.ts';
import { median } from './stats.ts';

const MIB = 1024 * 1024;
const SIZE = 256 * MIB;
const NS = 'bench';

function nodeSpawnMs(): number {
  const t0 = performance.now();
  spawnSync(NODE26, ['-e', '0']);
  return performance.now() - t0;
}

async function createPod(c: Cluster, pod: object): Promise<void> {
  await c.admin.call('POST', `/api/v1/namespaces/${NS}/pods`, pod);
}

/** Create → Ready for a `shell` pod without probes, through the API. */
async function podReadyMs(c: Cluster, name: string): Promise<number> {
  const t0 = performance.now();
  const ready = c.waitFor('pods', NS, name, isReady);
  await createPod(c, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS },
    spec: { containers: [{ name: 'main', image: 'shell', command: ['sleep', 'infinity'] }], terminationGracePeriodSeconds: 0 },
  });
  await ready;
  return performance.now() - t0;
}

// Writes SIZE bytes to each connection, honouring backpressure, then ends it.
const SOURCE = `
const net = require('node:net');
const chunk = Buffer.alloc(1 << 16, 120);
net.createServer((s) => {
  // The readiness probe connects and leaves at once: not an error worth dying for.
  s.on('error', () => {});
  let left = ${SIZE};
  const pump = () => {
    while (left > 0) {
      left -= chunk.length;
      if (!s.write(chunk)) return s.once('drain', pump);
    }
    s.end();
  };
  pump();
}).listen(9000);
`;

// Reads one connection to its end; prints "<bytes> <ms>".
const SINK = `
const net = require('node:net');
const t0 = performance.now();
let n = 0;
const s = net.connect(Number(process.argv[2]), process.argv[1]);
s.on('data', (b) => { n += b.length; });
s.on('end', () => { process.stdout.write(n + ' ' + (performance.now() - t0) + '\\n'); });
s.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`;

function mibPerSecond(out: { code: number; stdout: string; stderr: string }, what: string): number {
  const [bytes, ms] = out.stdout.trim().split(' ').map(Number);
  if (out.code !== 0 || bytes !== SIZE) throw new Error(`${what}: got ${bytes} bytes (exit ${out.code}) ${out.stderr}`);
  return bytes / MIB / (ms / 1000);
}

function forwardedPort(pf: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    pf.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    let err = '';
    pf.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    pf.on('exit', (code) => reject(new Error(`kubectl port-forward exited with ${code}: ${err}`)));
  });
}

const STATUS_RUNS = 10;

/** Median wall times of the status command and its references, run alternately so load drifts hit all alike. */
async function statusTimes(c: Cluster): Promise<{ kt: number; plugin: number; version: number; get: number }> {
  await c.kubectl(['apply', '-f', '-'], { input: echoApp(NS, 'web') });
  const cmds = {
    kt: ['kubectl', 'kt', 'status', '-n', NS],
    plugin: ['kubectl-kt', 'status', '-n', NS],
    version: ['kubectl-kt', 'version'],
    get: ['kubectl', 'get', 'pods,svc', '-n', NS],
  } as const;
  const times: Record<keyof typeof cmds, number[]> = { kt: [], plugin: [], version: [], get: [] };
  // The plugin keeps the client chunk's code cache in the user's cache directory: this run's own.
  const cache = mkdtempSync(join(tmpdir(), 'kt-bench-cache-'));
  // One round unmeasured: kubectl's discovery cache and the client chunk's code cache are made here.
  for (let i = 0; i <= STATUS_RUNS; i++) {
    for (const [k, [cmd, ...args]] of Object.entries(cmds) as [keyof typeof cmds, readonly string[]][]) {
      const t0 = performance.now();
      const r = await c.inLaptop(cmd, [...args], { env: { XDG_CACHE_HOME: cache } });
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`${cmds[k].join(' ')}: exit ${r.code}: ${r.stderr}`);
      if (i > 0) times[k].push(ms);
    }
  }
  rmSync(cache, { recursive: true, force: true });
  return { kt: median(times.kt), plugin: median(times.plugin), version: median(times.version), get: median(times.get) };
}

export async function run(): Promise<BenchRow[]> {
  const c = await startCluster();
  try {
    await c.grantDev(NS);
    const spawnMs = median(Array.from({ length: 5 }, nodeSpawnMs));
    const readyMs: number[] = [];
    for (let i = 0; i < 5; i++) readyMs.push(await podReadyMs(c, `p${i}`));

    const src = c.waitFor('pods', NS, 'source', isReady);
    await createPod(c, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'source', namespace: NS },
      spec: {
        containers: [{ name: 'main', image: 'shell', command: ['node', '-e', SOURCE], readinessProbe: { tcpSocket: { port: 9000 }, periodSeconds: 1 } }],
        terminationGracePeriodSeconds: 0,
      },
    });
    const podIp = ((await src)?.status as { podIP: string }).podIP;

    const direct: number[] = [];
    const forwarded: number[] = [];
    const pf = c.spawnInLaptop('kubectl', ['port-forward', '-n', NS, 'pod/source', ':9000'], { env: { KUBECONFIG: c.kubeconfig } });
    try {
      const port = await forwardedPort(pf);
      for (let i = 0; i < 2; i++) {
        direct.push(mibPerSecond(await c.inNode(NODE26, ['-e', SINK, podIp, '9000']), 'direct'));
        forwarded.push(mibPerSecond(await c.inLaptop(NODE26, ['-e', SINK, '127.0.0.1', String(port)]), 'port-forward'));
      }
    } finally {
      pf.kill('SIGTERM');
    }
    const status = await statusTimes(c);
    return [
      {
        name: 'status: `kubectl kt status -n NS` (median of 10)',
        value: status.kt, unit: 'ms',
        reference: '`kubectl get pods,svc -n NS`', refValue: status.get,
        note: `goal ≤ 1×; the plugin alone (\`kubectl-kt status\`, no kubectl in front) ${status.plugin.toFixed(0)} ms, \`kubectl-kt version\` (no cluster call) ${status.version.toFixed(0)} ms; the bundle on node, as the tests run it`,
      },
      {
        name: 'cluster: pod create → Ready (shell pod, median of 5)',
        value: median(readyMs), unit: 'ms',
        reference: 'spawn of `node -e 0`', refValue: spawnMs,
        note: 'API POST, scheduling, netns + veth + agent start, container start, status write; no probe',
      },
      {
        name: 'cluster: 256 MiB via kubectl port-forward (best of 2)',
        value: Math.max(...forwarded), unit: 'MiB/s',
        reference: 'direct TCP node netns → pod', refValue: Math.max(...direct),
        note: 'kubectl v1.37.2 (WebSocket carrying SPDY) → kube-apiserver (TLS; bridges to SPDY) → kubelet API (TLS) → pod agent (unix socket) → pod loopback',
      },
    ];
  } finally {
    await c.stop();
  }
}
