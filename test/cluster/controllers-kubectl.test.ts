// The controllers as the real kubectl sees them, through the test cluster's
// API server (no node: a stand-in marks pods Running and Ready): apply,
// rollout status, set image, rollout undo, scale, endpoints, cascading delete.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from './store.ts';
import { startApiServer } from './apiserver/index.ts';
import { RESOURCES } from './apiserver/resources.ts';
import { KubeletError, type ApiServer } from './types.ts';
import { startControllers, type Controllers } from './controllers/index.ts';
import { FakeNode, waitFor } from './controllers/testing.ts';

const APP = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: kt-demo/echo
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
`;

describe('controllers driven by kubectl', () => {
  let store: Store;
  let api: ApiServer;
  let controllers: Controllers;
  let node: FakeNode;
  let dir: string;

  const kubectl = (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        'kubectl',
        args,
        { env: { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), KUBECACHEDIR: join(dir, 'cache') }, timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)),
      );
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kt-controllers-'));
    store = new Store();
    const refuse = (): never => {
      throw new KubeletError(404, 'no node in this test');
    };
    api = await startApiServer({ store, host: '127.0.0.1', serviceCidr: '10.96.0.0/16', kubelet: { portForward: async () => refuse(), logs: async () => refuse() }, debug: () => {} });
    controllers = startControllers({ store });
    node = new FakeNode(store);
    writeFileSync(
      join(dir, 'kubeconfig'),
      `apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "${api.url}"}}]
users: [{name: u, user: {}}]
contexts: [{name: t, context: {cluster: t, user: u, namespace: default}}]
current-context: t
`,
    );
    writeFileSync(join(dir, 'app.yaml'), APP);
  });

  after(async () => {
    node.close();
    controllers.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rolls out, rolls forward, rolls back and scales as kubectl rollout status expects', async () => {
    await kubectl('apply', '-f', join(dir, 'app.yaml'));
    assert.match(await kubectl('rollout', 'status', 'deploy/echo', '--timeout=30s'), /deployment "echo" successfully rolled out/);
    const rs1 = (await kubectl('get', 'rs', '-o', 'name')).trim();
    assert.match(rs1, /^replicaset\.apps\/echo-[bcdfghjklmnpqrstvwxz2456789]+$/);

    await kubectl('set', 'image', 'deploy/echo', 'echo=kt-demo/echo:v2');
    const status = await kubectl('rollout', 'status', 'deploy/echo', '--timeout=30s');
    assert.match(status, /successfully rolled out/);
    const images = await kubectl('get', 'pods', '-o', 'jsonpath={range .items[*]}{.spec.containers[0].image}{"\\n"}{end}');
    assert.deepEqual(images.trim().split('\n'), ['kt-demo/echo:v2', 'kt-demo/echo:v2', 'kt-demo/echo:v2']);

    await kubectl('rollout', 'undo', 'deploy/echo');
    assert.match(await kubectl('rollout', 'status', 'deploy/echo', '--timeout=30s'), /successfully rolled out/);
    // The first ReplicaSet is reused, under revision 3.
    const live = await kubectl('get', 'rs', '-o', 'jsonpath={range .items[?(@.spec.replicas>0)]}{.metadata.name} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}{end}');
    assert.equal(live, `${rs1.replace('replicaset.apps/', '')} 3`);

    await kubectl('scale', 'deploy/echo', '--replicas=5');
    assert.match(await kubectl('rollout', 'status', 'deploy/echo', '--timeout=30s'), /successfully rolled out/);
    const ready = await kubectl('get', 'deploy', 'echo', '-o', 'jsonpath={.status.readyReplicas}/{.status.updatedReplicas}/{.status.availableReplicas}');
    assert.equal(ready, '5/5/5');
    const ips = await kubectl('get', 'endpoints', 'echo', '-o', 'jsonpath={.subsets[0].addresses[*].ip}');
    assert.equal(ips.split(' ').length, 5);
    assert.equal(await kubectl('get', 'endpoints', 'echo', '-o', 'jsonpath={.subsets[0].ports[0].port}'), '8080');
    const described = await kubectl('describe', 'deploy', 'echo');
    assert.match(described, /ScalingReplicaSet\s+.*Scaled up replica set echo-\w+ from 0 to 3/);
    const pod = (await kubectl('get', 'pods', '-o', 'name')).split('\n')[0];
    assert.match(await kubectl('describe', pod), /Scheduled\s+.*Successfully assigned default\/echo-\S+ to kt-node/);
  });

  it('deletes ReplicaSets and pods with their Deployment, and Endpoints with their Service', async () => {
    await kubectl('delete', 'deploy/echo', 'svc/echo');
    await waitFor(store, 'all gone', () =>
      [RESOURCES.replicasets, RESOURCES.pods, RESOURCES.endpointslices].every((r) => store.list(r, 'default').length === 0) &&
      !store.get(RESOURCES.endpoints, 'default', 'echo'),
    );
    assert.equal((await kubectl('get', 'rs,pods', '-o', 'name')).trim(), '');
  });
});
