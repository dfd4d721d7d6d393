// The plugin's sessions end to end on the test cluster, as a user runs them
// from the laptop namespace, each number next to one measured in this run:
//  - connect: 256 MiB from a pod to curl on the laptop through the plugin's
//    SOCKS5 proxy, through OpenSSH `ssh -D` over `kubectl port-forward` to a
//    second proxy pod (same server, same kind of stream), through the
//    port-forward alone, and straight from the node; command → connected;
//    DNS query latency through the tunnel in route mode.
//  - exchange: command → exchanging; per-request latency from a pod through
//    the router to the laptop against calling an original pod directly;
//    failover after `kill -9` of the plugin until an original pod answers.
// Every wait is on an event: a line on a child's output, the store, the
// service proxy's sync. Nothing here asserts on time.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE26, ROOT, startCluster, type Cluster } from '../cluster/cluster.ts';
import { ANNOTATIONS, PORTS } from '../../contract/protocol.ts';
import type { BenchRow } from './run.ts';
import { isReady } from '../fixtures/workloads.ts';
import { median } from './stats.ts';
import {
  CURL, download, epochMs, exited, GUARD_MS, json, laptopSpawner, LATENCY_SCRIPT, Lines, openSshArgs, openSshProxyPod, podIp, portForwardPort, serviceOnRouter, setUpBenchNamespace, stop,
} from './session-kit.ts';

const MIB = 1024 * 1024;
const SIZE = 256 * MIB;
const NS = 'bench';
const SOCKS_PORT = 21080;
const HTTP_PORT = 21081;
const SSH_D_PORT = 22080;
const LOCAL = 18080;
const ROUNDS = 2;
const REF_PODS = 3;
const DNS_QUERIES = 300;
const REQUESTS = 500;

// N sequential A queries; prints {"p50","p99","answer"}. argv: name, server ('' = the system resolver), N.
const DNS_SCRIPT = `
const { Resolver } = require('node:dns').promises;
const [name, server, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const r = new Resolver({ timeout: 2000, tries: 1 });
if (server) r.setServers([server]);
(async () => {
  const lat = [];
  let answer;
  for (let i = 0; i < 20 + n; i++) {
    const t0 = performance.now();
    answer = await r.resolve4(name);
    if (i >= 20) lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: lat[Math.floor(n / 2)], p99: lat[Math.floor(n * 0.99)], answer }) + '\\n');
})().catch((e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`;

// Asks the Service again and again, one fresh connection per request (no
// keep-alive, so a dead route cannot hide behind a kept connection), each
// with a short timeout; prints "<epoch ms> <class> <answer>" whenever the
// class of answer changes (laptop, origin, or an error), and exits once an
// original pod answers after the laptop did. Request-driven: no sleeps.
// argv: host, deadline ms.
const FAILOVER_SCRIPT = `
const http = require('node:http');
const dns = require('node:dns').promises;
const now = () => performance.timeOrigin + performance.now();
const deadline = Date.now() + Number(process.argv[2]);
const ask = (ip) => new Promise((resolve) => {
  const req = http.get({ host: ip, port: 80, path: '/who', agent: false, timeout: 500, headers: { host: process.argv[1] } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => { try { resolve(JSON.parse(body).pod); } catch { resolve('http-' + res.statusCode); } });
    res.on('error', (e) => resolve('error-' + (e.code || e.message)));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => resolve('error-' + (e.code || e.message)));
});
(async () => {
  const { address } = await dns.lookup(process.argv[1], { family: 4 });
  let last = '';
  let sawLaptop = false;
  while (Date.now() < deadline) {
    const who = await ask(address);
    const cls = who === 'laptop' ? 'laptop' : who.startsWith('web-') ? 'origin' : who;
    if (cls !== last) process.stdout.write(now().toFixed(1) + ' ' + cls + ' ' + who + '\\n');
    last = cls;
    if (cls === 'laptop') sawLaptop = true;
    if (sawLaptop && cls === 'origin') return;
  }
  process.stdout.write('deadline\\n');
  process.exitCode = 1;
})();
`;

async function createPod(c: Cluster, pod: object): Promise<void> {
  await c.admin.call('POST', `/api/v1/namespaces/${NS}/pods`, pod);
}

/** Create → Ready of one pod through the API. */
async function podReadyMs(c: Cluster, pod: { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: object }): Promise<number> {
  const t0 = performance.now();
  const ready = c.waitFor('pods', NS, pod.metadata.name, isReady, GUARD_MS);
  await createPod(c, pod);
  await ready;
  return performance.now() - t0;
}

