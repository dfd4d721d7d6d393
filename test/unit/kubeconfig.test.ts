import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { clientConfig, loadKubeconfig, resolveTarget } from '../../plugin/src/kube/config.ts';
import { isKtError, type ErrorCode } from '../../plugin/src/errors.ts';
import { apiFor } from '../../plugin/src/kube/api.ts';
import { kubeconfigYaml, makePki } from '../cluster/upstream/pki.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kt-kubeconfig-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (e) => isKtError(e) && e.code === code);
}

const FIRST = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: { server: "https://one.example:6443/", certificate-authority: ca.crt }
- name: shared
  cluster: { server: "https://first.example" }
users:
- name: u1
  user: { token: t1, client-key: keys/u1.key, exec: { command: ./bin/auth, apiVersion: client.authentication.k8s.io/v1 } }
contexts:
- name: dev
  context: { cluster: c1, user: u1, namespace: shop }
- name: nons
  context: { cluster: shared, user: u1 }
`;
// The second file repeats names: the first file's entries must win, and its
// current-context too; entries only it has are added.
const SECOND = `
current-context: prod
clusters:
- name: shared
  cluster: { server: "https://second.example" }
- name: c2
  cluster: { server: "https://two.example" }
users:
- name: u1
  user: { token: overridden }
- name: u2
  user: { token: t2 }
contexts:
- name: dev
  context: { cluster: c2, user: u2, namespace: other }
- name: prod
  context: { cluster: c2, user: u2, namespace: live }
- name: nouser
  context: { cluster: c2, user: ghost }
- name: noserver
  context: { cluster: missing }
