// The invariant under chaos: for KT_SOAK_MINUTES (default 10) random faults
// hit several mesh sessions on two Services while a pod sends untagged
// requests to both; then every session stops and `kubectl kt clean` runs.
// Reported: requests sent and failed (goal 0), the longest time either
// Service had no ready backend (goal 0, from its EndpointSlices as the
// cluster's store sees them) and no backend the service proxy would use
// (ready, or serving while it terminates), and what kubectl-kt left behind after `clean`
// (goal nothing). `node test/bench/run.ts soak`; not part of `make test`.
//
// The faults are a table (FAULTS), one entry each: kill -9 of a plugin, the
// router pod deleted, a session ending and starting again (the developer
// runs the command again after each), and the faults a session must come
// back from by itself — the laptop's path to the API server dropping every
// packet for 15 s, the laptop asleep (SIGSTOP) for 15 s, the API server
// restarted, the router's process killed in its pod. A session that ended
// by itself is counted, and started again as its developer would.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE26, startCluster, type Cluster } from '../cluster/cluster.ts';
import type { KubeObject, WatchEvent } from '../cluster/store.ts';
import { LABELS, MANAGED_BY } from '../../contract/protocol.ts';
import { applyApps, clientPod, echoApp, localEcho, namespace } from '../fixtures/workloads.ts';
import type { BenchRow } from './run.ts';

// The namespace the limited user `dev` is bound in (test/cluster: default and shop).
const NS = 'shop';
const SERVICES = ['web', 'api'] as const;
/** Mesh sessions per Service, each with its own header value and laptop port. */
const PER_SERVICE = 3;
const BASE_PORT = 18200;
/** A new fault this often on average (uniform 0.5×–1.5×). */
const FAULT_EVERY_MS = 8000;
const SLICES = 'endpointslices.discovery.k8s.io';
/** A session still running this long after its router was deleted is stuck (it ends within a second normally). */
const STUCK_MS = 60_000;
/** How long the laptop's path is cut, or the laptop asleep: longer than the router waits for a silent client (3 × 2 s keepalive, then 2 s). */
const HOLD_MS = 15_000;

/** One developer's mesh session; `child` is undefined while it is down. */
export interface Session {
  service: string;
  index: number;
  port: number;
  header: string;
  child?: ChildProcess;
}

export interface SoakContext {
  cluster: Cluster;
  sessions: Session[];
  /** (Re)starts a session and resolves once it routes (or fails to). */
  start(s: Session): Promise<void>;
  /** Sessions that did not end within STUCK_MS after their router was deleted (then killed), for the report. */
  stuck: string[];
  log(msg: string): void;
}

/** A fault: picks its victims itself and returns once the fault is over (the system may still be recovering). */
export interface Fault {
  name: string;
  apply(ctx: SoakContext, pick: <T>(xs: T[]) => T): Promise<void>;
}

const running = (ctx: SoakContext): Session[] => ctx.sessions.filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null);

/** Router pods not being deleted. */
const liveRouters = (ctx: SoakContext): KubeObject[] => ctx.cluster.store.list('pods', NS).filter((p) => p.metadata.labels?.[LABELS.role] === 'router' && !p.metadata.deletionTimestamp);

