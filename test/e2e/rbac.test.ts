// The plugin as a real cluster judges it: user `dev` holds exactly what
// `kubectl kt rbac` prints in `shop`, which enforces Pod Security
// "restricted". Taking one right away makes the plugin fail with one line
// that names the call, and leave nothing behind; a pod that is not
// "restricted" is refused by admission, while the plugin's own are admitted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEV_USER, startCluster, type Cluster } from '../cluster/cluster.ts';
import { RULES } from '../../plugin/src/commands/rbac.ts';
import { ktObjects, waitNoKtPods } from './helpers.ts';

const NS = 'shop';
const TIGHT = 'tight';

let cluster: Cluster;

/** `kubectl auth can-i` as user dev (the kubeconfig of the laptop environment); `pods/exec` means the subresource. */
async function devCan(verb: string, resource: string, ns: string): Promise<boolean> {
  const [res, sub] = resource.split('/');
  const r = await cluster.inLaptop('kubectl', ['auth', 'can-i', verb, res, ...(sub ? [`--subresource=${sub}`] : []), ...(ns ? ['-n', ns] : [])]);
  return r.stdout.trim() === 'yes';
}

before(async () => {
  cluster = await startCluster();
  // Namespace `tight`: restricted, and dev holds every rule of `kubectl kt rbac` but pods/portforward.
  const rules = RULES.map((r) => ({ ...r, resources: r.resources.filter((x) => x !== 'pods/portforward') })).filter((r) => r.resources.length > 0);
  const manifest = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TIGHT, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'kt-no-tunnel', namespace: TIGHT }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kt-no-tunnel', namespace: TIGHT },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kt-no-tunnel' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: DEV_USER }],
    },
  ];
  const r = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifest }) });
  assert.equal(r.code, 0, r.stderr);
  await cluster.admin.call('GET', `/api/v1/namespaces/${TIGHT}`);
});

after(async () => {
  await cluster?.stop();
});

describe('RBAC on the upstream API server', () => {
  test('dev holds what `kubectl kt rbac` prints in shop, and nothing cluster-wide', async () => {
    assert.equal(await devCan('create', 'pods/portforward', NS), true);
    assert.equal(await devCan('patch', 'services', NS), true);
    assert.equal(await devCan('create', 'pods/exec', NS), false, 'exec is not in the Role');
    assert.equal(await devCan('list', 'nodes', ''), false);
    assert.equal(await devCan('list', 'pods', 'kube-system'), false);
    assert.equal(await devCan('get', 'pods', 'tight'), true);
    assert.equal(await devCan('create', 'pods/portforward', TIGHT), false);
  });

  test('without pods/portforward, connect fails with KT_ERR_API_FORBIDDEN naming the call, and leaves nothing', async () => {
    const r = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', TIGHT, '--', 'true'], { timeoutMs: 120_000 });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    const err = lines.find((l) => l.startsWith('error '));
    assert.ok(err, r.stderr);
    assert.match(err, /^error KT_ERR_API_FORBIDDEN: cannot create pods\/portforward .*in namespace tight/);
    await waitNoKtPods(cluster);
    for (const res of ['pods', 'services', 'secrets']) assert.deepEqual(ktObjects(cluster, res).filter((n) => n.startsWith(`${TIGHT}/`)), [], res);
  });

  test('in a namespace where dev holds nothing, the first call is refused in one line', async () => {
    const r = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', 'kube-public', '--', 'true'], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^error KT_ERR_API_FORBIDDEN: cannot create pods "kt-connect-[a-z0-9]+" in namespace kube-public: forbidden — see `kubectl kt rbac`/m);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('error ')).length, 1, r.stderr);
    assert.deepEqual(ktObjects(cluster, 'pods').filter((n) => n.startsWith('kube-public/')), []);
  });

  test('Pod Security admission refuses a pod that is not "restricted"; the plugin\'s own pods pass', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'rooty', namespace: NS }, spec: { containers: [{ name: 'main', image: 'shell', command: ['sleep', 'infinity'] }] } };
    const refused = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /violates PodSecurity "restricted:latest"/);
    const ok = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--', 'true'], { timeoutMs: 120_000 });
    assert.equal(ok.code, 0, ok.stderr);
    await waitNoKtPods(cluster);
  });
});
