// `kubectl kt connect` end to end on the test cluster, run from the laptop
// namespace exactly as a user would: first the laptop cannot reach a pod IP,
// a ClusterIP or a Service name; then, connected, it reaches all three (socks
// mode: through the proxy and with `-- CMD`; route mode: plain curl, getent,
// dig); after exit the resolver, addresses, listeners and the cluster are as
// before. One cluster for the file.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { applyApps, echoApp, namespace } from '../fixtures/workloads.ts';
import { exited, ktObjects, waitForLine, waitNoKtPods } from './helpers.ts';

const NS = 'shop';

let cluster: Cluster;
let podIp = '';
let clusterIp = '';
const FQDN = `web.${NS}.svc.cluster.local`;

async function laptopSnapshot(): Promise<{ resolv: string; addrs: string; listeners: string }> {
  const resolv = await cluster.inLaptop('cat', ['/etc/resolv.conf']);
  const addrs = await cluster.inLaptop('ip', ['-o', 'addr', 'show']);
  const listeners = await cluster.inLaptop('ss', ['-Hltnu']);
  return { resolv: resolv.stdout, addrs: addrs.stdout, listeners: listeners.stdout };
}

async function curlLaptop(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cluster.inLaptop('curl', ['-sS', '--max-time', '5', ...args]);
}

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), echoApp(NS, 'web')], { deployments: ['web'] });
  const svc = cluster.store.get('services', NS, 'web');
  clusterIp = String((svc?.spec as { clusterIP: string }).clusterIP);
  const pod = cluster.store.list('pods', NS).find((p) => p.metadata.name.startsWith('web-'));
  podIp = String((pod?.status as { podIP: string }).podIP);
  assert.ok(clusterIp && podIp);
});

after(async () => {
  await cluster?.stop();
});

