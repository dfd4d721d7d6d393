// The real kubectl (the machine's dispatcher picks kubectl 1.32 from /version)
// against the API server in this process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, waitForOutput, type Harness } from './harness.ts';
import { RESOURCES } from './resources.ts';
import { ensureKubernetesService } from './lifecycle.ts';

let h: Harness;
let dir: string;

before(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'kt-kubectl-test-'));
});

after(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await h.kubectl(args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[]): Promise<string> {
  const r = await h.kubectl(args);
  assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} should fail: ${r.stdout}`);
  return r.stderr;
}

type Obj = Record<string, unknown>;
const spec = (o: unknown): Obj => (o as { spec: Obj }).spec;

const manifest = (image: string, replicas: number, ns: string): string => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${ns}, labels: {app: web}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ${image}
        ports: [{containerPort: 8080}]
        env: [{name: A, value: "1"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`;

test('discovery: version, api-resources with short names (plain documents, no aggregated discovery)', { timeout: 60_000 }, async () => {
  const v = JSON.parse(await ok(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string; minor: string } };
  assert.equal(v.serverVersion.gitVersion, 'v1.32.4');
  const res = await ok(['api-resources', '--no-headers']);
  for (const [name, short] of [['pods', 'po'], ['services', 'svc'], ['deployments', 'deploy'], ['replicasets', 'rs'], ['namespaces', 'ns'], ['configmaps', 'cm']]) {
    assert.match(res, new RegExp(`^${name}\\s+${short}\\s`, 'm'));
  }
  assert.match(await ok(['get', 'ns', '--no-headers']), /^kube-system\s+Active/m);
  // No authorization in the test cluster: self-reviews are allowed (AlwaysAllow).
  assert.equal(await ok(['auth', 'can-i', 'delete', 'deployments', '-n', 'any']), 'yes\n');
  assert.match(await ok(['auth', 'can-i', '--list']), /^\*\.\*\s+\[\]\s+\[\]\s+\[\*\]$/m);
});

test('apply -f creates, updates, then leaves an unchanged manifest alone', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'apply']);
  const file = join(dir, 'app.yaml');
  writeFileSync(file, manifest('app:1', 2, 'apply'));
  assert.match(await ok(['apply', '-f', file]), /deployment.apps\/web created\nservice\/web created/);
  const svc = h.store.get(RESOURCES.services, 'apply', 'web');
  assert.match(String(spec(svc).clusterIP), /^10\.97\./, 'a ClusterIP is allocated from the service CIDR');

  writeFileSync(file, manifest('app:2', 2, 'apply'));
  assert.match(await ok(['apply', '-f', file]), /deployment.apps\/web configured\nservice\/web unchanged/);
  const d = h.store.get(RESOURCES.deployments, 'apply', 'web');
  const containers = (spec(spec(d).template).containers as Obj[]);
  assert.equal(containers[0].image, 'app:2');
  assert.equal(d?.metadata.generation, 2);

  const rv = d?.metadata.resourceVersion;
  assert.match(await ok(['apply', '-f', file]), /deployment.apps\/web unchanged\nservice\/web unchanged/);
  assert.equal(h.store.get(RESOURCES.deployments, 'apply', 'web')?.metadata.resourceVersion, rv);

  assert.match(await fails(['create', '-f', file]), /Error from server \(AlreadyExists\): error when creating ".*": deployments.apps "web" already exists/);

  // Server-side field validation: kubectl asks for Strict (our OpenAPI declares fieldValidation).
  writeFileSync(file, manifest('app:2', 2, 'apply').replace('ports: [{containerPort: 8080}]', 'ports: [{containerPort: 8080, hostPortt: 1}]'));
  assert.match(
    await fails(['apply', '-f', file]),
    /Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers\[0\].ports\[0\].hostPortt"/,
  );
  const warned = await h.kubectl(['apply', '-f', file, '--validate=warn']);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /Warning: unknown field "spec.template.spec.containers\[0\].ports\[0\].hostPortt"/);
});