`;

test('KUBECONFIG with two files merges them as kubectl does', async () => {
  await withDir(async (dir) => {
    await mkdir(join(dir, 'a'));
    const a = join(dir, 'a', 'config');
    const b = join(dir, 'b.yaml');
    await writeFile(a, FIRST);
    await writeFile(b, SECOND);
    const missing = join(dir, 'does-not-exist');
    const kc = await loadKubeconfig({ env: { KUBECONFIG: [a, missing, b].join(delimiter) } });
    assert.deepEqual(kc.files, [a, b], 'missing files in KUBECONFIG are skipped');
    assert.equal(kc.currentContext, 'dev', 'current-context from the first file that sets it');
    assert.equal(kc.clusters.get('shared')?.cluster.server, 'https://first.example', 'first file wins a cluster name');
    assert.equal(kc.clusters.get('c2')?.cluster.server, 'https://two.example', 'later files add new names');
    assert.equal(kc.users.get('u1')?.user.token, 't1', 'first file wins a user name');
    assert.equal(kc.contexts.get('dev')?.cluster, 'c1', 'first file wins a context name');
    assert.equal(kc.contexts.get('prod')?.namespace, 'live');
    // Relative paths are relative to the file that holds them.
    assert.equal(kc.clusters.get('c1')?.cluster['certificate-authority'], join(dir, 'a', 'ca.crt'));
    assert.equal(kc.users.get('u1')?.user['client-key'], join(dir, 'a', 'keys', 'u1.key'));
    assert.deepEqual((kc.users.get('u1')?.user.exec as { command: string }).command, join(dir, 'a', 'bin', 'auth'));

    const reversed = await loadKubeconfig({ env: { KUBECONFIG: [b, a].join(delimiter) } });
    assert.equal(reversed.currentContext, 'prod');
    assert.equal(reversed.clusters.get('shared')?.cluster.server, 'https://second.example');
  });
});

test('namespace: -n, else the context namespace, else default', async () => {
  await withDir(async (dir) => {
    const a = join(dir, 'config');
    await writeFile(a, FIRST);
    const kc = await loadKubeconfig({ kubeconfig: a, env: {} });
    assert.equal(resolveTarget(kc, {}).namespace, 'shop');
    assert.equal(resolveTarget(kc, { namespace: 'cli' }).namespace, 'cli');
    const nons = resolveTarget(kc, { context: 'nons' });
    assert.equal(nons.namespace, 'default');
    assert.equal(nons.server, 'https://first.example');
    assert.equal(resolveTarget(kc, {}).context, 'dev');
  });
});

test('default path is ~/.kube/config; --kubeconfig overrides KUBECONFIG', async () => {
  await withDir(async (dir) => {
    await mkdir(join(dir, '.kube'));
    await writeFile(join(dir, '.kube', 'config'), FIRST);
    const other = join(dir, 'other');
    await writeFile(other, SECOND);
    assert.equal((await loadKubeconfig({ env: { HOME: dir } })).currentContext, 'dev');
    assert.equal((await loadKubeconfig({ env: { HOME: dir, KUBECONFIG: '' } })).currentContext, 'dev');
    assert.equal((await loadKubeconfig({ kubeconfig: other, env: { HOME: dir } })).currentContext, 'prod');
  });
});

test('missing or broken kubeconfig and bad contexts are typed errors, never a localhost fallback', async () => {
  await withDir(async (dir) => {
    await rejectsWith(loadKubeconfig({ env: { HOME: dir } }), 'KT_ERR_KUBECONFIG_NOT_FOUND');
    await rejectsWith(loadKubeconfig({ kubeconfig: join(dir, 'nope'), env: {} }), 'KT_ERR_KUBECONFIG_NOT_FOUND');
    await rejectsWith(loadKubeconfig({ env: { KUBECONFIG: `${join(dir, 'x')}${delimiter}${join(dir, 'y')}` } }), 'KT_ERR_KUBECONFIG_NOT_FOUND');
    const broken = join(dir, 'broken');
    await writeFile(broken, 'clusters: [ {name: a, cluster: {server: x}\n');
    await rejectsWith(loadKubeconfig({ kubeconfig: broken, env: {} }), 'KT_ERR_KUBECONFIG_INVALID');
    await writeFile(broken, 'clusters: {a: 1}\n');
    await rejectsWith(loadKubeconfig({ kubeconfig: broken, env: {} }), 'KT_ERR_KUBECONFIG_INVALID');

    const b = join(dir, 'b');
    await writeFile(b, SECOND.replace('current-context: prod', ''));
    const kc = await loadKubeconfig({ kubeconfig: b, env: {} });
    await rejectsWith(() => resolveTarget(kc, {}), 'KT_ERR_KUBECONFIG_NO_CONTEXT');
    await rejectsWith(() => resolveTarget(kc, { context: 'nope' }), 'KT_ERR_KUBECONFIG_BAD_CONTEXT');
    await rejectsWith(() => resolveTarget(kc, { context: 'nouser' }), 'KT_ERR_KUBECONFIG_NO_USER');
    await rejectsWith(() => resolveTarget(kc, { context: 'noserver' }), 'KT_ERR_KUBECONFIG_NO_SERVER');
    // An empty file is an empty kubeconfig: it loads, and then has no context.
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    await rejectsWith(async () => resolveTarget(await loadKubeconfig({ kubeconfig: empty, env: {} }), {}), 'KT_ERR_KUBECONFIG_NO_CONTEXT');
  });
});

test('clientConfig builds a client-node KubeConfig for the chosen context only', async () => {
  await withDir(async (dir) => {
    const a = join(dir, 'config');
    await writeFile(a, FIRST);
    const kc = await loadKubeconfig({ kubeconfig: a, env: {} });
    const client = await clientConfig(resolveTarget(kc, { context: 'nons', namespace: 'ns1' }));
    assert.equal(client.getCurrentContext(), 'nons');
    assert.equal(client.getCurrentCluster()?.server, 'https://first.example');
    assert.equal(client.getCurrentUser()?.token, 't1');
    assert.equal(client.getContextObject('nons')?.namespace, 'ns1');
    assert.equal(client.getContexts().length, 1);
  });
});

test('a plain http:// server (kubectl proxy) is usable as it is with kubectl; https keeps TLS verification', async () => {
  await withDir(async (dir) => {
    const a = join(dir, 'config');
    const doc = (server: string): string => `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "${server}"}}]\nusers: [{name: u, user: {}}]\n`;
    await writeFile(a, doc('http://127.0.0.1:8001'));
    const plain = await clientConfig(resolveTarget(await loadKubeconfig({ kubeconfig: a, env: {} }), {}));
    assert.equal(plain.getCurrentCluster()?.skipTLSVerify, true);
    // (client-node refuses an http:// server otherwise; test/unit/cli-bundle.test.ts makes the request.)
    await writeFile(a, doc('https://k8s.example'));
    const tls = await clientConfig(resolveTarget(await loadKubeconfig({ kubeconfig: a, env: {} }), {}));
    assert.equal(tls.getCurrentCluster()?.skipTLSVerify, false);
  });
});

test('API calls share kept-alive TLS connections and resume the TLS session (client-node alone does a full handshake per call)', async () => {
  await withDir(async (dir) => {
    const pki = await makePki(join(dir, 'pki'), { apiIps: ['127.0.0.1'], nodeName: 'n', clusterDomain: 'cluster.local' });
    let connections = 0;
    let full = 0;
    const server = createServer({ cert: await readFile(pki.apiserver.certFile), key: await readFile(pki.apiserver.keyFile), ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: req.url?.split('/').pop(), namespace: 'ns' } }));
    });
    server.on('secureConnection', (socket) => {
      connections++;
      if (!socket.isSessionReused()) full++;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const file = join(dir, 'config');
      await writeFile(file, kubeconfigYaml({ name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca: pki.ca, user: 'dev', id: pki.clients.dev }));
      const api = await apiFor(await clientConfig(resolveTarget(await loadKubeconfig({ kubeconfig: file, env: {} }), {})));
      for (const name of ['a', 'b', 'c']) assert.equal((await api.core.readNamespacedService({ namespace: 'ns', name })).metadata?.name, name);
      // One full handshake; a call may start before the previous one's connection is free again, and then resumes its session.
      assert.equal(full, 1);
      assert.ok(connections < 3, `${connections} connections for 3 calls`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