describe('connect', () => {
  test('without the tool the laptop reaches neither pods, ClusterIPs nor Service names', async () => {
    for (const url of [`http://${podIp}:8080/`, `http://${clusterIp}/`, `http://${FQDN}/`]) {
      const r = await curlLaptop([url]);
      assert.notEqual(r.code, 0, `${url} must not be reachable from the laptop: ${r.stdout}`);
    }
  });

  test('socks mode: pod IP, ClusterIP and DNS name through the local proxy, then nothing left', async () => {
    const before = await laptopSnapshot();
    const child = cluster.spawnInLaptop('kubectl', ['kt', 'connect', '-n', NS, '--socks-port', '21080', '--http-port', '21081']);
    try {
      await waitForLine(child, /^connected: SOCKS5 proxy socks5h:\/\/127\.0\.0\.1:21080/);
      for (const url of [`http://${podIp}:8080/`, `http://${clusterIp}/`, `http://${FQDN}/`, 'http://web/', `http://web.${NS}/`]) {
        const viaSocks = await curlLaptop(['--socks5-hostname', '127.0.0.1:21080', url]);
        assert.equal(viaSocks.code, 0, `${url} via SOCKS5: ${viaSocks.stderr}`);
        assert.equal(JSON.parse(viaSocks.stdout).namespace, NS);
        const viaHttp = await curlLaptop(['-x', 'http://127.0.0.1:21081', url]);
        assert.equal(viaHttp.code, 0, `${url} via the HTTP proxy: ${viaHttp.stderr}`);
      }
      assert.equal(ktObjects(cluster, 'pods').length, 1);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited(child), 0);
    await waitNoKtPods(cluster);
    assert.deepEqual(await laptopSnapshot(), before);
  });

  test('socks mode with -- CMD: CMD gets the proxy environment and its exit code', async () => {
    const ok = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--', 'curl', '-sS', '--max-time', '5', `http://${FQDN}/via-env`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).path, '/via-env');
    assert.match(ok.stderr, /creating proxy pod/);
    const failing = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--', 'sh', '-c', 'test -n "$ALL_PROXY" && exit 7']);
    assert.equal(failing.code, 7, failing.stderr);
    await waitNoKtPods(cluster);
  });

  test('route mode: plain curl, getent and dig reach the cluster; everything is undone on exit', async () => {
    const before = await laptopSnapshot();
    const child = cluster.spawnInLaptop('kubectl', ['kt', 'connect', '-n', NS, '--mode', 'route']);
    try {
      await waitForLine(child, /^connected: every process here reaches/);
      for (const url of [`http://${podIp}:8080/`, `http://${clusterIp}/`, `http://${FQDN}/`, 'http://web/']) {
        const r = await curlLaptop([url]);
        assert.equal(r.code, 0, `${url}: ${r.stderr}`);
        assert.equal(JSON.parse(r.stdout).namespace, NS);
      }
      const getent = await cluster.inLaptop('getent', ['hosts', 'web']);
      assert.equal(getent.code, 0, getent.stderr);
      assert.match(getent.stdout, new RegExp(`^${clusterIp.replaceAll('.', '\\.')}\\s+web\\.${NS}\\.svc\\.cluster\\.local`));
      const dig = await cluster.inLaptop('dig', ['+short', '+time=3', '+tries=1', FQDN]);
      assert.equal(dig.stdout.trim(), clusterIp);
      const resolv = await cluster.inLaptop('cat', ['/etc/resolv.conf']);
      assert.match(resolv.stdout, /^nameserver 127\.0\.\d+\.153$/m);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited(child), 0);
    await waitNoKtPods(cluster);
    assert.deepEqual(await laptopSnapshot(), before);
    assert.ok(!existsSync('/run/kubectl-kt') || readdirSync('/run/kubectl-kt').length === 0, 'no local state left');
  });

  test('after kill -9 in route mode, status shows the session stale and clean --local undoes everything', async () => {
    const before = await laptopSnapshot();
    const child = cluster.spawnInLaptop('kubectl', ['kt', 'connect', '-n', NS, '--mode', 'route']);
    await waitForLine(child, /^connected: every process here reaches/);
    const live = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS, '-o', 'json']);
    assert.equal(live.code, 0, live.stderr);
    const sessions = JSON.parse(live.stdout).sessions as { kind: string; stale: boolean; pod: string }[];
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0].kind, 'connect');
    assert.equal(sessions[0].stale, false);
    // kill -9 the plugin itself (kubectl execs it as a child): nothing runs its cleanup.
    const pkill = await cluster.inLaptop('pkill', ['-KILL', '-f', 'kubectl-kt connect -n shop --mode route']);
    assert.equal(pkill.code, 0);
    await exited(child);
    assert.notDeepEqual(await laptopSnapshot(), before, 'the crash left local changes');
    // Simulate the passing of time: the heartbeat is what clean judges by.
    const annotate = await cluster.kubectl(['annotate', '-n', NS, `pod/${sessions[0].pod}`, '--overwrite', 'kt.dev/heartbeat=2020-01-01T00:00:00Z']);
    assert.equal(annotate.code, 0, annotate.stderr);
    const stale = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS, '-o', 'json']);
    assert.equal(JSON.parse(stale.stdout).sessions[0].stale, true);
    const dry = await cluster.inLaptop('kubectl', ['kt', 'clean', '-n', NS, '--local', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would local: restore \/etc\/resolv\.conf/);
    assert.match(dry.stdout, new RegExp(`would delete connect pod ${NS}/${sessions[0].pod}`));
    assert.equal(ktObjects(cluster, 'pods').length, 1, 'dry run removes nothing');
    const clean = await cluster.inLaptop('kubectl', ['kt', 'clean', '-n', NS, '--local']);
    assert.equal(clean.code, 0, clean.stderr);
    await waitNoKtPods(cluster);
    assert.deepEqual(await laptopSnapshot(), before);
    const again = await cluster.inLaptop('kubectl', ['kt', 'clean', '-n', NS, '--local']);
    assert.equal(again.stdout.trim(), 'nothing to clean');
  });

  test('an image that cannot be pulled fails with one line and leaves no pod', async () => {
    const r = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--image', 'example.invalid/nope:1', '--', 'true']);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('error '));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^error KT_ERR_PROXY_FAILED: .*ImagePull/);
    await waitNoKtPods(cluster);
  });

  test('route mode without root is refused before anything is created', async () => {
    // As user nobody, with nobody's home (kubectl >= 1.33 reads $HOME/.kube/kuberc, and /root is not nobody's to read).
    const r = await cluster.inLaptop('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'kubectl', 'kt', 'connect', '-n', NS, '--mode', 'route'], { env: { HOME: '/nonexistent' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error KT_ERR_NEEDS_ROOT: /m);
    assert.deepEqual(ktObjects(cluster, 'pods'), []);
  });
});
