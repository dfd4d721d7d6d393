// Faults a laptop really meets, end to end on the test cluster, each shown
// happening first (the packets counted as dropped, the process stopped, the
// API server's process gone, the router's process killed) and then the
// outcome, with its figures printed:
//   - silent network loss during exchange, mesh, preview and connect: the
//     router notices on its own (originals serve within 10 s), the plugin
//     says so in one line, and every session restores itself when the path
//     is back; a session whose router was removed meanwhile takes the
//     Service over again as if new;
//   - the last session leaving while another developer joins its router
//     (the joiner's path to the API server held between its read of the
//     router and its routes): the joiner takes the Service over as new;
//   - laptop sleep (SIGSTOP longer than the router waits, then SIGCONT);
//   - kube-apiserver restarted mid-session;
//   - the router's container killed and restarted in its pod.
// One cluster for the file.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename, dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { ANNOTATIONS, LABELS } from '../../contract/protocol.ts';
import { ROUTE_ANNOTATION_PREFIX } from '../../plugin/src/status/model.ts';
import { applyApps, clientPod, echoApp, localEcho, namespace } from '../fixtures/workloads.ts';
import { exited, holdableRelay, nothingLeftIn, serviceShape, stderrOf, until, waitForLine, who } from './helpers.ts';

const NS = 'shop';
/** Local ports: the exchange's, the mesh's, the preview's, three colleagues' (outside the laptop), the connect's SOCKS and HTTP proxies. */
const PORT = { exchange: 18090, mesh: 18091, preview: 18092, colleague: 18093, joiner: 18094, leaver: 18095, socks: 21080, http: 21081 } as const;
const API = `http://api.${NS}.svc.cluster.local/who`;
const WEB = `http://web.${NS}.svc.cluster.local/who`;
const PREVIEW = `http://pv.${NS}.svc.cluster.local/who`;
/** How long a fault is held: longer than the router waits for a silent client (3 × 2 s keepalive, then 2 s more). */
const HOLD_MS = 15_000;
/** The README's promise: originals serve within this long of the fault. */
const GOAL_MS = 10_000;

let cluster: Cluster;
const servers: ChildProcess[] = [];
const isOriginal = (name: string) => (p: string): boolean => p.startsWith(`${name}-`);
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function kt(args: string[]): ChildProcess {
  return cluster.spawnInLaptop('kubectl', ['kt', ...args, '-n', NS], process.env.KT_FAULTS_DEBUG ? { env: { NODE_DEBUG: 'kt' } } : {});
}

async function stop(child: ChildProcess, out: () => string): Promise<void> {
  const gone = exited(child);
  child.kill('SIGINT');
  assert.equal(await gone, 0, out());
}

function routers(): string[] {
  return cluster.store.list('pods', NS).filter((p) => p.metadata.labels?.[LABELS.role] === 'router' && !p.metadata.deletionTimestamp).map((p) => p.metadata.name);
}

/** The laptop's SOCKS proxy (connect) reaches a Service: the pod that answered, or `error: …`. */
async function viaSocks(): Promise<string> {
  const r = await cluster.inLaptop('curl', ['-sS', '--max-time', '2', '--socks5-hostname', `127.0.0.1:${PORT.socks}`, WEB]);
  if (r.code !== 0) return `error: ${r.stderr.trim()}`;
  return String((JSON.parse(r.stdout) as { pod: string }).pod);
}

/** A connection from the laptop to the API server: `timeout` when nothing answers (the cut), else the HTTP status. */
async function apiFromLaptop(): Promise<string> {
  const r = await cluster.inLaptop('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `https://127.0.0.1:${cluster.apiPort}/readyz`]);
  return r.code === 28 ? 'timeout' : r.code === 0 ? r.stdout : `curl exit ${r.code}`;
}


/** Resolves when the file exists (watching its directory; checked once first), rejects after timeoutMs. */
function fileAppears(path: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = watch(dirname(path), (_, name) => {
      if (name === basename(path)) done();
    });
    const timer = setTimeout(() => {
      w.close();
      reject(new Error(`${path} did not appear within ${timeoutMs} ms`));
    }, timeoutMs);
    function done(): void {
      clearTimeout(timer);
      w.close();
      resolve();
    }
    if (existsSync(path)) done();
  });
}

