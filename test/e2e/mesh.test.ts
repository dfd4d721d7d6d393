// `kubectl kt mesh` end to end on the test cluster: only requests with a
// developer's header value reach that developer's laptop server, everything
// else reaches the original pods. Two developers at once share one router
// (the second only registers a route: timed), requests for both ride one
// keep-alive connection, a conflicting route is refused naming the holder,
// kill -9 of one developer sends their requests to the originals within a
// second while the other's still route, and the last live developer's exit
// restores the Service exactly although the crashed one never cleaned up.
// One cluster for the file.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, watch, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE26, ROOT, startCluster, type Cluster } from '../cluster/cluster.ts';
import { LABELS } from '../../contract/protocol.ts';
import { applyApps, clientPod, deployment, echoApp, localEcho, namespace, service } from '../fixtures/workloads.ts';
import { exited, nothingLeftIn, saysOnStdout, serviceShape, stderrOf, waitForLine } from './helpers.ts';

const NS = 'shop';
const PORTS = { alice: 18081, bob: 18082, carol: 18083 } as const;
const GRPC_LAPTOP = 19000;
const URL = `http://web.${NS}.svc.cluster.local/who`;
const RPC = [
  service(NS, 'rpc', [{ name: 'grpc', port: 9000, targetPort: 9000 }]),
  deployment(NS, 'rpc', {
    name: 'grpc', image: 'shell', command: [NODE26, join(ROOT, 'test/fixtures/grpc/server.ts')],
    env: [{ name: 'PORT', value: '9000' }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    ports: [{ containerPort: 9000 }],
    readinessProbe: { tcpSocket: { port: 9000 }, periodSeconds: 1 },
  }),
];

let cluster: Cluster;
const servers: ChildProcess[] = [];

/** The pods that answered, one per URL, all over one keep-alive connection (curl --next). */
async function whoAll(headers: (string | undefined)[]): Promise<string[]> {
  const args = ['-sS', '--max-time', '3'];
  headers.forEach((h, i) => {
    if (i > 0) args.push('--next', '-sS', '--max-time', '3');
    if (h) args.push('-H', `x-kt-version: ${h}`);
    args.push(URL);
  });
  const r = await cluster.inPod(NS, 'client', 'curl', args, { timeoutMs: 15_000 });
  if (r.code !== 0) return headers.map(() => `error: ${r.stderr.trim()}`);
  return r.stdout.trim().split('\n').map((l) => {
    try {
      return String((JSON.parse(l) as { pod: string }).pod);
    } catch {
      return `not json: ${l.slice(0, 60)}`;
    }
  });
}

async function who(header?: string): Promise<string> {
  return (await whoAll([header]))[0];
}

async function until(header: string | undefined, pred: (pod: string) => boolean, since: number, timeoutMs: number): Promise<number> {
  let last = '';
  while (performance.now() - since < timeoutMs) {
    last = await who(header);
    if (pred(last)) return performance.now() - since;
  }
  throw new Error(`no matching answer for ${header ?? 'no header'} within ${timeoutMs} ms; last: ${last}`);
}

const isOriginal = (p: string): boolean => p.startsWith('web-');

function routers(): string[] {
  return cluster.store.list('pods', NS).filter((p) => p.metadata.labels?.[LABELS.role] === 'router').map((p) => p.metadata.name);
}

function mesh(target: string, port: number, header?: string): ChildProcess {
  return cluster.spawnInLaptop('kubectl', ['kt', 'mesh', '-n', NS, target, '--expose', `${port}:80`, ...(header ? ['--header', `x-kt-version=${header}`] : [])]);
}

/** Waits for a file another process writes (the client pod sees the same filesystem). */
async function fileAppears(path: string, timeoutMs: number): Promise<void> {
  const dir = dirname(path);
  const name = basename(path);
  await new Promise<void>((resolve, reject) => {
    const w = watch(dir, () => {
      if (existsSync(path)) finish();
    });
    const timer = setTimeout(() => finish(new Error(`${name} did not appear within ${timeoutMs} ms`)), timeoutMs);
    function finish(err?: Error): void {
      clearTimeout(timer);
      w.close();
      if (err) reject(err);
      else resolve();
    }
    if (existsSync(path)) finish();
  });
}

async function stop(child: ChildProcess, out: () => string): Promise<void> {
  const gone = exited(child);
  child.kill('SIGINT');
  assert.equal(await gone, 0, out());
}

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), echoApp(NS, 'web'), ...RPC, clientPod(NS)], { deployments: ['web'], pods: ['client'] });
  for (const [name, port] of Object.entries(PORTS)) servers.push(await localEcho(cluster, port, name));
});

