// The proxy's resident memory, as its pods run it: the bundle that goes into
// the image (dist/kt-proxy.cjs) under the heap cap the pods set, against a
// bare node process of the same executable measured in the same run. The
// shadow and the router idle, each also with a laptop's SSH session
// connected; the router pod's standby (a second container) idle; the router under 1,000 requests/s of HTTP/1.1 with a mesh
// route registered, against its goal (90 MiB). Resident memory counts the
// pages of the node executable the process has touched, and how many a
// touch maps depends on how the file came into the page cache (a cold read
// maps large folios: the same bare process shows 42 or 66 MiB), so every
// process here runs the same executable, and each row's note gives the
// anonymous part, which is the process's own.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, PROTOCOL_VERSION, ROUTER_ENV } from '../../contract/protocol.ts';
import { STANDBY_HEAP_MB } from '../../plugin/src/kube/router-pod.ts';
import { PROXY_HEAP_MB } from '../../plugin/src/kube/shadow.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import type { Tunnel } from '../../plugin/src/tunnel/index.ts';
import { loadOwn, ORIGIN, start, startRouter, type Proc } from './router.bench.ts';
import type { BenchRow } from './run.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROXY = join(ROOT, 'dist', 'kt-proxy.cjs');
/** How the pods start it (plugin/src/kube/shadow.ts sets the same cap in NODE_OPTIONS). */
const PROXY_ARGS = [`--max-old-space-size=${PROXY_HEAP_MB}`, PROXY];
/** Samples over which an idle process's memory is read; the median counts. */
const SAMPLES = 10;
const SAMPLE_MS = 200;
const LOAD_RATE = 1000;
const LOAD_MS = 8000;
const LOAD_GOAL_MIB = 90;

interface Memory {
  rss: number;
  anon: number;
}

function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
}

/** The median of SAMPLES readings, SAMPLE_MS apart (a process settling after start-up). */
async function idle(pid: number): Promise<Memory> {
  const seen: Memory[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    seen.push(memory(pid));
  }
  const mid = (k: keyof Memory) => seen.map((m) => m[k]).sort((a, b) => a - b)[Math.floor(SAMPLES / 2)];
  return { rss: mid('rss'), anon: mid('anon') };
}

function kill(p: Proc): void {
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

const anonNote = (m: Memory, ref: Memory) => `anonymous ${m.anon.toFixed(1)} MiB vs ${ref.anon.toFixed(1)} (bare node)`;

export async function run(): Promise<BenchRow[]> {
  const procs: Proc[] = [];
  const tunnels: Tunnel[] = [];
  try {
    const key = makeSessionKey();
    const bare = await start(['-e', "process.stderr.write('ready\\n'); setInterval(() => {}, 1 << 30);"], {}, /ready/);
    procs.push(bare);
    const bareMem = await idle(bare.child.pid as number);

    const shadow = await start(PROXY_ARGS, { [ENV.role]: 'shadow', [ENV.sshPort]: '0', [ENV.dnsPort]: '0', [ENV.authorizedKeys]: key.publicKey }, /shadow: ssh on 127\.0\.0\.1:(\d+)/);
    procs.push(shadow);
    const shadowIdle = await idle(shadow.child.pid as number);
    tunnels.push(await openTunnel({ stream: net.connect(Number(shadow.match[1]), '127.0.0.1'), privateKey: key.privateKey }));
    const shadowConnected = await idle(shadow.child.pid as number);

    const origin = await start(['-e', ORIGIN], { NAME: 'origin' }, /listening on (\d+)/);
    procs.push(origin);
    const laptop = await start(['-e', ORIGIN], { NAME: 'laptop' }, /listening on (\d+)/);
    procs.push(laptop);
    const router = await startRouter(key, Number(origin.match[1]), PROXY_ARGS);
    procs.push(router);
    const pid = router.child.pid as number;
    const routerIdle = await idle(pid);
    // The router pod's second container, alone: it serves the port itself (nobody links), everything to the origin.
    const standby = await start([`--max-old-space-size=${STANDBY_HEAP_MB}`, PROXY], {
      [ENV.role]: 'standby',
      [ROUTER_ENV.ports]: JSON.stringify([{ servicePort: 80, listenPort: 0, originPort: Number(origin.match[1]) }]),
      [ROUTER_ENV.origin]: '127.0.0.1',
      [ROUTER_ENV.standby]: `kt-bench-standby-${process.pid}`,
    }, /standby: serving every request/);
    procs.push(standby);
    const standbyIdle = await idle(standby.child.pid as number);
    const tunnel = await openTunnel({ stream: net.connect(router.sshPort, '127.0.0.1'), privateKey: key.privateKey });
    tunnels.push(tunnel);
    await requestRoute(
      tunnel,
      { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: [{ name: 'x-kt-version', value: 'bench' }], owner: 'bench', session: 'bench' },
      { host: '127.0.0.1', port: Number(laptop.match[1]) },
    );
    const routerConnected = await idle(pid);
    let peak: Memory = { rss: 0, anon: 0 };
    const sampler = setInterval(() => {
      const m = memory(pid);
      if (m.rss > peak.rss) peak = m;
    }, SAMPLE_MS);
    const load = await loadOwn(router.port, '', LOAD_MS, LOAD_RATE);
    clearInterval(sampler);
    if (load.errors > 0) throw new Error(`${load.errors} requests failed under load`);

    const ref = `bare node, ${bareMem.rss.toFixed(1)} MiB`;
    return [
      { name: 'memory: shadow proxy idle', value: shadowIdle.rss, unit: 'MiB', reference: ref, refValue: bareMem.rss, note: `goal ≤ 1.25×; ${anonNote(shadowIdle, bareMem)}` },
      { name: 'memory: shadow proxy, a laptop connected', value: shadowConnected.rss, unit: 'MiB', reference: ref, refValue: bareMem.rss, note: anonNote(shadowConnected, bareMem) },
      { name: 'memory: router idle', value: routerIdle.rss, unit: 'MiB', reference: ref, refValue: bareMem.rss, note: `goal ≤ 1.25×; ${anonNote(routerIdle, bareMem)}` },
      { name: 'memory: router pod\'s standby, idle', value: standbyIdle.rss, unit: 'MiB', reference: ref, refValue: bareMem.rss, note: `its container requests 64 Mi; ${anonNote(standbyIdle, bareMem)}` },
      { name: 'memory: router, a mesh session connected', value: routerConnected.rss, unit: 'MiB', reference: ref, refValue: bareMem.rss, note: anonNote(routerConnected, bareMem) },
      {
        name: `memory: router peak at ${LOAD_RATE.toLocaleString('en')} req/s (HTTP/1.1)`,
        value: peak.rss,
        unit: 'MiB',
        reference: 'goal',
        refValue: LOAD_GOAL_MIB,
        note: `${(LOAD_MS / 1000).toFixed(0)} s, ${Math.round(load.rps)} req/s reached, p99 ${load.p99.toFixed(1)} ms; anonymous ${peak.anon.toFixed(1)} MiB at the peak`,
      },
    ];
  } finally {
    await Promise.all(tunnels.map((t) => t.close()));
    for (const p of procs) kill(p);
  }
}