test('apply --server-side: creates, then merges the applied configuration', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'ssa']);
  const file = join(dir, 'ssa.yaml');
  writeFileSync(file, manifest('app:1', 1, 'ssa'));
  assert.match(await ok(['apply', '--server-side', '-f', file]), /deployment.apps\/web serverside-applied/);
  writeFileSync(file, manifest('app:3', 2, 'ssa'));
  await ok(['apply', '--server-side', '-f', file]);
  const d = h.store.get(RESOURCES.deployments, 'ssa', 'web');
  assert.equal(spec(d).replicas, 2);
  assert.equal((spec(spec(d).template).containers as Obj[])[0].image, 'app:3');
});

test('create: typed commands (protobuf bodies) and generateName', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'made']);
  await ok(['create', 'configmap', 'cfg', '-n', 'made', '--from-literal=k=v']);
  await ok(['create', 'secret', 'generic', 'sec', '-n', 'made', '--from-literal=k=v']);
  await ok(['create', 'deployment', 'zero', '-n', 'made', '--image=img:1', '--replicas=0']);
  await ok(['create', 'service', 'clusterip', 'svc', '-n', 'made', '--tcp=80:8080']);
  assert.deepEqual(h.store.get(RESOURCES.configmaps, 'made', 'cfg')?.data, { k: 'v' });
  assert.deepEqual(h.store.get(RESOURCES.secrets, 'made', 'sec')?.data, { k: 'dg==' });
  assert.equal(spec(h.store.get(RESOURCES.deployments, 'made', 'zero')).replicas, 0);
  assert.equal((spec(h.store.get(RESOURCES.services, 'made', 'svc')).ports as Obj[])[0].targetPort, 8080);
  assert.ok(h.store.get(RESOURCES.serviceaccounts, 'made', 'default'), 'a new namespace gets the default ServiceAccount');

  const out = await ok(['create', '-n', 'made', '-f', '-', '-o', 'name'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } }));
  assert.match(out.trim(), /^configmap\/gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);

  assert.match(await fails(['create', 'configmap', 'x', '-n', 'nowhere']), /namespaces "nowhere" not found/);
  assert.match(await fails(['create', 'configmap', 'Bad_Name', '-n', 'made']), /ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
  assert.match(await fails(['create', 'service', 'clusterip', 'taken', '-n', 'made', '--tcp=80', `--clusterip=${String(spec(h.store.get(RESOURCES.services, 'made', 'svc')).clusterIP)}`]), /provided IP is already allocated/);
});

test('get: table, -o wide/json/yaml/name, label and field selectors, not found', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'get']);
  h.runningPod('get', 'a', { app: 'web', tier: 'front' });
  h.runningPod('get', 'b', { app: 'db' });
  h.store.create(RESOURCES.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c', namespace: 'get' }, spec: { containers: [{ name: 'c', image: 'i' }] }, status: { phase: 'Pending' } });

  const table = await ok(['get', 'pods', '-n', 'get']);
  assert.match(table, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
  assert.match(table, /^a\s+1\/1\s+Running\s+0\s+\d+s$/m);
  assert.match(table, /^c\s+0\/1\s+Pending\s+0\s+\d+s$/m);
  assert.match(await ok(['get', 'pods', '-n', 'get', '-o', 'wide']), /^a\s+1\/1\s+Running\s+0\s+\d+s\s+10\.244\.0\.9\s+node-a\s+<none>\s+<none>$/m);
  const list = JSON.parse(await ok(['get', 'pods', '-n', 'get', '-o', 'json'])) as { kind: string; items: { metadata: { name: string } }[] };
  assert.deepEqual(list.items.map((i) => i.metadata.name), ['a', 'b', 'c']);
  assert.match(await ok(['get', 'pod', 'a', '-n', 'get', '-o', 'yaml']), /^ {2}name: a$/m);
  assert.equal(await ok(['get', 'pods', '-n', 'get', '-o', 'name', '-l', 'app in (web,db),tier!=back']), 'pod/a\npod/b\n');
  assert.equal(await ok(['get', 'pods', '-n', 'get', '-o', 'name', '-l', '!tier']), 'pod/b\npod/c\n');
  assert.equal(await ok(['get', 'pods', '-n', 'get', '-o', 'name', '--field-selector', 'status.phase!=Running']), 'pod/c\n');
  assert.equal(await ok(['get', 'pods', '-A', '-o', 'name', '--field-selector', 'metadata.name=b,spec.nodeName=node-a']), 'pod/b\n');
  ensureKubernetesService(h.store, { clusterIP: '10.97.0.1', endpoint: { ip: '127.0.0.1', port: h.server.port } });
  assert.match(await ok(['get', 'svc,ep', 'kubernetes', '-n', 'default']), new RegExp(`^service/kubernetes\\s+ClusterIP\\s+10\\.97\\.0\\.1\\s+<none>\\s+443/TCP[^]*^endpoints/kubernetes\\s+127\\.0\\.0\\.1:${h.server.port}\\s`, 'm'));
  assert.match(await fails(['get', 'pod', 'nope', '-n', 'get']), /Error from server \(NotFound\): pods "nope" not found/);
  assert.match(await fails(['get', 'deploy', 'nope', '-n', 'get']), /Error from server \(NotFound\): deployments.apps "nope" not found/);
  assert.match(await fails(['get', 'pods', '-n', 'get', '--field-selector', 'spec.bogus=1']), /field label not supported: spec.bogus/);
  // Paging: kubectl asks for chunks of --chunk-size and follows `continue`.
  assert.equal(await ok(['get', 'pods', '-n', 'get', '-o', 'name', '--chunk-size=1']), 'pod/a\npod/b\npod/c\n');
});

