// Full-link routing end to end on the test cluster. A chain
// front → middle → back of demo echo servers in chain mode, each passing
// `baggage` and `x-kt-version` on to the next hop (test/fixtures/echo/chain.ts,
// grpc.ts), as instrumented services do:
//  - `mesh svc/back --baggage kt=alice`: a request into front whose baggage
//    has kt=alice ends on alice's laptop, one without ends on the original
//    back; over HTTP/1.1 and over gRPC metadata;
//  - `connect --header x-kt-version=alice -- curl` reaches alice's meshed
//    laptop port, a plain `connect -- curl` the original pods;
//  - the router's counts of matching, mismatching and untagged requests, read
//    back from `status -o json` and from the dashboard page in Chromium;
//  - a gRPC channel opened before the mesh stays on the original pod, tagged
//    or not, and its tagged calls reach the laptop once it reconnects.
// Each first shows the request reaching the original pods without the tool.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { NODE26, ROOT, startCluster, type Cluster } from '../cluster/cluster.ts';
import { applyApps, clientPod, ECHO_GRPC_PORT, echoApp, localEcho, namespace } from '../fixtures/workloads.ts';
import { exited, stderrOf, waitForLine, waitNoKtPods } from './helpers.ts';

const NS = 'shop';
const CHROMIUM = '/usr/bin/chromium';
const LAPTOP = { http: 18091, grpc: 18092 } as const;
const GRPC_CLIENT = join(ROOT, 'test/fixtures/echo/grpc-client.ts');
const fqdn = (svc: string): string => `${svc}.${NS}.svc.cluster.local`;

/** One hop of the chain: the echo server over HTTP and gRPC, passing requests on to `next`. */
function hop(name: string, next?: string): string {
  const env = [
    { name: 'GRPC_PORT', value: String(ECHO_GRPC_PORT) },
    ...(next ? [{ name: 'NEXT_URL', value: `http://${fqdn(next)}` }, { name: 'GRPC_NEXT', value: `${fqdn(next)}:${ECHO_GRPC_PORT}` }] : []),
  ];
  return echoApp(NS, name, { replicas: 1, grpc: true, env });
}

let cluster: Cluster;
let laptop: ChildProcess;

/** Resolves once the output collected so far matches (checked now and on each chunk of stderr). */
function outputMatches(child: ChildProcess, out: () => string, re: RegExp, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!re.test(out())) return;
      clearTimeout(timer);
      child.stderr?.off('data', check);
      resolve();
    };
    const timer = setTimeout(() => {
      child.stderr?.off('data', check);
      reject(new Error(`no ${re} in:\n${out()}`));
    }, timeoutMs);
    child.stderr?.on('data', check);
    check();
  });
}

async function stop(child: ChildProcess, out: () => string): Promise<void> {
  const gone = exited(child);
  child.kill('SIGINT');
  assert.equal(await gone, 0, out());
}

/** The chains (pods a request went through) of HTTP GETs from the client pod, one per header set, over one keep-alive connection. */
async function httpChains(url: string, headerSets: string[][]): Promise<string[]> {
  const args: string[] = [];
  headerSets.forEach((hs, i) => {
    if (i > 0) args.push('--next');
    args.push('-sS', '--max-time', '10');
    for (const h of hs) args.push('-H', h);
    args.push(url);
  });
  const r = await cluster.inPod(NS, 'client', 'curl', args, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => {
    const a = JSON.parse(l) as { chain?: string; pod: string };
    return a.chain ?? a.pod;
  });
}

/** The chain of one gRPC Who call from the client pod (a new channel). */
async function grpcChain(target: string, baggage?: string): Promise<string> {
  const r = await cluster.inPod(NS, 'client', NODE26, [GRPC_CLIENT, target, ...(baggage ? [baggage] : [])], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(r.stdout) as { pod?: string; error?: string };
  assert.ok(a.pod, a.error ?? r.stdout);
  return a.pod;
}

/** Polls until `get` satisfies `ok` (routes apply once the Service's endpoints reach the service proxy). */
async function eventually<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  while (performance.now() < deadline) {
    last = await get();
    if (ok(last)) return last;
  }
  throw new Error(`${what}: not within ${timeoutMs} ms; last ${JSON.stringify(last)}`);
}

const endsOnBack = (chain: string): boolean => /(^|> )back-[^ ]+$/.test(chain);
const endsOnAlice = (chain: string): boolean => /(^|> )alice$/.test(chain);

