// What the session benchmarks share (session.bench.ts, link.bench.ts): the
// namespace they run in, the scripts their pods run, and the plumbing that
// waits on a child's output lines instead of sleeping.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE26, type Cluster } from '../cluster/cluster.ts';
import type { RunResult } from '../cluster/net/run.ts';
import type { KubeObject } from '../cluster/store.ts';
import { DEFAULT_IMAGE, LABELS, SSH_USER } from '../../contract/protocol.ts';
import { proxyPod } from '../../plugin/src/kube/shadow.ts';
import { makeSessionKey } from '../../plugin/src/tunnel/index.ts';
import { applyApps, clientPod, CONTAINER_SECURITY, echoApp, isReady, namespace, POD_SECURITY } from '../fixtures/workloads.ts';

/** A guard against a hung child, not a measurement: every wait normally ends on an event long before. */
export const GUARD_MS = 120_000;

// An HTTP server sending ?bytes=N bytes (default 256 MiB) to every request, honouring backpressure.
const SOURCE = `
const http = require('node:http');
const chunk = Buffer.alloc(1 << 16, 120);
http.createServer((req, res) => {
  const size = Number(new URL(req.url, 'http://source').searchParams.get('bytes') || ${256 * 1024 * 1024});
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  let left = size;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
    }
    res.end();
  };
  res.on('error', () => {});
  pump();
}).on('clientError', (e, s) => s.destroy()).listen(9000);
`;

/**
 * The benchmarks' namespace: Service web (two echo pods), a client pod to
 * send requests from, and a source pod serving bytes on :9000.
 */
export function benchManifest(NS: string): string[] {
  return [namespace(NS), echoApp(NS, 'web'), clientPod(NS), `apiVersion: v1
kind: Pod
metadata: {name: source, namespace: ${NS}}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: ${POD_SECURITY}
  containers:
  - name: main
    securityContext: ${CONTAINER_SECURITY}
    image: shell
    command: [${JSON.stringify(NODE26)}, -e, ${JSON.stringify(SOURCE)}]
    ports: [{containerPort: 9000}]
    readinessProbe: {tcpSocket: {port: 9000}, periodSeconds: 1}
`];
}

// N sequential keep-alive GETs on one connection; prints {"p50","p99","pods"}. argv: url, N, [headers as JSON].
export const LATENCY_SCRIPT = `
const http = require('node:http');
const [url, n, headers] = [process.argv[1], Number(process.argv[2]), JSON.parse(process.argv[3] || '{}')];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = () => new Promise((resolve, reject) => {
  const req = http.get(url, { agent, headers }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve(JSON.parse(body).pod));
    res.on('error', reject);
  });
  req.on('error', reject);
});
(async () => {
  const lat = [];
  const pods = new Set();
  for (let i = 0; i < 50 + n; i++) {
    const t0 = performance.now();
    pods.add(await get());
    if (i >= 50) lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: lat[Math.floor(n / 2)], p99: lat[Math.floor(n * 0.99)], pods: [...pods] }) + '\\n');
  agent.destroy();
})().catch((e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`;

/** Wall clock in ms with sub-ms resolution, comparable across processes on this machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function isRunning(o: KubeObject | undefined): boolean {
  return (o?.status as { phase?: string } | undefined)?.phase === 'Running';
}

export function podIp(o: KubeObject | undefined): string {
  const ip = (o?.status as { podIP?: string } | undefined)?.podIP;
  if (!ip) throw new Error(`pod ${o?.metadata.name} has no IP`);
  return ip;
}

interface Line {
  at: number;
  line: string;
  index: number;
}

interface Waiter {
  re: RegExp;
  from: number;
  resolve: (l: Line) => void;
  reject: (e: Error) => void;
}

/** The lines a child writes on one stream, each with the time it arrived; wait for one by pattern. */
export class Lines {
  readonly seen: { at: number; line: string }[] = [];
  private waiters: Waiter[] = [];
  private ended: string | undefined;
  private readonly what: string;

  constructor(child: ChildProcess, stream: 'stdout' | 'stderr', what: string) {
    this.what = what;
    const input = child[stream];
    if (!input) throw new Error(`${what}: no ${stream}`);
    createInterface({ input }).on('line', (line) => {
      this.seen.push({ at: performance.now(), line });
      for (const w of [...this.waiters]) this.check(w);
    });
    child.once('exit', (code, signal) => {
      this.ended = `${what} exited (${code ?? signal})`;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.ended} before ${w.re}:\n${this.text()}`));
    });
  }

  text(): string {
    return this.seen.map((l) => l.line).join('\n');
  }

  /** The first line at index ≥ from that matches. */
  wait(re: RegExp, from = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.what}: no line matching ${re} within ${GUARD_MS} ms:\n${this.text()}`));
      }, GUARD_MS);
      const w: Waiter = {
        re, from,
        resolve: (l) => { clearTimeout(timer); resolve(l); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      if (this.check(w)) return;
      if (this.ended) return w.reject(new Error(`${this.ended} before ${re}:\n${this.text()}`));
      this.waiters.push(w);
    });
  }

  private check(w: Waiter): boolean {
    for (let i = w.from; i < this.seen.length; i++) {
      if (w.re.test(this.seen[i].line)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve({ ...this.seen[i], index: i });
        return true;
      }
    }
    return false;
  }
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Signal a child we started, by its pid, and wait for it; SIGKILL if it does not go. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = exited(child);
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<'guard'>((resolve) => (timer = setTimeout(() => resolve('guard'), 30_000)));
  if ((await Promise.race([gone, guard])) === 'guard') {
    child.kill('SIGKILL');
    await gone;
  }
  clearTimeout(timer);
}