function ended(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A running session's plugin gets a signal; once it is gone, the developer starts it again. */
function signalled(name: string, signal: NodeJS.Signals): Fault {
  return {
    name,
    async apply(ctx, pick) {
      const s = running(ctx);
      if (s.length === 0) return;
      const victim = pick(s);
      const child = victim.child as ChildProcess;
      child.kill(signal);
      await ended(child);
      await ctx.start(victim);
    },
  };
}

export const FAULTS: Fault[] = [
  signalled('kill -9 of a plugin', 'SIGKILL'),
  {
    name: 'router pod deleted',
    async apply(ctx, pick) {
      const routers = liveRouters(ctx);
      if (routers.length === 0) return;
      const r = pick(routers);
      const target = r.metadata.labels?.[LABELS.target];
      const del = await ctx.cluster.kubectl(['delete', 'pod', '-n', NS, r.metadata.name, '--wait=false']);
      if (del.code !== 0) ctx.log(`delete ${r.metadata.name}: ${del.stderr.trim()}`);
      // Its sessions end with KT_ERR_ROUTER_GONE; the developers run the command again.
      // One that has not ended after STUCK_MS is a finding: reported, killed, started again.
      const mine = ctx.sessions.filter((s) => s.service === target && s.child);
      await Promise.all(mine.map(async (s) => {
        const child = s.child as ChildProcess;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STUCK_MS)));
        if (await Promise.race([ended(child).then(() => 'ended' as const), late]) === 'late') {
          ctx.stuck.push(`${s.header} on ${s.service}`);
          ctx.log(`${s.header} on ${s.service} still runs ${STUCK_MS} ms after its router was deleted; killing it`);
          child.kill('SIGKILL');
          await ended(child);
        }
        clearTimeout(timer);
      }));
      await Promise.all(mine.map((s) => ctx.start(s)));
    },
  },
  signalled('a session ends (Ctrl-C) and starts again', 'SIGINT'),
  {
    name: "the laptop's path to the API server silent for 15 s",
    async apply(ctx) {
      const cut = await ctx.cluster.cutLaptopPath();
      // The fault's length is the soak's schedule, not a wait for an outcome; the sessions restore themselves after it.
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      ctx.log(`path back, ${await cut.restore()} packets dropped`);
    },
  },
  {
    name: 'a laptop asleep (SIGSTOP) for 15 s',
    async apply(ctx, pick) {
      const s = running(ctx);
      if (s.length === 0) return;
      const child = pick(s).child as ChildProcess;
      child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      child.kill('SIGCONT');
    },
  },
  {
    name: 'kube-apiserver restarted',
    async apply(ctx) {
      const { downMs } = await ctx.cluster.restartApiServer();
      ctx.log(`API server down ${downMs.toFixed(0)} ms`);
    },
  },
  {
    name: "a router's process killed in its pod (as by the OOM killer)",
    async apply(ctx, pick) {
      const routers = liveRouters(ctx);
      if (routers.length === 0) return;
      await ctx.cluster.killContainer(NS, pick(routers).metadata.name, 'kt-proxy').catch((err: unknown) => ctx.log(`kill: ${(err as Error).message}`));
    },
  },
];

function ktObjects(cluster: Cluster): string[] {
  const out: string[] = [];
  for (const kind of ['pods', 'services', 'secrets']) {
    for (const o of cluster.store.list(kind, NS)) if (o.metadata.labels?.[LABELS.managedBy] === MANAGED_BY) out.push(`${kind}/${o.metadata.name}`);
  }
  const taken = cluster.store.list('services', NS).filter((s) => Object.keys(s.metadata.annotations ?? {}).some((k) => k.startsWith('kt.dev/')));
  return [...out, ...taken.map((s) => `services/${s.metadata.name} (still annotated)`)];
}

/** Ready endpoints of a Service, from its EndpointSlices (a missing `ready` counts as ready). */
type Conditions = { ready?: boolean; serving?: boolean; terminating?: boolean };

/** A Service's endpoints that pass `usable`, from its EndpointSlices. */
function backends(cluster: Cluster, service: string, usable: (c: Conditions) => boolean): number {
  return cluster.store.list(SLICES, NS)
    .filter((sl) => sl.metadata.labels?.['kubernetes.io/service-name'] === service)
    .flatMap((sl) => ((sl as KubeObject & { endpoints?: { conditions?: Conditions }[] }).endpoints ?? []))
    .filter((e) => usable(e.conditions ?? {})).length;
}

const READY = (c: Conditions): boolean => c.ready !== false;
/** What the service proxy sends to: ready endpoints, or when there is none, those still serving while they terminate (a draining router). */
const SERVING = (c: Conditions): boolean => c.ready !== false || (c.serving === true && c.terminating === true);

/** The longest stretch, per Service, in which no endpoint passed `usable`. */
class Gaps {
  readonly since = new Map<string, number | undefined>();
  longest = 0;
  longestWhat = '';
  readonly usable: (c: Conditions) => boolean;
  constructor(usable: (c: Conditions) => boolean) {
    this.usable = usable;
  }
  observe(cluster: Cluster, services: readonly string[], now: number): void {
    for (const s of services) {
      const none = backends(cluster, s, this.usable) === 0;
      const from = this.since.get(s);
      if (none && from === undefined) this.since.set(s, now);
      if (!none && from !== undefined) {
        if (now - from > this.longest) [this.longest, this.longestWhat] = [now - from, s];
        this.since.set(s, undefined);
      }
    }
  }
  /** A Service still without a backend at the end, if any. */
  open(): boolean {
    return [...this.since.values()].some((v) => v !== undefined);
  }
}