function mesh(args: string[], env?: Record<string, string>): ChildProcess {
  return cluster.spawnInLaptop('kubectl', ['kt', 'mesh', '-n', NS, 'svc/back', ...args], env ? { env } : {});
}

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), hop('back'), hop('middle', 'back'), hop('front', 'middle'), clientPod(NS)], { deployments: ['back', 'middle', 'front'], pods: ['client'] });
  // Alice's laptop runs her version of back: the demo app, HTTP and gRPC, answering as "alice".
  laptop = await localEcho(cluster, LAPTOP.http, 'alice', { env: { GRPC_PORT: String(LAPTOP.grpc) } });
});

after(async () => {
  if (laptop) {
    const gone = exited(laptop);
    laptop.kill('SIGTERM');
    await gone;
  }
  await cluster?.stop();
});

describe('full-link routing', () => {
  test('mesh --baggage kt=alice on the last hop: tagged requests into front end on the laptop, over HTTP/1.1 and gRPC', async () => {
    const front = `http://${fqdn('front')}/who`;
    // Without the tool: the tag travels the chain and ends on the original back.
    const [plain] = await httpChains(front, [['baggage: kt=alice']]);
    assert.match(plain, /^front-\S+ > middle-\S+ > back-\S+$/);
    assert.ok(endsOnBack(await grpcChain(`${fqdn('front')}:9090`, 'kt=alice')));

    const child = mesh(['--expose', `${LAPTOP.http}:80,${LAPTOP.grpc}:9090`, '--baggage', 'kt=alice']);
    const out = stderrOf(child);
    try {
      await waitForLine(child, /^meshing: back:80 -> localhost:18091, back:9090 -> localhost:18092 for requests with baggage kt=alice/);
      await outputMatches(child, out, /note: connections opened before this \(gRPC channels, HTTP keep-alive pools, WebSockets\) stay on the original pods/);
      await eventually(() => httpChains(front, [['baggage: kt=alice']]), (c) => endsOnAlice(c[0]), 10_000, 'tagged request to alice');
      const chains = await httpChains(front, [
        ['baggage: kt=alice'],
        [],
        ['baggage: kt=bob'],
        ['baggage: userId=42,kt=alice;ttl=30'],
        ['baggage: userId=42', 'baggage: kt = alice'],
        ['baggage: kt=al%69ce'],
        ['baggage: kt=alice,broken member'],
        ['x-kt-version: alice'],
      ]);
      assert.deepEqual(chains.map((c) => (endsOnAlice(c) ? 'alice' : endsOnBack(c) ? 'back' : c)), ['alice', 'back', 'back', 'alice', 'alice', 'alice', 'back', 'back']);
      assert.match(chains[0], /^front-\S+ > middle-\S+ > alice$/);

      // h2c by prior knowledge, straight to back: routed per stream on the same rule.
      const h2 = await cluster.inPod(NS, 'client', 'curl', ['-sS', '--max-time', '10', '--http2-prior-knowledge', '-H', 'baggage: kt=alice', `http://${fqdn('back')}/who`], { timeoutMs: 30_000 });
      assert.equal((JSON.parse(h2.stdout) as { pod: string; httpVersion: string }).pod, 'alice', h2.stderr);

      // gRPC: the baggage rides as metadata, each hop passes it on.
      assert.match(await grpcChain(`${fqdn('front')}:9090`, 'kt=alice'), /^front-\S+ > middle-\S+ > alice$/);
      assert.ok(endsOnBack(await grpcChain(`${fqdn('front')}:9090`)));
      assert.ok(endsOnBack(await grpcChain(`${fqdn('front')}:9090`, 'kt=bob')));
      assert.match(await grpcChain(`${fqdn('middle')}:9090`, 'other=1,kt=alice'), /^middle-\S+ > alice$/);

      const status = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS]);
      assert.match(status.stdout, /mesh baggage kt=alice :80/);
    } finally {
      await stop(child, out);
    }
    assert.ok(endsOnBack((await httpChains(front, [['baggage: kt=alice']]))[0]));
    await waitNoKtPods(cluster);
  });

  test('connect --header x-kt-version=alice -- curl reaches the meshed laptop; a plain connect -- curl the originals', async () => {
    const child = mesh(['--expose', `${LAPTOP.http}:80`, '--header', 'x-kt-version=alice']);
    const out = stderrOf(child);
    const curl = async (flags: string[], svc: string) => {
      const r = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, ...flags, '--', 'curl', '-sS', '--max-time', '10', `http://${svc}/who`], { timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      const a = JSON.parse(r.stdout) as { chain?: string; pod: string };
      return a.chain ?? a.pod;
    };
    try {
      await waitForLine(child, /^meshing: back:80 -> localhost:18091 for requests with x-kt-version: alice/);
      assert.ok(endsOnBack(await curl([], 'back')), 'plain connect reaches the original back');
      assert.equal(await curl(['--header', 'x-kt-version=alice'], 'back'), 'alice');
      // The header rides the whole chain from the laptop: front and middle pass it on.
      assert.match(await curl(['--header', 'x-kt-version=alice'], 'front'), /^front-\S+ > middle-\S+ > alice$/);
      assert.ok(endsOnBack(await curl(['--header', 'x-kt-version=bob'], 'back')));
      const refused = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--header', 'x~=a', '--', 'true']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /KT_ERR_BAD_VALUE/);
      const routeMode = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--mode', 'route', '--baggage', 'kt=alice']);
      assert.equal(routeMode.code, 2);
      assert.match(routeMode.stderr, /^error KT_ERR_BAD_VALUE: invalid --baggage "kt=alice": the HTTP proxy of --mode socks adds it; --mode route passes connections as they are/m);
    } finally {
      await stop(child, out);
    }
    await waitNoKtPods(cluster);
  });

  test('the router counts matching, mismatching and untagged requests; status -o json and the dashboard show the same numbers', async () => {
    const child = mesh(['--expose', `${LAPTOP.http}:80`, '--baggage', 'kt=alice']);
    const out = stderrOf(child);
    const want = { matched: 7, otherValue: 5, untagged: 9 };
    let dashboard: ChildProcess | undefined;
    let browser: import('playwright-core').Browser | undefined;
    try {
      await waitForLine(child, /^meshing: /);
      const back = `http://${fqdn('back')}/who`;
      await eventually(() => httpChains(back, [['baggage: kt=alice']]), (c) => c[0] === 'alice', 10_000, 'the route is live');
      // The probe above counts too: one matched, maybe a few untagged-route misses before the endpoints moved (those never reached the router).
      const sets: string[][] = [
        ...Array.from({ length: want.matched - 1 }, () => ['baggage: kt=alice']),
        ...Array.from({ length: want.otherValue }, (_, i) => [`baggage: kt=bob${i}`]),
        ...Array.from({ length: want.untagged }, (_, i) => (i % 2 ? [] : ['baggage: userId=1'])),
      ];
      const chains = await httpChains(back, sets);
      assert.equal(chains.filter((c) => c === 'alice').length, want.matched - 1);

      type Status = { services: { name: string; routes: { traffic?: { windowSeconds: number; ports: { servicePort: number; matched: number; otherValue: number; untagged: number; requests: number; portUntagged: number }[] } }[] }[] };
      const counts = async () => {
        const r = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS, '-o', 'json']);
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as Status).services.find((s) => s.name === 'back')?.routes[0]?.traffic?.ports[0];
      };
      // The counts ride the session's heartbeat (every 10 s) into its route annotation.
      const seen = await eventually(counts, (c) => c?.requests === 21, 30_000, 'status shows the counts');
      assert.deepEqual(seen, { servicePort: 80, ...want, requests: 21, portUntagged: 9 });
      const text = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS]);
      assert.match(text.stdout, /7 matched, 5 other value, 9 untagged of 21 \(last 60 s\)/);

      if (existsSync(CHROMIUM)) {
        dashboard = spawn(join(ROOT, 'dist', 'kubectl-kt'), ['dashboard', '-n', NS, '--no-open'], { env: cluster.laptopEnv, stdio: ['ignore', 'pipe', 'pipe'] });
        const line = await waitForLine(dashboard, /^dashboard for namespace shop: http:\/\/127\.0\.0\.1:\d+\//);
        const { chromium } = await import('playwright-core');
        browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
        const page = await browser.newPage();
        await page.goto(/http:\/\/\S+/.exec(line)![0]);
        const el = await page.waitForSelector('tr[data-service="back"] [data-counts="80"]', { timeout: 15_000 });
        assert.deepEqual(await el.evaluate((e) => [e.getAttribute('data-matched'), e.getAttribute('data-other'), e.getAttribute('data-untagged'), e.getAttribute('data-requests')]), ['7', '5', '9', '21']);
        assert.match((await el.textContent()) ?? '', /7 matched · 5 other value · 9 untagged of 21/);
        assert.match((await page.textContent('tr[data-service="back"] [data-route]')) ?? '', /baggage kt=alice → \S+@\S+/, 'the baggage rule is shown like a header rule');

        // Live: more requests show up at the next heartbeat without a reload.
        await httpChains(back, [['baggage: kt=alice'], ['baggage: kt=alice']]);
        await page.waitForSelector('tr[data-service="back"] [data-counts="80"][data-matched="9"]', { timeout: 30_000 });
      } else {
        process.stdout.write('# chain: chromium not installed, dashboard part skipped (apt-get install chromium)\n');
      }
    } finally {
      await browser?.close();
      if (dashboard) {
        const gone = exited(dashboard);
        dashboard.kill('SIGINT');
        await gone;
      }
      await stop(child, out);
    }
    await waitNoKtPods(cluster);
  });

  test('mesh says so when its route matched nothing for a whole window while the Service had requests (KT_COUNT_WINDOW_SECONDS=5)', async () => {
    const child = mesh(['--expose', `${LAPTOP.http}:80`, '--baggage', 'kt=carol'], { KT_COUNT_WINDOW_SECONDS: '5' });
    const out = stderrOf(child);
    try {
      await waitForLine(child, /^meshing: /);
      const router = cluster.store.list('pods', NS).find((p) => p.metadata.name.startsWith('kt-router-back'));
      const env = (router?.spec as { containers: { env?: { name: string; value?: string }[] }[] }).containers[0].env ?? [];
      assert.equal(env.find((e) => e.name === 'KT_ROUTER_COUNT_WINDOW_SECONDS')?.value, '5', 'the window reached the new router');
      // Untagged traffic (the caller does not pass the tag on) until mesh says so; it reads the counts at its 10 s heartbeat.
      const re = /^• no request carried baggage kt=carol in the last 5 s; \d+ untagged requests? and \d+ with another value reached back — is the tag passed on by the caller\?/m;
      const deadline = performance.now() + 45_000;
      while (!re.test(out()) && performance.now() < deadline) await httpChains(`http://${fqdn('back')}/who`, [[], ['baggage: kt=dave']]);
      assert.match(out(), re);
    } finally {
      await stop(child, out);
    }
    await waitNoKtPods(cluster);
  });

  test('a gRPC channel opened before the mesh stays on the original pod, tagged or not; after it reconnects, tagged calls reach the laptop', async () => {
    const ip = String((cluster.store.get('services', NS, 'back')?.spec as { clusterIP: string }).clusterIP);
    // A long-lived client (as a service keeps its channel), in the node's network where ClusterIPs work.
    const client = spawn('ip', ['netns', 'exec', cluster.nodeNetns, NODE26, GRPC_CLIENT, `${ip}:9090`, '--stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: client.stdout! })[Symbol.asyncIterator]();
    const ask = async (cmd: string): Promise<{ pod?: string; error?: string }> => {
      client.stdin!.write(`${cmd}\n`);
      const next = await lines.next();
      assert.ok(!next.done, 'the gRPC client ended');
      return JSON.parse(next.value) as { pod?: string; error?: string };
    };
    let child: ChildProcess | undefined;
    let out = (): string => '';
    try {
      const first = await ask('who kt=alice');
      assert.match(first.pod ?? '', /^back-/, first.error ?? 'no pod');
      child = mesh(['--expose', `${LAPTOP.grpc}:9090`, '--baggage', 'kt=alice']);
      out = stderrOf(child);
      await waitForLine(child, /^meshing: /);
      // New channels are routed: the mesh works.
      await eventually(() => grpcChain(`${fqdn('back')}:9090`, 'kt=alice'), (p) => p === 'alice', 10_000, 'a new channel reaches alice');
      // The old channel's connection was made to the pod itself (the service proxy keeps it there).
      assert.equal((await ask('who kt=alice')).pod, first.pod, 'the old channel stays on the original pod, tagged');
      assert.equal((await ask('who -')).pod, first.pod, 'and untagged');
      await ask('reconnect');
      assert.equal((await ask('who kt=alice')).pod, 'alice', 'after reconnecting, tagged calls reach the laptop');
      assert.match((await ask('who -')).pod ?? '', /^back-/, 'untagged calls the original pods');
    } finally {
      client.stdin!.end();
      await exited(client);
      if (child) await stop(child, out);
    }
    await waitNoKtPods(cluster);
  });
});