export const CURL = ['-sS', '--max-time', '120', '-o', '/dev/null', '-w', '%{size_download} %{speed_download}'];

/** curl's average speed over a whole download of `size` bytes, in MiB/s. */
export async function download(run: Promise<RunResult>, what: string, size: number): Promise<number> {
  const out = await run;
  const [bytes, speed] = out.stdout.trim().split(' ').map(Number);
  if (out.code !== 0 || bytes !== size) throw new Error(`${what}: got ${bytes} bytes (exit ${out.code}) ${out.stderr}`);
  return speed / (1024 * 1024);
}

export function json<T>(r: RunResult, what: string): T {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * A second proxy pod for OpenSSH, the reference of every tunnel figure: the
 * same image and server as the plugin's, with a key of our own (the plugin's
 * never leaves it). Resolves once the pod is Running.
 */
export async function openSshProxyPod(c: Cluster, ns: string, dir: string, name: string): Promise<{ pod: string; keyFile: string; runningAt: number }> {
  const key = makeSessionKey('kt bench');
  const hostKey = makeSessionKey('kt bench host');
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, key.privateKey);
  chmodSync(keyFile, 0o600);
  const pod = proxyPod({
    name, namespace: ns, image: DEFAULT_IMAGE, role: 'shadow', kind: 'connect',
    session: 'benchssh', owner: 'bench@laptop', since: new Date().toISOString(),
    authorizedKey: key.publicKey, hostKey: hostKey.privateKey,
  });
  await c.admin.call('POST', `/api/v1/namespaces/${ns}/pods`, pod);
  await c.waitFor('pods', ns, name, isRunning, GUARD_MS);
  return { pod: name, keyFile, runningAt: Date.now() };
}

/** OpenSSH's arguments for `-D`-style use of a proxy pod reached at 127.0.0.1:port (a kubectl port-forward). */
export function openSshArgs(keyFile: string, port: number, forward: string[]): string[] {
  return [
    '-F', '/dev/null', '-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes',
    '-v', '-N', ...forward, '-p', String(port), `${SSH_USER}@127.0.0.1`,
  ];
}

/** The local port `kubectl port-forward … :REMOTE` chose, from its first line. */
export async function portForwardPort(child: ChildProcess, what: string): Promise<number> {
  const line = await new Lines(child, 'stdout', what).wait(/Forwarding from 127\.0\.0\.1:/);
  return Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(line.line)?.[1]);
}

/**
 * Wait until Service `name` selects the router of an exchange or mesh and the
 * service proxy has its Endpoints in its rules: from then on, the laptop answers.
 */
export async function serviceOnRouter(c: Cluster, ns: string, name: string): Promise<KubeObject> {
  const router = c.store.list('pods', ns).find((p) => p.metadata.labels?.[LABELS.role] === 'router' && p.metadata.labels?.[LABELS.target] === name);
  if (!router) throw new Error(`no router pod for service ${ns}/${name}`);
  const routerIp = podIp(router);
  await c.waitFor('endpoints', ns, name, (o) => {
    const ips = ((o?.subsets as { addresses?: { ip: string }[] }[] | undefined) ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.ip);
    return ips.length > 0 && ips.every((ip) => ip === routerIp);
  }, GUARD_MS);
  await c.serviceProxySynced();
  return router;
}

/**
 * benchManifest(ns) applied, the limited user bound there, and every pod of
 * it up; resolves with what the benchmarks address: the source pod's IP and
 * one ready original pod of Service web.
 */
export async function setUpBenchNamespace(c: Cluster, ns: string): Promise<{ sourceIp: string; web: KubeObject }> {
  await c.grantDev(ns);
  await applyApps(c, ns, benchManifest(ns), { deployments: ['web'], pods: ['client', 'source'], timeoutMs: GUARD_MS });
  const sourceIp = podIp(c.store.get('pods', ns, 'source'));
  const web = c.store.list('pods', ns).find((p) => p.metadata.name.startsWith('web-') && isReady(p));
  if (!web) throw new Error(`no ready pod of service ${ns}/web`);
  return { sourceIp, web };
}

/** A child-process spawner in the laptop namespace that remembers what it started, for the bench's teardown. */
export function laptopSpawner(c: Cluster): { spawn: (cmd: string, args: string[], env?: Record<string, string>) => ChildProcess; stopAll: () => Promise<void> } {
  const children: ChildProcess[] = [];
  return {
    spawn: (cmd, args, env) => {
      const child = c.spawnInLaptop(cmd, args, { env });
      children.push(child);
      return child;
    },
    stopAll: async () => {
      for (const child of children.reverse()) await stop(child, 'SIGINT');
    },
  };
}