/**
 * The plugin's step lines ("✓ creating proxy pod ns/name (0.12 s)") as
 * "creating proxy pod 0.12 s, …", led by the time from spawn to the start of
 * the first step (start-up, kubeconfig, keys).
 */
function steps(lines: Lines, spawnedAt: number): string {
  const found = lines.seen
    .map((l) => ({ at: l.at, m: /^✓ (.*?)(?::.*)? \(([\d.]+) s\)$/.exec(l.line) }))
    .filter((x) => x.m !== null)
    .map(({ at, m }) => ({ at, text: (m as RegExpExecArray)[1].replace(/( (to|on|of|at))? \S+\/\S+/g, ''), secs: Number((m as RegExpExecArray)[2]) }));
  if (found.length === 0) return 'none printed';
  const before = found[0].at - found[0].secs * 1000 - spawnedAt;
  return [`start-up ${(before / 1000).toFixed(2)} s`, ...found.map((f) => `${f.text} ${f.secs.toFixed(2)} s`)].join(', ');
}

/** The plugin process itself: kubectl and `env -S node` exec into it, so the pid we spawned is its pid. */
function assertPlugin(child: ChildProcess, words: string): void {
  const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').join(' ');
  if (!cmdline.includes(words)) throw new Error(`pid ${child.pid} is not the plugin (${cmdline}); not killing it`);
}