after(async () => {
  for (const s of servers) {
    const gone = exited(s);
    s.kill('SIGTERM');
    await gone;
  }
  await cluster?.stop();
});

describe('mesh', () => {
  test('one developer: tagged requests reach the laptop, the rest the originals; on exit the Service is as before', async () => {
    const before = serviceShape(cluster, NS, 'web');
    const child = mesh('svc/web', PORTS.alice, 'alice');
    const out = stderrOf(child);
    try {
      await waitForLine(child, /^meshing: web:80 -> localhost:18081 for requests with x-kt-version: alice/);
      await until('alice', (p) => p === 'alice', performance.now(), 5_000);
      assert.ok(isOriginal(await who()));
      assert.ok(isOriginal(await who('bob')));
    } finally {
      await stop(child, out);
    }
    assert.ok(isOriginal(await who('alice')));
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('two developers share one router; one keep-alive connection; conflicts refused; kill -9 of one; the last live one restores the Service', async () => {
    const before = serviceShape(cluster, NS, 'web');
    const alice = mesh('svc/web', PORTS.alice, 'alice');
    const aliceOut = stderrOf(alice);
    await waitForLine(alice, /^meshing:/);
    await until('alice', (p) => p === 'alice', performance.now(), 5_000);
    const [router] = routers();
    assert.ok(router);

    // The second developer joins: no new pod, only a route.
    const t0 = performance.now();
    const bob = mesh('deploy/web', PORTS.bob, 'bob');
    const bobOut = stderrOf(bob);
    const line = await waitForLine(bob, /^meshing:/);
    const wall = performance.now() - t0;
    const routedIn = Number(/routed in ([0-9.]+) s/.exec(line)?.[1]);
    console.log(`# mesh: second developer, command start to routed: ${(wall / 1000).toFixed(2)} s wall (process start included), ${routedIn.toFixed(2)} s inside the plugin (goal < 0.5 s)`);
    console.log(bobOut().split('\n').filter((l) => l.startsWith('✓')).map((l) => `#   ${l}`).join('\n'));
    assert.match(line, /router reused/);
    assert.deepEqual(routers(), [router], 'no new router pod');
    // The join time is printed, not asserted (it is measured in make bench): a loaded machine is no failure.
    assert.ok(Number.isFinite(routedIn), `no join time in ${JSON.stringify(line)}`);
    let carol: ChildProcess | undefined;
    try {
      const mixed = await whoAll(['alice', 'bob', undefined, 'alice', 'carol']);
      assert.equal(mixed[0], 'alice');
      assert.equal(mixed[1], 'bob');
      assert.ok(isOriginal(mixed[2]), mixed[2]);
      assert.equal(mixed[3], 'alice');
      assert.ok(isOriginal(mixed[4]), mixed[4]);

      const status = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS, '-o', 'json']);
      const web = (JSON.parse(status.stdout) as { services: { name: string; state: string; routes: { headers: unknown[] }[] }[] }).services.find((s) => s.name === 'web');
      assert.equal(web?.state, 'meshed');
      assert.equal(web?.routes.length, 2);

      const conflict = await cluster.inLaptop('kubectl', ['kt', 'mesh', '-n', NS, 'svc/web', '--expose', `${PORTS.carol}:80`, '--header', 'x-kt-version=alice'], { timeoutMs: 60_000 });
      assert.notEqual(conflict.code, 0);
      assert.match(conflict.stderr, /KT_ERR_ROUTE_TAKEN/);
      assert.match(conflict.stderr, /already routed to \S+@\S+/);
      assert.deepEqual(routers(), [router]);

      // Without --header, a value is made up and printed with a curl line.
      carol = mesh('svc/web', PORTS.carol);
      const carolOut = stderrOf(carol);
      const tryLine = await waitForLine(carol, /^try: curl -H 'x-kt-version: /);
      const value = /x-kt-version: ([^']+)'/.exec(tryLine)?.[1] ?? '';
      assert.match(value, /^[a-z0-9]+-[a-z0-9]{5}$/);
      await until(value, (p) => p === 'carol', performance.now(), 5_000);
      await stop(carol, carolOut);
      carol = undefined;
      assert.ok(isOriginal(await who(value)));
      assert.equal(await who('bob'), 'bob', 'the others still route after one leaves');

      // kill -9 alice: her requests go to the originals at once, bob's still route.
      const gone = exited(alice);
      const k0 = performance.now();
      const pkill = await cluster.inLaptop('pkill', ['-KILL', '-f', `kubectl-kt mesh -n ${NS} svc/web --expose ${PORTS.alice}:80`]);
      assert.equal(pkill.code, 0);
      const ms = await until('alice', isOriginal, k0, 10_000);
      console.log(`# mesh: kill -9 of one developer -> their requests reach an original pod in ${(ms / 1000).toFixed(2)} s (goal <= 1 s)`);
      assert.ok(ms <= 1000, `failover took ${ms} ms`);
      await gone;
      assert.equal(await who('bob'), 'bob');
    } finally {
      if (carol) carol.kill('SIGINT');
      await stop(bob, bobOut).catch(() => undefined);
      if (alice.exitCode === null && alice.signalCode === null) {
        const gone = exited(alice);
        alice.kill('SIGINT');
        await gone;
        console.log(aliceOut());
      }
    }
    // The router knows alice's route went with her connection: bob, the last live session, gave the Service back.
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
    assert.ok(isOriginal(await who('alice')));
  });

  test('20 mesh start/stop cycles under continuous untagged load (new connections and keep-alive ones): no failed request', async () => {
    const before = serviceShape(cluster, NS, 'web');
    const clusterIp = String((cluster.store.get('services', NS, 'web')?.spec as { clusterIP: string }).clusterIP);
    // The client pod runs as a non-root user (Pod Security "restricted"): it must be able to see the stop file.
    const loadDir = mkdtempSync(join(tmpdir(), 'kt-load-'));
    chmodSync(loadDir, 0o755);
    const stopFile = join(loadDir, 'stop');
    // Four clients until the stop file appears: two open a new connection per
    // request (each one is DNATed anew, so every selector switch is
    // exercised), two keep one connection alive (the router's drain must
    // move them with Connection: close, or they would fail when it exits).
    const script = `
      const http = require('node:http'); const fs = require('node:fs');
      const [host, stop] = process.argv.slice(1);
      let ok = 0, failed = 0; const errors = {};
      const fresh = new http.Agent({ keepAlive: false });
      const one = (agent) => new Promise((done) => {
        const fail = (why) => { failed++; errors[why] = (errors[why] || 0) + 1; done(); };
        const req = http.get({ host, port: 80, path: '/load', agent, timeout: 5000 }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? (ok++, done()) : fail('HTTP ' + res.statusCode)));
          res.on('error', (e) => fail(e.code || e.message));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e) => fail(e.code || e.message));
      });
      const worker = async (agent) => { while (!fs.existsSync(stop)) await one(agent); };
      const kept = () => new http.Agent({ keepAlive: true, maxSockets: 1 });
      Promise.all([worker(fresh), worker(fresh), worker(kept()), worker(kept())]).then(() => console.log(JSON.stringify({ ok, failed, errors })));
    `;
    // 20 cycles of a few seconds each; a loaded machine (the issue asks for one) makes them slower.
    const load = cluster.inPod(NS, 'client', NODE26, ['-e', script, clusterIp, stopFile], { timeoutMs: 900_000 });
    const times: number[] = [];
    const load0 = loadavg();
    try {
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const child = mesh('svc/web', PORTS.alice, 'alice');
        const out = stderrOf(child);
        await waitForLine(child, /^meshing:/);
        await stop(child, out);
        times.push(performance.now() - t0);
      }
    } finally {
      writeFileSync(stopFile, '');
    }
    const r = await load;
    rmSync(dirname(stopFile), { recursive: true, force: true });
    assert.equal(r.code, 0, r.stderr);
    const counts = JSON.parse(r.stdout) as { ok: number; failed: number; errors: Record<string, number> };
    const load1 = loadavg();
    console.log(`# mesh: 20 start/stop cycles (${times.map((t) => (t / 1000).toFixed(1)).join(', ')} s each) under load: ${counts.ok} requests ok, ${counts.failed} failed ${JSON.stringify(counts.errors)}; machine load average ${load0[0].toFixed(2)} -> ${load1[0].toFixed(2)} on ${cpus().length} cores`);
    assert.ok(counts.ok > 100, 'the load ran');
    assert.equal(counts.failed, 0);
    assert.deepEqual(serviceShape(cluster, NS, 'web'), before);
    await nothingLeftIn(cluster, NS);
  });

  test('a gRPC client holds one channel across a mesh\'s end: the router\'s GOAWAY moves it to the originals, no call fails', async () => {
    const clusterIp = String((cluster.store.get('services', NS, 'rpc')?.spec as { clusterIP: string }).clusterIP);
    const rollout = await cluster.kubectl(['rollout', 'status', '-n', NS, 'deploy/rpc', '--timeout=60s']);
    assert.equal(rollout.code, 0, rollout.stderr);
    const laptop = cluster.spawnInLaptop(NODE26, [join(ROOT, 'test/fixtures/grpc/server.ts')], { env: { PORT: String(GRPC_LAPTOP), POD_NAME: 'laptop-grpc' } });
    servers.push(laptop);
    await saysOnStdout(laptop, 'grpc listening');
    const dir = mkdtempSync(join(tmpdir(), 'kt-grpc-'));
    chmodSync(dir, 0o777);
    const child = cluster.spawnInLaptop('kubectl', ['kt', 'mesh', '-n', NS, 'svc/rpc', '--expose', `${GRPC_LAPTOP}:9000`, '--header', 'x-kt-version=alice']);
    const out = stderrOf(child);
    let client: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
    try {
      await waitForLine(child, /^meshing: rpc:9000 -> localhost:19000/);
      // The channel is made while the mesh runs, so it goes through the router.
      client = cluster.inPod(NS, 'client', NODE26, [join(ROOT, 'test/fixtures/grpc/client-loop.ts'), clusterIp, '9000', 'alice', 'laptop-grpc', dir], { timeoutMs: 120_000 });
      await fileAppears(join(dir, 'through'), 30_000);
      const t0 = performance.now();
      await stop(child, out);
      await fileAppears(join(dir, 'moved'), 30_000);
      console.log(`# mesh: gRPC channel moved to the originals ${((performance.now() - t0) / 1000).toFixed(2)} s after Ctrl-C of the last developer`);
    } finally {
      writeFileSync(join(dir, 'stop'), '');
      if (child.exitCode === null) await stop(child, out).catch(() => undefined);
    }
    const r = await client;
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r?.code, 0, r?.stderr);
    const tally = JSON.parse(r?.stdout ?? '{}') as { calls: number; failed: number; taggedLaptop: number; taggedOther: number; untagged: number; untaggedLaptop: number; errors: Record<string, number> };
    console.log(`# mesh: one gRPC channel across a mesh's end: ${tally.calls} calls, ${tally.failed} failed ${JSON.stringify(tally.errors)}; tagged -> laptop ${tally.taggedLaptop}, tagged -> originals after the end ${tally.taggedOther}, untagged -> originals ${tally.untagged}`);
    assert.ok(tally.taggedLaptop > 0 && tally.taggedOther > 0, 'the channel went through the router, then to the originals');
    assert.equal(tally.untaggedLaptop, 0);
    assert.equal(tally.failed, 0);
    await nothingLeftIn(cluster, NS);
  });
});