export async function run(): Promise<BenchRow[]> {
  const minutes = Number(process.env.KT_SOAK_MINUTES ?? '10');
  const cluster = await startCluster();
  const log = (m: string): void => void process.stderr.write(`soak: ${m}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'kt-soak-'));
  chmodSync(dir, 0o755);
  let laptops: ChildProcess | undefined;
  const sessions: Session[] = [];
  try {
    await applyApps(cluster, NS, [namespace(NS), ...SERVICES.map((name) => echoApp(NS, name)), clientPod(NS)], { deployments: [...SERVICES], pods: ['client'], timeoutMs: 120_000 });
    const count = SERVICES.length * PER_SERVICE;
    laptops = await localEcho(cluster, BASE_PORT, 'dev-', { program: 'many', env: { BASE_PORT: String(BASE_PORT), COUNT: String(count), PREFIX: 'dev-' } });

    // The longest stretches without a ready endpoint and without one the service proxy sends to, per Service, from the store's events.
    const gaps = { ready: new Gaps(READY), serving: new Gaps(SERVING) };
    const observe = (): void => {
      const now = performance.now();
      gaps.ready.observe(cluster, SERVICES, now);
      gaps.serving.observe(cluster, SERVICES, now);
    };
    const unwatch = cluster.store.watch((ev: WatchEvent) => {
      if (ev.resource === SLICES) observe();
    });

    let started = 0;
    const start = async (s: Session): Promise<void> => {
      const child = cluster.spawnInLaptop('kubectl', ['kt', 'mesh', '-n', NS, `svc/${s.service}`, '--expose', `${s.port}:80`, '--header', `x-kt-version=${s.header}`]);
      s.child = child;
      started++;
      let buf = '';
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer): void => {
          buf += d.toString();
          if (/^meshing:/m.test(buf)) done();
        };
        const done = (): void => {
          child.stderr?.off('data', onData);
          resolve();
        };
        child.stderr?.on('data', onData);
        // A start can fail (a router being replaced right then): the session stays down until a fault picks it again.
        child.once('exit', () => {
          log(`${s.header} on ${s.service} ended: ${buf.trim().split('\n').pop() ?? ''}`);
          done();
        });
      });
    };
    for (const [si, service] of SERVICES.entries()) {
      for (let i = 0; i < PER_SERVICE; i++) {
        const index = si * PER_SERVICE + i;
        sessions.push({ service, index, port: BASE_PORT + index, header: `dev-${index}` });
      }
    }
    for (const s of sessions) await start(s);
    const ctx: SoakContext = { cluster, sessions, start, log, stuck: [] };

    // Untagged load on both Services: per Service one client with a new connection per request and one keep-alive.
    const stopFile = join(dir, 'stop');
    const script = `
      const http = require('node:http'); const fs = require('node:fs');
      const [stop, ...hosts] = process.argv.slice(1);
      let sent = 0, failed = 0; const errors = {}; const when = [];
      const one = (host, agent) => new Promise((done) => {
        sent++;
        const fail = (why) => { failed++; errors[why] = (errors[why] || 0) + 1; if (when.length < 10000) when.push(Date.now()); done(); };
        const req = http.get({ host, port: 80, path: '/soak', agent, timeout: 10000 }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? done() : fail('HTTP ' + res.statusCode)));
          res.on('error', (e) => fail(e.code || e.message));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e) => fail(e.code || e.message));
      });
      const worker = async (host, agent) => { while (!fs.existsSync(stop)) await one(host, agent); };
      Promise.all(hosts.flatMap((h) => [worker(h, new http.Agent({ keepAlive: false })), worker(h, new http.Agent({ keepAlive: true, maxSockets: 1 }))]))
        .then(() => console.log(JSON.stringify({ sent, failed, errors, when })));
    `;
    const ips = SERVICES.map((s) => String((cluster.store.get('services', NS, s)?.spec as { clusterIP: string }).clusterIP));
    const load = cluster.inPod(NS, 'client', NODE26, ['-e', script, stopFile, ...ips], { timeoutMs: (minutes + 10) * 60_000 });

    const faults = new Map<string, number>();
    let selfEnded = 0;
    const timeline: { name: string; at: number }[] = [];
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
    const end = performance.now() + minutes * 60_000;
    while (performance.now() < end) {
      // The pause between faults is the soak's own schedule, not a wait for an outcome.
      await new Promise((resolve) => setTimeout(resolve, FAULT_EVERY_MS * (0.5 + Math.random())));
      // A session that ended by itself (its start failed, or it gave up): its developer runs the command again.
      for (const s of sessions.filter((x) => x.child && (x.child.exitCode !== null || x.child.signalCode !== null))) {
        selfEnded++;
        await start(s);
      }
      const f = pick(FAULTS);
      faults.set(f.name, (faults.get(f.name) ?? 0) + 1);
      log(`fault: ${f.name}`);
      // The pod's clock is this machine's: a failed request is the fault's that began last before it.
      timeline.push({ name: f.name, at: Date.now() });
      await f.apply(ctx, pick);
    }

    // Everyone leaves; then clean, as a user would after a chaotic day.
    await Promise.all(sessions.map(async (s) => {
      if (!s.child) return;
      s.child.kill('SIGINT');
      await ended(s.child);
    }));
    writeFileSync(stopFile, '');
    const loaded = await load;
    observe();
    unwatch?.();
    const clean = await cluster.inLaptop('kubectl', ['kt', 'clean', '-n', NS], { timeoutMs: 120_000 });
    if (clean.code !== 0) log(`clean: ${clean.stderr.trim()}`);
    // Graceful deletions finish on their own: each object gets its grace period (and some) to go.
    for (const name of ktObjects(cluster).filter((n) => !n.includes(' '))) {
      const [kind, n] = name.split('/');
      await cluster.waitFor(kind, NS, n, (o) => o === undefined, 45_000).catch(() => undefined);
    }
    const left = ktObjects(cluster);
    // What was left, as the cluster has it: enough to tell which path left it.
    for (const name of left.filter((n) => !n.includes(' '))) {
      const [kind, n] = name.split('/');
      const o = cluster.store.get(kind, NS, n) as (KubeObject & { status?: unknown }) | undefined;
      log(`left: ${name} ${JSON.stringify({ labels: o?.metadata.labels, annotations: o?.metadata.annotations, deletionTimestamp: o?.metadata.deletionTimestamp, status: o?.status })}`);
    }
    const tally = JSON.parse(loaded.stdout || '{"sent":0,"failed":0,"errors":{},"when":[]}') as { sent: number; failed: number; errors: Record<string, number>; when: number[] };
    const byFault = new Map<string, number>();
    for (const t of tally.when) {
      const f = timeline.findLast((x) => x.at <= t)?.name ?? 'before the first fault';
      byFault.set(f, (byFault.get(f) ?? 0) + 1);
    }
    const failedText = tally.failed ? ` (after: ${[...byFault].map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
    const open = (g: Gaps, what: string): string => (g.open() ? `; a Service still had no ${what} at the end` : '');
    const faultText = [...faults].map(([k, v]) => `${v}× ${k}`).join(', ');
    return [
      {
        name: `soak ${minutes} min: requests failed`,
        value: tally.failed,
        unit: 'requests',
        reference: 'requests sent',
        refValue: tally.sent,
        note: `${tally.sent} sent, ${tally.failed} failed ${JSON.stringify(tally.errors)}${failedText}; faults: ${faultText}; ${started} session starts, ${selfEnded} after a session ended by itself; ${ctx.stuck.length ? `stuck after their router was deleted: ${ctx.stuck.join(', ')}` : 'no session stuck'}`,
      },
      {
        name: 'soak: longest time a Service had no ready backend',
        value: gaps.ready.longest,
        unit: 'ms',
        reference: 'soak duration',
        refValue: minutes * 60_000,
        note: `${gaps.ready.longest > 0 ? `service ${gaps.ready.longestWhat}` : 'never'}${open(gaps.ready, 'ready backend')}`,
      },
      {
        name: 'soak: longest time a Service had no backend the service proxy uses',
        value: gaps.serving.longest,
        unit: 'ms',
        reference: 'soak duration',
        refValue: minutes * 60_000,
        note: `ready, or serving while terminating when none is ready (a draining router; kube-proxy falls back to those): ${gaps.serving.longest > 0 ? `service ${gaps.serving.longestWhat}` : 'never'}${open(gaps.serving, 'backend at all')}`,
      },
      {
        name: 'soak: objects left after `kubectl kt clean`',
        value: left.length,
        unit: 'objects',
        reference: 'sessions started',
        refValue: started,
        note: left.length ? left.join(', ') : 'nothing',
      },
    ];
  } finally {
    for (const s of sessions) if (s.child && s.child.exitCode === null) s.child.kill('SIGKILL');
    if (laptops) {
      laptops.kill('SIGTERM');
      await ended(laptops);
    }
    rmSync(dir, { recursive: true, force: true });
    await cluster.stop();
  }
}
