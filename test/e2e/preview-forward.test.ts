// `kubectl kt preview` and `kubectl kt forward` end to end on the test
// cluster, from the laptop namespace. preview: a pod reaches a server that
// runs only on the laptop, by a Service name that did not exist before.
// forward: the laptop reaches a Service on a local port. Both leave nothing.
// And a proxy pod that fails to start is reported with its last log line.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { applyApps, echoApp, namespace } from '../fixtures/workloads.ts';
import { exited, ktObjects, waitForLine, waitNoKtPods } from './helpers.ts';

const NS = 'shop';

let cluster: Cluster;

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), echoApp(NS, 'web', { pod: true })], { pods: ['web'] });
});

after(async () => {
  await cluster?.stop();
});

describe('preview', () => {
  test('a pod reaches a laptop-only server by a new Service name; nothing is left after', async () => {
    const server = cluster.spawnInLaptop('node', ['-e', `require('http').createServer((q, r) => r.end('laptop ' + q.url)).listen(18080, '127.0.0.1', () => console.error('listening'))`]);
    try {
      await waitForLine(server, /^listening/);
      const before = await cluster.inPod(NS, 'web', 'curl', ['-sS', '--max-time', '3', `http://web-alice.${NS}.svc.cluster.local/`]);
      assert.notEqual(before.code, 0, 'web-alice must not exist before the preview');
      const preview = cluster.spawnInLaptop('kubectl', ['kt', 'preview', 'web-alice', '--expose', '18080:80', '-n', NS]);
      try {
        await waitForLine(preview, /^previewing: web-alice:80 -> localhost:18080/);
        // The plugin reports once the Endpoints are there; the service proxy
        // programs them a moment later, as kube-proxy does.
        await cluster.serviceProxySynced();
        for (const host of ['web-alice', `web-alice.${NS}`, `web-alice.${NS}.svc.cluster.local`]) {
          const r = await cluster.inPod(NS, 'web', 'curl', ['-sS', '--max-time', '5', `http://${host}/from-pod`]);
          assert.equal(r.code, 0, `${host}: ${r.stderr}`);
          assert.equal(r.stdout, 'laptop /from-pod');
        }
        const status = await cluster.inLaptop('kubectl', ['kt', 'status', '-n', NS, '-o', 'json']);
        const report = JSON.parse(status.stdout) as { services: { name: string; state: string }[]; sessions: { kind: string }[] };
        assert.deepEqual(report.services.map((s) => [s.name, s.state]), [['web-alice', 'previewed']]);
        assert.deepEqual(report.sessions.map((s) => s.kind), ['preview']);
      } finally {
        preview.kill('SIGINT');
      }
      assert.equal(await exited(preview), 0);
      await waitNoKtPods(cluster);
      assert.deepEqual(ktObjects(cluster, 'services'), []);
    } finally {
      server.kill();
    }
  });

  test('a preview named like an existing Service is refused and leaves nothing', async () => {
    const r = await cluster.inLaptop('kubectl', ['kt', 'preview', 'web', '--expose', '18080:80', '-n', NS]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error KT_ERR_API_CONFLICT: cannot create services "web" in namespace shop/m);
    await waitNoKtPods(cluster);
    assert.deepEqual(ktObjects(cluster, 'services'), []);
  });
});

describe('forward', () => {
  test('svc/web on a local port, through the tunnel; nothing is left after', async () => {
    const fwd = cluster.spawnInLaptop('kubectl', ['kt', 'forward', 'svc/web', '18081:80', '-n', NS]);
    try {
      await waitForLine(fwd, /^forwarding 127\.0\.0\.1:18081 -> svc\/web:80/);
      for (let i = 0; i < 3; i++) {
        const r = await cluster.inLaptop('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:18081/n${i}`]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).pod, 'web');
      }
    } finally {
      fwd.kill('SIGINT');
    }
    assert.equal(await exited(fwd), 0);
    await waitNoKtPods(cluster);
  });

  test('a Service that does not exist fails with one line before any pod is made', async () => {
    const r = await cluster.inLaptop('kubectl', ['kt', 'forward', 'svc/nope', '18082:80', '-n', NS]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error KT_ERR_NO_SUCH_WORKLOAD: no service "nope" in namespace shop/m);
    assert.deepEqual(ktObjects(cluster, 'pods'), []);
  });
});

describe('a proxy pod that fails', () => {
  test('the error says why, with the last line the proxy logged', async () => {
    const { loadKubeconfig, resolveTarget, clientConfig } = await import('../../plugin/src/kube/config.ts');
    const { createPod, deletePod, podReady, waitForPod } = await import('../../plugin/src/kube/pods.ts');
    const { apiFor } = await import('../../plugin/src/kube/api.ts');
    const { DEFAULT_IMAGE, ENV } = await import('../../contract/protocol.ts');
    const kc = await apiFor(await clientConfig(resolveTarget(await loadKubeconfig({ kubeconfig: cluster.kubeconfig, env: {} }), { namespace: NS })));
    const ref = { namespace: NS, name: 'kt-broken-router' };
    // A router with no key to accept: the proxy refuses to start and says so in its log.
    await createPod(kc, {
      apiVersion: 'v1', kind: 'Pod', metadata: ref,
      spec: {
        restartPolicy: 'Never',
        // Admitted in the restricted namespace, as the plugin's own pods are.
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'kt-proxy', image: DEFAULT_IMAGE, env: [{ name: ENV.role, value: 'router' }], readinessProbe: { httpGet: { path: '/healthz', port: 8081 }, periodSeconds: 1 },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
      },
    } as never);
    try {
      await assert.rejects(waitForPod(kc, ref, podReady, { timeoutMs: 60_000, what: 'the broken router' }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'KT_ERR_PROXY_FAILED');
        assert.match(e.message, /the pod ended \(Failed: exit \d+, Error\); its log ends: kt-proxy [\d.]+: KT_AUTHORIZED_KEYS is empty/);
        return true;
      });
    } finally {
      await deletePod(kc, ref, 0);
    }
  });
});
