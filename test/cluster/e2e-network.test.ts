// The cluster network: a pod reaches another pod, a ClusterIP (TCP, balanced
// over the endpoints, hairpin to itself) and DNS names (short and FQDN, over
// the DNS Service's UDP ClusterIP); the laptop namespace reaches none of them
// and fails at once. One cluster for the file.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from './cluster.ts';
import { applyApps, clientPod, echoApp, namespace } from '../fixtures/workloads.ts';
import type { KubeObject } from './store.ts';

const NS = 'net';

// A Service with no pods behind it: a ClusterIP that must refuse at once.
const NOBODY = `apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: ${NS}}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
`;

let c: Cluster;
let webIp = '';
let pods: { name: string; ip: string }[] = [];

function inClient(cmd: string, args: string[]): ReturnType<Cluster['inPod']> {
  return c.inPod(NS, 'client', cmd, args, { timeoutMs: 30_000 });
}

async function curlJson(from: (cmd: string, args: string[]) => ReturnType<Cluster['inPod']>, url: string): Promise<{ pod: string; ip: string }> {
  const r = await from('curl', ['-sS', '--max-time', '10', url]);
  assert.equal(r.code, 0, `curl ${url}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { pod: string; ip: string };
}

describe('pod and service networking', { timeout: 300_000 }, () => {
  before(async () => {
    c = await startCluster();
    await applyApps(c, NS, [namespace(NS), echoApp(NS, 'web'), NOBODY, clientPod(NS)], { deployments: ['web'], pods: ['client'] });
    // Both web pods in the Service's Endpoints, and the proxy has them.
    await c.waitFor('endpoints', NS, 'web', (o) => ((o?.subsets as { addresses?: unknown[] }[] | undefined)?.[0]?.addresses?.length ?? 0) === 2);
    webIp = (c.store.get('services', NS, 'web')?.spec as { clusterIP: string }).clusterIP;
    pods = c.store.list('pods', NS)
      .filter((p: KubeObject) => p.metadata.labels?.app === 'web')
      .map((p) => ({ name: p.metadata.name, ip: (p.status as { podIP: string }).podIP }));
    assert.equal(pods.length, 2);
  });
  after(async () => {
    await c?.stop();
  });

  test('a pod reaches another pod by its IP', async () => {
    for (const p of pods) {
      const body = await curlJson(inClient, `http://${p.ip}:8080/`);
      assert.equal(body.pod, p.name);
      assert.equal(body.ip, p.ip);
    }
  });

  test('a pod reaches a ClusterIP, balanced over the ready endpoints', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 24 && seen.size < 2; i++) seen.add((await curlJson(inClient, `http://${webIp}/`)).pod);
    assert.deepEqual([...seen].sort(), pods.map((p) => p.name).sort());
  });

  test('a pod reaches its own Service (hairpin)', async () => {
    const self = pods[0];
    const seen = new Set<string>();
    for (let i = 0; i < 24 && !seen.has(self.name); i++) {
      seen.add((await curlJson((cmd, args) => c.inPod(NS, self.name, cmd, args, { timeoutMs: 30_000 }), `http://${webIp}/`)).pod);
    }
    assert.ok(seen.has(self.name), 'the pod was answered by itself through its Service');
  });

  test('DNS: short name, namespace-qualified and FQDN resolve to the ClusterIP, and curl by name works', async () => {
    for (const name of ['web', `web.${NS}`, `web.${NS}.svc.cluster.local`, 'kubernetes.default']) {
      const r = await inClient('getent', ['hosts', name]);
      assert.equal(r.code, 0, `getent hosts ${name}: ${r.stderr}`);
      if (name.startsWith('web')) assert.equal(r.stdout.split(/\s+/)[0], webIp, r.stdout);
    }
    assert.ok(pods.map((p) => p.name).includes((await curlJson(inClient, 'http://web/')).pod));
    assert.ok(pods.map((p) => p.name).includes((await curlJson(inClient, `http://web.${NS}.svc.cluster.local/`)).pod));
    const resolv = await inClient('cat', ['/etc/resolv.conf']);
    assert.match(resolv.stdout, new RegExp(`^search ${NS}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local$`, 'm'));
    assert.match(resolv.stdout, new RegExp(`^nameserver ${c.dnsIp.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(resolv.stdout, /^options ndots:5$/m);
  });

  test('a pod reaches the API server through the kubernetes Service', async () => {
    // TLS with the cluster's CA: the serving certificate names the Service. /version is public (system:public-info-viewer).
    const r = await inClient('curl', ['-sS', '--max-time', '10', '--cacert', join(c.dir, 'pki', 'ca.crt'), 'https://kubernetes.default.svc:443/version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { gitVersion: string }).gitVersion, c.version);
  });

  test('a ClusterIP without endpoints refuses at once', async () => {
    const ip = (c.store.get('services', NS, 'nobody')?.spec as { clusterIP: string }).clusterIP;
    const t0 = Date.now();
    const r = await inClient('curl', ['-sS', '--max-time', '10', `http://${ip}/`]);
    assert.equal(r.code, 7, `curl exit ${r.code}: ${r.stderr}`);
    assert.ok(Date.now() - t0 < 5000, 'refused, not timed out');
  });

  test('the laptop namespace reaches no pod, ClusterIP or cluster name, and fails at once', async () => {
    for (const url of [`http://${pods[0].ip}:8080/`, `http://${webIp}/`, `http://${c.dnsIp}:53/`]) {
      const t0 = Date.now();
      const r = await c.inLaptop('curl', ['-sS', '--max-time', '10', url]);
      const ms = Date.now() - t0;
      assert.equal(r.code, 7, `curl ${url} from the laptop: exit ${r.code} ${r.stderr}`);
      assert.ok(ms < 2000, `failed at once (${ms} ms)`);
    }
    const dns = await c.inLaptop('getent', ['hosts', `web.${NS}.svc.cluster.local`], { timeoutMs: 30_000 });
    assert.notEqual(dns.code, 0);
    // Only loopback there.
    const links = await c.inLaptop('ip', ['-o', 'link', 'show']);
    assert.deepEqual(links.stdout.trim().split('\n').map((l) => l.split(':')[1].trim()), ['lo']);
    // While the API answers at the kubeconfig's address.
    const version = await c.inLaptop('curl', ['-sS', '--max-time', '10', '--cacert', join(c.dir, 'pki', 'ca.crt'), `${c.apiUrl}/version`]);
    assert.equal(version.code, 0, version.stderr);
  });
});