/** A process's state letter from /proc (R running, S sleeping, T stopped). */
function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0];
  } catch {
    return 'gone';
  }
}

/** Milliseconds from `since` until `child` prints a line matching `re`. */
async function lineAfter(child: ChildProcess, re: RegExp, since: number, timeoutMs = 30_000): Promise<number> {
  await waitForLine(child, re, timeoutMs);
  return performance.now() - since;
}

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), echoApp(NS, 'api', { replicas: 1 }), echoApp(NS, 'web', { replicas: 1 }), clientPod(NS)], { deployments: ['api', 'web'], pods: ['client'] });
  servers.push(await localEcho(cluster, PORT.exchange, 'laptop-exchange'));
  servers.push(await localEcho(cluster, PORT.mesh, 'laptop-mesh'));
  servers.push(await localEcho(cluster, PORT.preview, 'laptop-preview'));
});

after(async () => {
  for (const c of servers) c.kill('SIGTERM');
  await Promise.all(servers.map((c) => exited(c)));
  await cluster?.stop();
});

describe('faults', () => {
  test('silent network loss: the router notices within 10 s, the plugin says so once, and exchange, mesh, preview and connect restore themselves', async () => {
    const apiBefore = serviceShape(cluster, NS, 'api');
    const webBefore = serviceShape(cluster, NS, 'web');
    const ex = kt(['exchange', 'svc/api', '--expose', `${PORT.exchange}:80`]);
    const mesh = kt(['mesh', 'svc/web', '--expose', `${PORT.mesh}:80`, '--header', 'x-kt-version=alice']);
    const pv = kt(['preview', 'pv', '--expose', `${PORT.preview}:80`]);
    const conn = kt(['connect', '--socks-port', String(PORT.socks), '--http-port', String(PORT.http)]);
    const out = { ex: stderrOf(ex), mesh: stderrOf(mesh), pv: stderrOf(pv), conn: stderrOf(conn) };
    try {
      await Promise.all([
        waitForLine(ex, /^exchanging:/, 90_000), waitForLine(mesh, /^meshing:/, 90_000),
        waitForLine(pv, /^previewing:/, 90_000), waitForLine(conn, /^connected:/, 90_000),
      ]);
      const t = performance.now();
      await until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', t, 10_000, 'exchange routed');
      await until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t, 10_000, 'mesh routed');
      await until(() => who(cluster, NS, PREVIEW), (p) => p === 'laptop-preview', t, 10_000, 'preview routed');
      assert.match(await viaSocks(), /^web-/);
      assert.match(await who(cluster, NS, WEB), /^web-/, 'untagged requests reach the original pods');

      // The fault: every packet between the laptop and the API server is dropped, nothing is closed.
      const cut = await cluster.cutLaptopPath();
      const t0 = performance.now();
      const noticing = Promise.all([ex, mesh, pv, conn].map((c) => lineAfter(c, /tunnel to \S+ dropped/, t0)));
      const [exMs, meshMs, apiProbe] = await Promise.all([
        until(() => who(cluster, NS, API), isOriginal('api'), t0, GOAL_MS + 5000, 'exchange falls back'),
        until(() => who(cluster, NS, WEB, 'alice'), isOriginal('web'), t0, GOAL_MS + 5000, 'mesh falls back'),
        apiFromLaptop(),
      ]);
      assert.equal(apiProbe, 'timeout', 'the API server does not answer the laptop (dropped, not refused)');
      const noticed = await noticing;
      console.log(`# silent loss: original pods answer ${s(exMs)} (exchange) and ${s(meshMs)} (mesh, tagged) after the cut (goal <= 10 s); `
        + `the plugin noticed after ${noticed.map(s).join(', ')} (exchange, mesh, preview, connect)`);
      assert.ok(exMs <= GOAL_MS && meshMs <= GOAL_MS, `fallback took ${exMs} / ${meshMs} ms`);
      assert.match(await who(cluster, NS, WEB), /^web-/, 'untagged requests still reach the original pods');
      // Held for a stated time: sessions must not give up while the path is gone.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, HOLD_MS - (performance.now() - t0))));
      const dropped = await cut.restore();
      const t1 = performance.now();
      assert.ok(dropped > 0, 'packets were dropped');
      const back = await Promise.all([
        until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', t1, 60_000, 'exchange restored'),
        until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t1, 60_000, 'mesh restored'),
        until(() => who(cluster, NS, PREVIEW), (p) => p === 'laptop-preview', t1, 60_000, 'preview restored'),
        until(viaSocks, isOriginal('web'), t1, 60_000, 'connect restored'),
      ]);
      console.log(`# silent loss: path cut for ${s(t1 - t0)}, ${dropped} packets dropped; after it came back requests reached the laptop again in `
        + `${back.map(s).join(', ')} (exchange, mesh, preview, connect through SOCKS)`);
      for (const [name, o] of Object.entries(out)) {
        assert.equal(o().split('\n').filter((l) => /dropped/.test(l)).length, 1, `${name} says it once:\n${o()}`);
        assert.match(o(), /tunnel up again after/, name);
      }
      assert.equal(routers().length, 2, 'one router per Service, no second one');
    } finally {
      for (const c of [ex, mesh, pv, conn]) c.kill('SIGINT');
      await Promise.all([ex, mesh, pv, conn].map((c) => exited(c)));
    }
    for (const [name, c] of Object.entries({ ex, mesh, pv, conn })) assert.equal(c.exitCode, 0, `${name}: ${out[name as keyof typeof out]()}`);
    assert.deepEqual(serviceShape(cluster, NS, 'api'), apiBefore);
    assert.deepEqual(serviceShape(cluster, NS, 'web'), webBefore);
    await nothingLeftIn(cluster, NS);
  });

  test('the router removed while the laptop was away (the last other session left): the session takes the Service over again as if new', async () => {
    const before = serviceShape(cluster, NS, 'web');
    const alice = kt(['mesh', 'svc/web', '--expose', `${PORT.mesh}:80`, '--header', 'x-kt-version=alice']);
    const aliceOut = stderrOf(alice);
    // A colleague on another machine: their path to the API server is not the laptop's.
    const bobServer = await localEcho(cluster, PORT.colleague, 'colleague', { where: 'host' });
    servers.push(bobServer);
    const bob = spawn('kubectl', ['kt', 'mesh', 'svc/web', '--expose', `${PORT.colleague}:80`, '--header', 'x-kt-version=bob', '-n', NS], { env: cluster.laptopEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const bobOut = stderrOf(bob);
    try {
      await Promise.all([waitForLine(alice, /^meshing:/, 90_000), waitForLine(bob, /^meshing:/, 90_000)]);
      const t = performance.now();
      await until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t, 10_000, 'alice routed');
      await until(() => who(cluster, NS, WEB, 'bob'), (p) => p === 'colleague', t, 10_000, 'bob routed');
      const [oldRouter] = routers();

      const cut = await cluster.cutLaptopPath();
      const t0 = performance.now();
      const fellBack = await until(() => who(cluster, NS, WEB, 'alice'), isOriginal('web'), t0, GOAL_MS + 5000, 'alice falls back');
      // Bob leaves: the router tells him nobody else routes, so he gives the Service back and removes the router.
      await stop(bob, bobOut);
      await nothingLeftIn(cluster, NS);
      assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
      assert.match(await who(cluster, NS, WEB, 'alice'), /^web-/);
      const dropped = await cut.restore();
      assert.ok(dropped > 0);
      const t1 = performance.now();
      const tookOver = waitForLine(alice, /^• took service \S+ over again/, 90_000);
      const back = await until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t1, 90_000, 'alice taken over again');
      await tookOver;
      console.log(`# router removed while away: alice's requests fell back ${s(fellBack)} after the cut; bob left and removed the router; `
        + `${s(back)} after the path came back alice's requests reached her laptop again through a new router (${dropped} packets dropped)`);
      assert.match(aliceOut(), /went while this session was away/);
      const now = routers();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], oldRouter);
      assert.match(await who(cluster, NS, WEB), /^web-/, 'untagged requests reach the original pods');
    } finally {
      bob.kill('SIGINT');
      await exited(bob);
      await stop(alice, aliceOut);
    }
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('the last session leaves while another developer joins its router: the joiner finds the router leaving and takes the Service over as a new session would', async () => {
    const before = serviceShape(cluster, NS, 'web');
    // Two colleagues on other machines. Carol's API server traffic passes a relay this test holds.
    const bobServer = await localEcho(cluster, PORT.leaver, 'leaver', { where: 'host' });
    const carolServer = await localEcho(cluster, PORT.joiner, 'joiner', { where: 'host' });
    servers.push(bobServer, carolServer);
    const relay = await holdableRelay(cluster.apiPort);
    const dir = mkdtempSync(join(tmpdir(), 'kt-joiner-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, readFileSync(String(cluster.laptopEnv.KUBECONFIG), 'utf8').replace(`https://127.0.0.1:${cluster.apiPort}`, `https://127.0.0.1:${relay.port}`), { mode: 0o600 });
    const meshOnHost = (port: number, tag: string, env: NodeJS.ProcessEnv): ChildProcess =>
      spawn('kubectl', ['kt', 'mesh', 'svc/web', '--expose', `${port}:80`, '--header', `x-kt-version=${tag}`, '-n', NS], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const bob = meshOnHost(PORT.leaver, 'bob', cluster.laptopEnv);
    const bobOut = stderrOf(bob);
    let carol: ChildProcess | undefined;
    let carolOut = (): string => '';
    let carolCode: number | null = null;
    try {
      await waitForLine(bob, /^meshing:/, 90_000);
      const [oldRouter] = routers();
      carol = meshOnHost(PORT.joiner, 'carol', { ...cluster.laptopEnv, KUBECONFIG: kubeconfig });
      carolOut = stderrOf(carol);
      // Carol has read the router (Ready) and goes on to open her tunnel: from here her path stalls.
      await waitForLine(carol, /router exists, joining/, 90_000);
      relay.hold();
      await relay.held;
      assert.doesNotMatch(carolOut(), /^meshing:/m);
      assert.match(await who(cluster, NS, WEB, 'carol'), /^web-/, 'carol has no route yet');
      // Bob leaves: the router tells him nobody else routes (Carol has no route yet), so he gives the Service back and removes the router.
      await stop(bob, bobOut);
      await nothingLeftIn(cluster, NS);
      assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
      assert.match(bobOut(), /giving service \S+ back/);
      relay.release();
      const t1 = performance.now();
      await waitForLine(carol, /^meshing:/, 90_000);
      const back = await until(() => who(cluster, NS, WEB, 'carol'), (p) => p === 'joiner', t1, 30_000, 'carol routed');
      console.log(`# joiner whose router left: ${s(back)} after her path came back, carol's requests reached her laptop through a new router`);
      assert.match(carolOut(), /went while this session joined it/);
      const now = routers();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], oldRouter);
      assert.match(await who(cluster, NS, WEB), /^web-/, 'untagged requests reach the original pods');
    } finally {
      relay.release();
      bob.kill('SIGINT');
      await exited(bob);
      carol?.kill('SIGINT');
      carolCode = carol ? await exited(carol) : null;
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(carolCode, 0, carolOut());
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('laptop sleep: SIGSTOP longer than the router waits, originals serve; after SIGCONT the session restores itself', async () => {
    const before = serviceShape(cluster, NS, 'api');
    const ex = kt(['exchange', 'svc/api', '--expose', `${PORT.exchange}:80`]);
    const out = stderrOf(ex);
    try {
      await waitForLine(ex, /^exchanging:/, 90_000);
      await until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', performance.now(), 10_000, 'exchange routed');
      // kubectl execs the plugin: the child's pid is the plugin's.
      const pid = ex.pid as number;
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /kubectl-kt/);
      ex.kill('SIGSTOP');
      const t0 = performance.now();
      // The signal is delivered asynchronously: the kernel's word for it is the process state T (stopped).
      while (procState(pid) !== 'T') assert.ok(performance.now() - t0 < 5000, `the plugin stopped (state ${procState(pid)})`);
      const fellBack = await until(() => who(cluster, NS, API), isOriginal('api'), t0, GOAL_MS + 5000, 'exchange falls back');
      assert.ok(fellBack <= GOAL_MS, `fallback took ${fellBack} ms`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, HOLD_MS - (performance.now() - t0))));
      assert.equal(procState(pid), 'T', 'still stopped');
      const noticing = lineAfter(ex, /tunnel to \S+ dropped/, performance.now());
      ex.kill('SIGCONT');
      const t1 = performance.now();
      const noticed = await noticing;
      const back = await until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', t1, 60_000, 'exchange restored');
      console.log(`# sleep: stopped for ${s(t1 - t0)}; original pods answered ${s(fellBack)} after SIGSTOP (goal <= 10 s); `
        + `after SIGCONT the plugin said the tunnel dropped in ${s(noticed)} and the laptop answered again in ${s(back)}`);
      assert.equal(out().split('\n').filter((l) => /dropped/.test(l)).length, 1, out());
      assert.equal(routers().length, 1);
    } finally {
      // A stopped process takes no SIGINT: wake it first (a no-op when it runs).
      ex.kill('SIGCONT');
      await stop(ex, out);
    }
    assert.deepEqual(serviceShape(cluster, NS, 'api'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('the router\'s container killed and restarted in its pod: its standby serves meanwhile, untagged traffic keeps flowing; every session registers its routes again', async () => {
    const before = serviceShape(cluster, NS, 'web');
    const alice = kt(['mesh', 'svc/web', '--expose', `${PORT.mesh}:80`, '--header', 'x-kt-version=alice']);
    const carol = kt(['mesh', 'svc/web', '--expose', `${PORT.preview}:80`, '--header', 'x-kt-version=carol']);
    const out = { alice: stderrOf(alice), carol: stderrOf(carol) };
    try {
      await Promise.all([waitForLine(alice, /^meshing:/, 90_000), waitForLine(carol, /^meshing:/, 90_000)]);
      const t = performance.now();
      await until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t, 10_000, 'alice routed');
      await until(() => who(cluster, NS, WEB, 'carol'), (p) => p === 'laptop-preview', t, 10_000, 'carol routed');
      const [router] = routers();
      const uid = cluster.store.get('pods', NS, router)?.metadata.uid;
      const status = (): { name: string; restartCount: number; ready: boolean }[] => (cluster.store.get('pods', NS, router)?.status as { containerStatuses?: { name: string; restartCount: number; ready: boolean }[] } | undefined)?.containerStatuses ?? [];
      // Untagged load from inside the cluster for the whole fault, one request after the other: when each began (ms since the epoch) and its status code (000: none).
      // It marks its first answer with a file (the shell image runs in the pod's network, on this machine's files).
      const dir = mkdtempSync(join(tmpdir(), 'kt-restart-'));
      chmodSync(dir, 0o777);
      const first = join(dir, 'answered');
      const load = cluster.inPod(NS, 'client', 'sh', ['-c',
        `end=$(($(date +%s) + 12)); while [ $(date +%s) -lt $end ]; do printf '%s ' $(date +%s%3N); curl -s -o /dev/null -w '%{http_code}\\n' --max-time 2 ${WEB}; [ -e ${first} ] || : > ${first}; done`], { timeoutMs: 60_000 });
      await fileAppears(first, 10_000);
      // Killed twice: the second restart waits in the node's crash-loop back-off (1 s here, 10 s and
      // more on a kubelet), so the standby is all the Service has for that long.
      const kills: { at: number; restarted: number; back: number[] }[] = [];
      for (let k = 0; k < 2; k++) {
        await cluster.waitFor('pods', NS, router, () => status().every((c) => c.ready), 30_000);
        const at = Date.now();
        const killed = await cluster.killContainer(NS, router, 'kt-proxy');
        const t0 = performance.now();
        // Gone, or a zombie until the pod's agent reaps it: either way dead (the signal lands asynchronously).
        while (!['Z', 'gone'].includes(procState(killed.pid))) assert.ok(performance.now() - t0 < 5000, `the router process died (state ${procState(killed.pid)})`);
        await cluster.waitFor('pods', NS, router, () => status().some((c) => c.name === 'kt-proxy' && c.restartCount > killed.restartCount), 30_000);
        const restarted = performance.now() - t0;
        const back = await Promise.all([
          until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t0, 30_000, 'alice again'),
          until(() => who(cluster, NS, WEB, 'carol'), (p) => p === 'laptop-preview', t0, 30_000, 'carol again'),
        ]);
        kills.push({ at, restarted, back });
      }
      const loaded = await load;
      rmSync(dir, { recursive: true, force: true });
      assert.equal(loaded.code, 0, loaded.stderr);
      const requests = loaded.stdout.trim().split('\n').map((l) => {
        const [at, code] = l.split(' ');
        return { at: Number(at), code };
      });
      assert.ok(requests[0].at < kills[0].at, 'the load ran before the kill');
      // When the standby served: from its log, each "serving" to the next "released".
      const logs = await cluster.kubectl(['logs', '-n', NS, router, '-c', 'kt-standby']);
      const spans: { from: number; to: number }[] = [];
      for (const line of logs.stdout.split('\n')) {
        const at = Date.parse(line.slice(0, line.indexOf(' ')));
        if (/standby: serving every request to the origin: the router is gone/.test(line)) spans.push({ from: at, to: Infinity });
        else if (/standby: released the ports/.test(line) && spans.length > 0) spans[spans.length - 1].to = at;
      }
      assert.equal(spans.length, 2, `the standby took over once per kill:\n${logs.stdout}`);
      const served = spans.map((sp) => requests.filter((r) => r.at >= sp.from && r.at < sp.to && r.code === '200').length);
      const failed = requests.filter((r) => r.code !== '200');
      // What no design saves: per kill, the one request in the router's process when it died, or one
      // whose SYN came in the instant between its sockets closing and the standby's bind (standby.ts).
      assert.ok(failed.length <= kills.length, `untagged requests failed: ${failed.map((r) => `${r.code} at ${r.at - kills[0].at} ms after the first kill`).join(', ')} of ${requests.length}`);
      assert.ok(spans[1].to - spans[1].from >= 1000, `the second restart waited in back-off: the standby served ${spans[1].to - spans[1].from} ms`);
      assert.ok(served[1] > 0, 'untagged requests were answered while no router process ran');
      console.log(`# router container killed twice (the node saw each death ${kills.map((k) => s(k.restarted)).join(' and ')} after it; the second restart in back-off): `
        + `the standby served ${spans.map((sp, i) => `${served[i]} requests in ${sp.to - sp.from} ms`).join(' and ')} until the new router took over; untagged: ${requests.length} requests, ${failed.length} failed; `
        + `routes registered again, tagged requests reached both laptops ${kills.map((k) => s(Math.max(...k.back))).join(' and ')} after the kills`);
      assert.equal(cluster.store.get('pods', NS, router)?.metadata.uid, uid, 'the same pod');
      assert.deepEqual(routers(), [router]);
      assert.match(await who(cluster, NS, WEB), /^web-/);
    } finally {
      // One after the other: two sessions leaving at the same instant each see the other still routing.
      for (const c of [alice, carol]) {
        c.kill('SIGINT');
        await exited(c);
      }
    }
    assert.equal(alice.exitCode, 0, out.alice());
    assert.equal(carol.exitCode, 0, out.carol());
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('kube-apiserver restarted mid-session: sessions reconnect, watches and heartbeats go on, no second router or origin Service', async () => {
    const apiBefore = serviceShape(cluster, NS, 'api');
    const webBefore = serviceShape(cluster, NS, 'web');
    const ex = kt(['exchange', 'svc/api', '--expose', `${PORT.exchange}:80`]);
    const mesh = kt(['mesh', 'svc/web', '--expose', `${PORT.mesh}:80`, '--header', 'x-kt-version=alice']);
    const out = { ex: stderrOf(ex), mesh: stderrOf(mesh) };
    try {
      await Promise.all([waitForLine(ex, /^exchanging:/, 90_000), waitForLine(mesh, /^meshing:/, 90_000)]);
      const t = performance.now();
      await until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', t, 10_000, 'exchange routed');
      await until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t, 10_000, 'mesh routed');
      const routersBefore = routers().sort();
      const restarting = Date.now();
      const { downMs } = await cluster.restartApiServer();
      const t1 = performance.now();
      assert.ok(cluster.store.list('pods', NS).length > 0);
      const back = await Promise.all([
        until(() => who(cluster, NS, API), (p) => p === 'laptop-exchange', t1, 60_000, 'exchange after the restart'),
        until(() => who(cluster, NS, WEB, 'alice'), (p) => p === 'laptop-mesh', t1, 60_000, 'mesh after the restart'),
      ]).catch((e: Error) => {
        throw new Error(`${e.message}\n${out.ex()}\n${out.mesh()}`, { cause: e });
      });
      // Heartbeats go on: the route annotations on the router pods are renewed after the restart.
      for (const r of routersBefore) {
        await cluster.waitFor('pods', NS, r, (o) => Object.entries(o?.metadata.annotations ?? {}).some(([k, v]) =>
          k.startsWith(ROUTE_ANNOTATION_PREFIX) && Date.parse((JSON.parse(v) as { heartbeat: string }).heartbeat) >= restarting - 1000), 30_000).catch((e: Error) => {
          throw new Error(`${e.message}\n${JSON.stringify(cluster.store.get('pods', NS, r)?.metadata.annotations)}\n${out.ex()}\n${out.mesh()}`, { cause: e });
        });
      }
      // The Service watch goes on: an overwritten selector is taken over again.
      const patched = await cluster.kubectl(['patch', '-n', NS, 'svc/api', '--type=merge', '-p', '{"spec":{"selector":{"app":"api"}}}']);
      assert.equal(patched.code, 0, patched.stderr);
      await waitForLine(ex, /was changed to .*pointed it at the router again/, 30_000);
      console.log(`# API server restart: down ${s(downMs)}; requests reached the laptop again ${back.map(s).join(' and ')} after it was ready (exchange, mesh); `
        + 'route heartbeats renewed, the Service watch still takes an overwritten selector back');
      assert.deepEqual(routers().sort(), routersBefore, 'the same routers, no second one');
      const origins = cluster.store.list('services', NS).filter((o) => o.metadata.labels?.[LABELS.role] === 'origin').map((o) => o.metadata.name).sort();
      assert.deepEqual(origins, ['api-kt-origin', 'web-kt-origin']);
      for (const name of ['api', 'web']) {
        const svc = cluster.store.get('services', NS, name) as unknown as { spec: { selector: Record<string, string> }; metadata: { annotations: Record<string, string> } };
        assert.equal(svc.spec.selector[LABELS.role], 'router', `${name} selects its router`);
        assert.equal(svc.metadata.annotations[ANNOTATIONS.originalSelector], JSON.stringify({ app: name }));
      }
    } finally {
      for (const c of [ex, mesh]) c.kill('SIGINT');
      await Promise.all([ex, mesh].map((c) => exited(c)));
    }
    assert.equal(ex.exitCode, 0, out.ex());
    assert.equal(mesh.exitCode, 0, out.mesh());
    assert.deepEqual(serviceShape(cluster, NS, 'api'), apiBefore);
    assert.deepEqual(serviceShape(cluster, NS, 'web'), webBefore);
    await nothingLeftIn(cluster, NS);
  });
});