test('scale and patch (merge, json, strategic), and the status subresource', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'patch']);
  await ok(['create', 'deployment', 'web', '-n', 'patch', '--image=app:1']);
  assert.match(await ok(['scale', 'deploy/web', '-n', 'patch', '--replicas=3']), /deployment.apps\/web scaled/);
  assert.equal(spec(h.store.get(RESOURCES.deployments, 'patch', 'web')).replicas, 3);

  await ok(['patch', 'deploy', 'web', '-n', 'patch', '--type', 'merge', '-p', '{"metadata":{"labels":{"patched":"merge"}}}']);
  await ok(['patch', 'deploy', 'web', '-n', 'patch', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/replicas","value":4}]']);
  await ok(['patch', 'deploy', 'web', '-n', 'patch', '--type', 'strategic', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"X","value":"y"}]}]}}}}']);
  const d = h.store.get(RESOURCES.deployments, 'patch', 'web');
  assert.equal(d?.metadata.labels?.patched, 'merge');
  assert.equal(spec(d).replicas, 4);
  const c = (spec(spec(d).template).containers as Obj[])[0];
  assert.equal(c.image, 'app:1', 'the strategic patch merged into the container named "app"');
  assert.deepEqual(c.env, [{ name: 'X', value: 'y' }]);

  assert.match(await fails(['patch', 'deploy', 'web', '-n', 'patch', '--type', 'json', '-p', '[{"op":"test","path":"/spec/replicas","value":9}]']), /test failed/);
  await ok(['patch', 'deploy', 'web', '-n', 'patch', '--subresource=status', '--type', 'merge', '-p', '{"status":{"readyReplicas":2},"spec":{"replicas":9}}']);
  const after = h.store.get(RESOURCES.deployments, 'patch', 'web');
  assert.equal((after?.status as Obj).readyReplicas, 2);
  assert.equal(spec(after).replicas, 4, 'a status patch leaves spec alone');
  assert.match(await ok(['get', 'deploy', 'web', '-n', 'patch']), /^web\s+2\/4\s+0\s+0\s+/m);

  assert.match(
    await fails(['patch', 'deploy', 'web', '-n', 'patch', '--type', 'merge', '-p', '{"metadata":{"labels":{"a":"bad value!"}}}']),
    /The Deployment "web" is invalid: metadata.labels: Invalid value: "bad value!": a valid label must be/,
  );
  h.runningPod('patch', 'p');
  await ok(['set', 'image', 'pod/p', '-n', 'patch', 'main=shell:2']);
  assert.match(await fails(['patch', 'pod', 'p', '-n', 'patch', '-p', '{"spec":{"restartPolicy":"Never"}}']), /The Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than/);
});