export async function run(): Promise<BenchRow[]> {
  const c = await startCluster();
  const dir = mkdtempSync(join(tmpdir(), 'kt-bench-session-'));
  const { spawn: spawnLaptop, stopAll } = laptopSpawner(c);
  try {
    const { sourceIp, web: webPod } = await setUpBenchNamespace(c, NS);
    const clusterIp = String((c.store.get('services', NS, 'web')?.spec as { clusterIP: string }).clusterIP);
    const webIp = podIp(webPod);

    // References for "time to ready": the pods a session cannot do without.
    const shellReady: number[] = [];
    const probeReady: number[] = [];
    for (let i = 0; i < REF_PODS; i++) {
      shellReady.push(await podReadyMs(c, {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `ref-shell-${i}`, namespace: NS },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'main', image: 'shell', command: ['sleep', 'infinity'] }] },
      }));
      probeReady.push(await podReadyMs(c, {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `ref-probe-${i}`, namespace: NS },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'main', image: 'kt-demo/echo', ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, timeoutSeconds: 1 } }],
        },
      }));
    }
    await c.kubectl(['delete', 'pod', '-n', NS, ...Array.from({ length: REF_PODS }, (_, i) => [`ref-shell-${i}`, `ref-probe-${i}`]).flat(), '--wait=false']);

    // ---- connect, socks mode --------------------------------------------------------------
    const connectT0 = performance.now();
    const connect = spawnLaptop('kubectl', ['kt', 'connect', '-n', NS, '--socks-port', String(SOCKS_PORT), '--http-port', String(HTTP_PORT)]);
    const connectErr = new Lines(connect, 'stderr', 'kt connect');
    const podUp = await connectErr.wait(/^✓ waiting for the proxy pod/);
    const connected = await connectErr.wait(/^connected: SOCKS5 proxy/);
    const connectReadyMs = connected.at - connectT0;
    const connectTunnelMs = connected.at - podUp.at;
    const connectSteps = steps(connectErr, connectT0);

    const sshd = await openSshProxyPod(c, NS, dir, 'kt-bench-sshd');
    const sshdRunningAt = sshd.runningAt;
    // The proxy says when it listens (with its own timestamp): no probe reaches its loopback-only port.
    const logs = spawnLaptop('kubectl', ['logs', '-f', '-n', NS, sshd.pod]);
    const listening = await new Lines(logs, 'stdout', 'kubectl logs').wait(/ shadow: ssh on 127\.0\.0\.1:/);
    await stop(logs);
    const proxyStartMs = Date.parse(listening.line.split(' ')[0]) - sshdRunningAt;

    const sshT0 = performance.now();
    const pfSsh = spawnLaptop('kubectl', ['port-forward', '-n', NS, `pod/${sshd.pod}`, `:${PORTS.ssh}`]);
    const pfSshPort = await portForwardPort(pfSsh, 'kubectl port-forward (ssh)');
    const ssh = spawnLaptop('ssh', openSshArgs(sshd.keyFile, pfSshPort, ['-D', `127.0.0.1:${SSH_D_PORT}`]));
    const sshErr = new Lines(ssh, 'stderr', 'ssh -D');
    const sshReady = await sshErr.wait(/channel \d+: new port-listener/);
    const sshReadyMs = sshReady.at - sshT0;
    const cipher = /kex: server->client cipher: (\S+)/.exec(sshErr.text())?.[1] ?? 'unknown';

    const pfSource = spawnLaptop('kubectl', ['port-forward', '-n', NS, 'pod/source', ':9000']);
    const pfSourcePort = await portForwardPort(pfSource, 'kubectl port-forward (source)');

    const url = `http://${sourceIp}:9000/?bytes=${SIZE}`;
    const speeds: Record<'direct' | 'connect' | 'sshD' | 'pf', number[]> = { direct: [], connect: [], sshD: [], pf: [] };
    for (let i = 0; i < ROUNDS; i++) {
      speeds.direct.push(await download(c.inNode('curl', [...CURL, url]), 'direct', SIZE));
      speeds.connect.push(await download(c.inLaptop('curl', [...CURL, '--socks5-hostname', `127.0.0.1:${SOCKS_PORT}`, url]), 'kt connect', SIZE));
      speeds.sshD.push(await download(c.inLaptop('curl', [...CURL, '--socks5-hostname', `127.0.0.1:${SSH_D_PORT}`, url]), 'ssh -D', SIZE));
      speeds.pf.push(await download(c.inLaptop('curl', [...CURL, `http://127.0.0.1:${pfSourcePort}/?bytes=${SIZE}`]), 'port-forward', SIZE));
    }
    await stop(ssh);
    await stop(pfSsh);
    await stop(pfSource);
    await stop(connect, 'SIGINT');
    if (connect.exitCode !== 0) throw new Error(`kt connect exited with ${connect.exitCode}:\n${connectErr.text()}`);
    await c.kubectl(['delete', 'pod', '-n', NS, sshd.pod, '--wait=false']);

    // ---- connect, route mode: DNS through the tunnel ------------------------------------------
    const fqdn = `web.${NS}.svc.cluster.local`;
    const route = spawnLaptop('kubectl', ['kt', 'connect', '-n', NS, '--mode', 'route']);
    const routeErr = new Lines(route, 'stderr', 'kt connect --mode route');
    await routeErr.wait(/^connected: every process here reaches/);
    const viaTunnel = json<{ p50: number; p99: number; answer: string[] }>(await c.inLaptop(NODE26, ['-e', DNS_SCRIPT, fqdn, '', String(DNS_QUERIES)]), 'DNS via the tunnel');
    const viaNode = json<{ p50: number; p99: number; answer: string[] }>(await c.inNode(NODE26, ['-e', DNS_SCRIPT, fqdn, c.dnsIp, String(DNS_QUERIES)]), 'DNS from the node');
    // A single label: the proxy's first search candidate (web.bench.svc.cluster.local) answers. The
    // four-dot name above has fewer dots than the pod's ndots (5), so the proxy tries it under each
    // search suffix first, as glibc would: three NXDOMAINs before the answer.
    const shortViaTunnel = json<{ p50: number; p99: number; answer: string[] }>(await c.inLaptop(NODE26, ['-e', DNS_SCRIPT, 'web', '', String(DNS_QUERIES)]), 'DNS via the tunnel (short name)');
    for (const [what, r] of [[`${fqdn} via the tunnel`, viaTunnel], [`${fqdn} from the node`, viaNode], ['web via the tunnel', shortViaTunnel]] as const) {
      if (r.answer.join() !== clusterIp) throw new Error(`DNS: ${what} → ${r.answer.join()}, expected ${clusterIp}`);
    }
    await stop(route, 'SIGINT');
    if (route.exitCode !== 0) throw new Error(`kt connect --mode route exited with ${route.exitCode}:\n${routeErr.text()}`);

    // ---- exchange --------------------------------------------------------------------------
    const laptop = spawnLaptop(NODE26, [join(ROOT, 'test/fixtures/echo/server.ts')], { PORT: String(LOCAL), POD_NAME: 'laptop' });
    await new Lines(laptop, 'stdout', 'laptop echo server').wait(/echo listening/);
    const latency = async (target: string, want: (pods: string[]) => boolean): Promise<{ p50: number; p99: number }> => {
      const r = json<{ p50: number; p99: number; pods: string[] }>(await c.inPod(NS, 'client', NODE26, ['-e', LATENCY_SCRIPT, target, String(REQUESTS)], { timeoutMs: GUARD_MS }), `latency ${target}`);
      if (!want(r.pods)) throw new Error(`latency ${target}: answered by ${r.pods.join(', ')}`);
      return r;
    };
    const directUrl = `http://${webIp}:8080/`;
    const direct = [await latency(directUrl, (p) => p.join() === webPod?.metadata.name)];

    const exchangeT0 = performance.now();
    const exchange = spawnLaptop('kubectl', ['kt', 'exchange', 'svc/web', '--expose', `${LOCAL}:80`, '-n', NS]);
    const exchangeErr = new Lines(exchange, 'stderr', 'kt exchange');
    const exchanging = await exchangeErr.wait(/^exchanging: web:80 -> localhost:/);
    const exchangeReadyMs = exchanging.at - exchangeT0;
    const routedIn = /routed in ([\d.]+) s/.exec(exchanging.line)?.[1] ?? '?';
    const exchangeSteps = steps(exchangeErr, exchangeT0);
    const router = await serviceOnRouter(c, NS, 'web');
    const svcUrl = `http://web.${NS}/`;
    const exchanged = [await latency(svcUrl, (p) => p.join() === 'laptop')];
    direct.push(await latency(directUrl, (p) => p.join() === webPod?.metadata.name));
    exchanged.push(await latency(svcUrl, (p) => p.join() === 'laptop'));
    const best = (runs: { p50: number; p99: number }[]) => runs.reduce((a, b) => (b.p50 < a.p50 ? b : a));
    const bestDirect = best(direct);
    const bestExchanged = best(exchanged);

    // kill -9 the plugin while a pod keeps asking; the pod says when an original pod answers.
    assertPlugin(exchange, 'kubectl-kt exchange');
    // pods/exec is not the plugin's to have: the asker is the admin's.
    const asker = spawnLaptop('kubectl', ['exec', '-n', NS, 'client', '--', NODE26, '-e', FAILOVER_SCRIPT, `web.${NS}`, '30000'], { KUBECONFIG: c.kubeconfig });
    const askerOut = new Lines(asker, 'stdout', 'failover loop');
    const onLaptop = await askerOut.wait(/^\S+ laptop /);
    const killAt = epochMs();
    exchange.kill('SIGKILL');
    const back = await askerOut.wait(/^\S+ origin /, onLaptop.index + 1);
    const failoverMs = Number(back.line.split(' ')[0]) - killAt;
    const between = askerOut.seen.slice(onLaptop.index + 1, back.index).map((l) => l.line.split(' ')[1]);
    await exited(exchange);
    await stop(asker);

    // The crash left the router and its route annotation; age the heartbeat (as time would) and clean.
    const routerNow = c.store.get('pods', NS, router?.metadata.name ?? '');
    const routeKey = Object.keys(routerNow?.metadata.annotations ?? {}).find((k) => k.startsWith(`${ANNOTATIONS.routes}.`));
    let cleaned = 'clean: no route annotation found';
    if (routerNow && routeKey) {
      const old = { ...(JSON.parse(routerNow.metadata.annotations?.[routeKey] ?? '{}') as object), heartbeat: '2020-01-01T00:00:00Z' };
      await c.kubectl(['annotate', '-n', NS, `pod/${routerNow.metadata.name}`, '--overwrite', `${routeKey}=${JSON.stringify(old)}`]);
      const clean = await c.inLaptop('kubectl', ['kt', 'clean', '-n', NS], { timeoutMs: GUARD_MS });
      const selector = (c.store.get('services', NS, 'web')?.spec as { selector?: Record<string, string> }).selector;
      cleaned = clean.code === 0 && JSON.stringify(selector) === JSON.stringify({ app: 'web' })
        ? 'kt clean restored the Service afterwards'
        : `kt clean: exit ${clean.code}, selector ${JSON.stringify(selector)}: ${clean.stderr.trim()}`;
    }
    if (!cleaned.startsWith('kt clean restored')) process.stderr.write(`bench: session: ${cleaned}\n`);
    await stop(laptop);

    const best2 = (xs: number[]) => Math.max(...xs);
    const bestOf = `best of ${ROUNDS}`;
    return [
      {
        name: `connect: 256 MiB pod → laptop, socks (${bestOf})`,
        value: best2(speeds.connect), unit: 'MiB/s',
        reference: 'curl node netns → pod IP', refValue: best2(speeds.direct),
        note: 'curl --socks5-hostname in the laptop netns → kt connect → client-node WebSocket port-forward → kube-apiserver → kubelet API → pod agent → SSH (ssh2) → proxy → pod',
      },
      {
        name: `connect: 256 MiB, kt connect vs ssh -D (${bestOf})`,
        value: best2(speeds.connect), unit: 'MiB/s',
        reference: 'OpenSSH ssh -D over kubectl port-forward', refValue: best2(speeds.sshD),
        note: `same proxy image and server, a second proxy pod with our own key; OpenSSH negotiated ${cipher}; kubectl v1.37.2 port-forward vs the plugin's client-node WebSocket, both through kube-apiserver v1.37.2`,
      },
      {
        name: `connect: 256 MiB, ssh -D over port-forward (${bestOf})`,
        value: best2(speeds.sshD), unit: 'MiB/s',
        reference: 'kubectl port-forward alone to the pod', refValue: best2(speeds.pf),
        note: 'what SSH costs on top of the port-forward it rides in',
      },
      {
        name: 'connect: command → connected (socks)',
        value: connectReadyMs, unit: 'ms',
        reference: `shell pod create → Ready (median of ${REF_PODS})`, refValue: median(shellReady),
        note: `spawn of kubectl kt connect to its "connected:" line: plugin start, pod POST, pod Running, proxy start, port-forward + SSH handshake, listeners; the reference is the pod start no pod-based tool avoids; steps: ${connectSteps}`,
      },
      {
        name: 'connect: proxy pod Running → connected',
        value: connectTunnelMs, unit: 'ms',
        reference: 'proxy start + port-forward + ssh -D ready', refValue: Math.max(0, proxyStartMs) + sshReadyMs,
        note: `from the plugin's "✓ waiting for the proxy pod" line (its watch saw Running) to "connected:" (it retries until the proxy listens); reference: the second proxy pod's Running → its "ssh on" log timestamp (${proxyStartMs.toFixed(0)} ms) + kubectl port-forward start + OpenSSH handshake to its -D listener (${sshReadyMs.toFixed(0)} ms)`,
      },
      {
        name: 'connect route: DNS A query p50 (laptop resolver)',
        value: viaTunnel.p50, unit: 'ms',
        reference: 'node netns → cluster DNS p50', refValue: viaNode.p50,
        note: `${DNS_QUERIES} sequential resolve4(${fqdn}) with Node's resolver: laptop resolv.conf → the plugin's local DNS → tunnel → proxy's forwarder → cluster DNS; reference straight to ${c.dnsIp}`,
      },
      {
        name: 'connect route: DNS A query p99 (laptop resolver)',
        value: viaTunnel.p99, unit: 'ms',
        reference: 'node netns → cluster DNS p99', refValue: viaNode.p99,
      },
      {
        name: 'connect route: DNS A query p50, short name `web`',
        value: shortViaTunnel.p50, unit: 'ms',
        reference: 'node netns → cluster DNS p50', refValue: viaNode.p50,
        note: 'resolve4(\'web\') through the same path; the proxy\'s first search candidate answers, where the four-dot name is tried under the pod\'s three search suffixes first (ndots 5, as glibc): the difference is those three NXDOMAINs',
      },
      {
        name: 'exchange: command → exchanging',
        value: exchangeReadyMs, unit: 'ms',
        reference: `echo pod with HTTP probe create → Ready (median of ${REF_PODS})`, refValue: median(probeReady),
        note: `spawn of kubectl kt exchange to its "exchanging:" line (the plugin says routed in ${routedIn} s; steps in the order they ended: ${exchangeSteps}); the router is such a pod (HTTP readiness probe, periodSeconds 1), plus origin Service and the selector patch; the tunnel and the route go up inside the wait for Ready, from the moment the router's container runs`,
      },
      {
        name: 'exchange: request latency p50 via exchange',
        value: bestExchanged.p50, unit: 'ms',
        reference: 'client pod → original pod IP p50', refValue: bestDirect.p50,
        note: `${REQUESTS} sequential keep-alive GETs from a pod (better of 2 alternating runs): http://web.${NS}/ → router → SSH over port-forward → plugin → laptop echo server`,
      },
      {
        name: 'exchange: request latency p99 via exchange',
        value: bestExchanged.p99, unit: 'ms',
        reference: 'client pod → original pod IP p99', refValue: bestDirect.p99,
      },
      {
        name: 'exchange: failover after kill -9',
        value: failoverMs, unit: 'ms',
        reference: 'goal', refValue: 1000,
        note: `kill -9 of the plugin → first answer from an original pod to a pod asking the Service in a loop (fresh connection per request, 500 ms timeout)${between.length ? `; in between: ${between.join(', ')}` : ''}; ${cleaned}`,
      },
    ];
  } finally {
    await stopAll();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