test('get -w prints the change it watches for', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'watch']);
  h.runningPod('watch', 'w1');
  const child = h.spawnKubectl(['get', 'pods', '-n', 'watch', '-w']);
  try {
    await waitForOutput(child, /^w1\s+1\/1\s+Running/m);
    h.store.mutate(RESOURCES.pods, 'watch', 'w1', (p) => {
      (p.status as Obj).phase = 'Failed';
      (p.status as Obj).reason = 'Evicted';
      return p;
    });
    await waitForOutput(child, /^w1\s+1\/1\s+Evicted/m);
    h.store.create(RESOURCES.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'w2', namespace: 'watch' }, spec: { containers: [{ name: 'c', image: 'i' }] } });
    await waitForOutput(child, /^w2\s+0\/1\s+/m);
  } finally {
    child.kill();
  }
});

test('delete --wait: at once for a Deployment, after the node finalizes for a pod', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'del']);
  await ok(['create', 'deployment', 'gone', '-n', 'del', '--image=i']);
  assert.match(await ok(['delete', 'deploy', 'gone', '-n', 'del', '--wait']), /deployment.apps "gone" deleted/);
  assert.equal(h.store.get(RESOURCES.deployments, 'del', 'gone'), undefined);

  h.runningPod('del', 'p');
  const child = h.spawnKubectl(['delete', 'pod', 'p', '-n', 'del', '--wait']);
  const exited = once(child, 'exit');
  await waitForOutput(child, /pod "p" deleted/);
  const pending = h.store.get(RESOURCES.pods, 'del', 'p');
  assert.ok(pending?.metadata.deletionTimestamp, 'a pod on a node is deleted gracefully');
  assert.equal(pending?.metadata.deletionGracePeriodSeconds, 30);
  assert.equal(child.exitCode, null, 'kubectl still waits for the pod to go');
  assert.match(await ok(['get', 'pod', 'p', '-n', 'del']), /Terminating/);
  // What the node does once the container stopped.
  await ok(['delete', 'pod', 'p', '-n', 'del', '--grace-period=0', '--force']);
  const [code] = (await exited) as [number];
  assert.equal(code, 0);
  assert.equal(h.store.get(RESOURCES.pods, 'del', 'p'), undefined);
  assert.match(await fails(['delete', 'pod', 'p', '-n', 'del']), /pods "p" not found/);
});

test('logs: the kubelet text, and the errors kubectl shows for pods without one', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'logs']);
  h.runningPod('logs', 'l1');
  assert.equal(await ok(['logs', 'l1', '-n', 'logs', '--tail=5', '--timestamps']), 'log line 1 from logs/l1/main\nlog line 2\n');
  assert.deepEqual(h.logCalls.at(-1), { namespace: 'logs', pod: 'l1', opts: { container: 'main', follow: false, timestamps: true, previous: false, tailLines: 5 } });
  h.store.create(RESOURCES.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pending', namespace: 'logs' }, spec: { containers: [{ name: 'c', image: 'i' }] }, status: { phase: 'Pending' } });
  assert.match(await fails(['logs', 'pending', '-n', 'logs']), /pod pending does not have a host assigned/);
  assert.match(await fails(['logs', 'l1', '-n', 'logs', '-c', 'other']), /container other is not valid for pod l1/);
});

test('namespace deletion: Terminating, no new content, the protected ones stay', { timeout: 60_000 }, async () => {
  await ok(['create', 'namespace', 'doomed']);
  await ok(['create', 'configmap', 'c', '-n', 'doomed']);
  // The namespace controller (test/cluster/controllers) empties and removes it; without it, it stays Terminating.
  await ok(['delete', 'namespace', 'doomed', '--wait=false']);
  assert.match(await ok(['get', 'ns', 'doomed']), /^doomed\s+Terminating\s/m);
  assert.match(
    await fails(['create', 'configmap', 'late', '-n', 'doomed']),
    /configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated/,
  );
  assert.match(await fails(['delete', 'namespace', 'default']), /namespaces "default" is forbidden: this namespace may not be deleted/);
});
