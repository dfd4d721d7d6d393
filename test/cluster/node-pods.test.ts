// The node runs pods as a kubelet would: image pull errors, env from
// ConfigMaps/Secrets/fields with $(VAR) expansion, the user of the security
// context, restart policies and exit codes, exec readiness probes, logs -f,
// and deletion within the grace period. One cluster for the file; kubectl in
// the laptop namespace where a user would use it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from './cluster.ts';
import type { KubeObject } from './store.ts';

const NS = 'pods';

let c: Cluster;

interface ContainerStatus {
  restartCount: number;
  ready: boolean;
  state: { waiting?: { reason: string }; running?: unknown; terminated?: { exitCode: number; reason: string } };
}

function statusOf(o: KubeObject | undefined): { phase?: string; cs?: ContainerStatus; conditions?: { type: string; status: string }[] } {
  const s = o?.status as { phase?: string; containerStatuses?: ContainerStatus[]; conditions?: { type: string; status: string }[] } | undefined;
  return { phase: s?.phase, cs: s?.containerStatuses?.[0], conditions: s?.conditions };
}

function ready(o: KubeObject | undefined): boolean {
  return statusOf(o).conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
}

async function apply(yaml: string): Promise<void> {
  const r = await c.kubectl(['apply', '-f', '-'], { input: yaml });
  assert.equal(r.code, 0, r.stderr);
}

function shellPod(name: string, script: string, extra = ''): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
spec:
${extra}  containers:
  - name: main
    image: shell
    command: [sh, -c, ${JSON.stringify(script)}]
`;
}

describe('pods on the node', { timeout: 300_000 }, () => {
  before(async () => {
    c = await startCluster();
    const r = await c.kubectl(['create', 'namespace', NS]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await c?.stop();
  });

  test('an unknown image ends in ImagePullBackOff and the pod stays Pending', async () => {
    await apply(`apiVersion: v1
kind: Pod
metadata: {name: nope, namespace: ${NS}}
spec:
  containers: [{name: main, image: registry.example.com/nope:1}]
`);
    const seen = new Set<string>();
    await c.waitFor('pods', NS, 'nope', (o) => {
      const reason = statusOf(o).cs?.state.waiting?.reason;
      if (reason) seen.add(reason);
      return reason === 'ImagePullBackOff';
    });
    assert.ok(seen.has('ErrImagePull'), [...seen].join());
    const get = await c.kubectl(['get', 'pod', '-n', NS, 'nope', '--no-headers']);
    assert.match(get.stdout, /0\/1\s+ImagePullBackOff/);
    assert.equal(statusOf(c.store.get('pods', NS, 'nope')).phase, 'Pending');
    const logs = await c.kubectl(['logs', '-n', NS, 'nope']);
    assert.notEqual(logs.code, 0);
    assert.match(logs.stderr, /waiting to start/);
    assert.equal((await c.kubectl(['delete', 'pod', '-n', NS, 'nope', '--wait=true'])).code, 0);
  });

  test('env from values, ConfigMaps, Secrets, envFrom and fields; $(VAR) expansion; runAsUser/runAsGroup', async () => {
    await apply(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: ${NS}}
data: {color: blue, size: L}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: ${NS}}
stringData: {password: s3cret}
---
${shellPod('env', 'id -u; id -g; echo "COLOR=$COLOR PW=$PW NAME=$MY_NAME NS=$MY_NS IP=$MY_IP GREETING=$GREETING CFG_size=$CFG_size"', `  restartPolicy: Never
  securityContext: {runAsUser: 65534, runAsGroup: 65534}
`)}    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: cfg, key: color}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MY_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: "hello $(COLOR)"}
    envFrom:
    - {prefix: CFG_, configMapRef: {name: cfg}}
`);
    const done = await c.waitFor('pods', NS, 'env', (o) => statusOf(o).phase === 'Succeeded');
    const ip = (done?.status as { podIP: string }).podIP;
    const logs = await c.kubectl(['logs', '-n', NS, 'env']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, `65534\n65534\nCOLOR=blue PW=s3cret NAME=env NS=${NS} IP=${ip} GREETING=hello blue CFG_size=L\n`);
  });

  test('restart policies: Never keeps the exit code, OnFailure restarts until success, Always restarts', async () => {
    await apply(shellPod('never', 'exit 3', '  restartPolicy: Never\n'));
    await apply(shellPod('onfailure', 'test -f /tmp/kt-onfailure-$KT_RUN && exit 0; touch /tmp/kt-onfailure-$KT_RUN; exit 1', '  restartPolicy: OnFailure\n')
      .replace('    command:', `    env: [{name: KT_RUN, value: "${c.name}"}]\n    command:`));
    await apply(shellPod('always', 'echo ran; exit 0', '  restartPolicy: Always\n'));
    try {
      const never = statusOf(await c.waitFor('pods', NS, 'never', (o) => statusOf(o).phase === 'Failed'));
      assert.equal(never.cs?.state.terminated?.exitCode, 3);
      assert.equal(never.cs?.restartCount, 0);
      const onf = statusOf(await c.waitFor('pods', NS, 'onfailure', (o) => statusOf(o).phase === 'Succeeded'));
      assert.equal(onf.cs?.restartCount, 1);
      assert.equal(onf.cs?.state.terminated?.reason, 'Completed');
      const always = statusOf(await c.waitFor('pods', NS, 'always', (o) => (statusOf(o).cs?.restartCount ?? 0) >= 1));
      assert.equal(always.phase, 'Running');
    } finally {
      await c.kubectl(['delete', 'pod', '-n', NS, 'never', 'onfailure', 'always', '--wait=true']);
      await c.inNode('rm', ['-f', `/tmp/kt-onfailure-${c.name}`]);
    }
  });

  test('an exec readiness probe gates Ready both ways', async () => {
    const marker = `/tmp/kt-ready-${c.name}`;
    await apply(`${shellPod('probed', 'exec sleep infinity')}    readinessProbe:
      exec: {command: [test, -f, ${marker}]}
      periodSeconds: 1
      failureThreshold: 1
`);
    try {
      await c.waitFor('pods', NS, 'probed', (o) => statusOf(o).cs?.state.running !== undefined);
      assert.equal(ready(c.store.get('pods', NS, 'probed')), false);
      assert.equal((await c.kubectl(['exec', '-n', NS, 'probed', '--', 'touch', marker])).code, 0);
      await c.waitFor('pods', NS, 'probed', ready);
      const r = await c.kubectl(['wait', '-n', NS, '--for=condition=Ready', 'pod/probed', '--timeout=10s']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await c.kubectl(['exec', '-n', NS, 'probed', '--', 'rm', marker])).code, 0);
      await c.waitFor('pods', NS, 'probed', (o) => !ready(o));
    } finally {
      await c.inNode('rm', ['-f', marker]);
    }
  });

  test('logs -f follows a running container until it exits', async () => {
    await apply(shellPod('talker', 'echo first; sleep 1; echo second', '  restartPolicy: Never\n'));
    await c.waitFor('pods', NS, 'talker', (o) => statusOf(o).cs?.state.running !== undefined);
    const r = await c.kubectl(['logs', '-f', '-n', NS, 'talker'], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'first\nsecond\n');
  });

  test('deletion: SIGTERM first, SIGKILL after terminationGracePeriodSeconds', async () => {
    await apply(shellPod('stubborn', 'trap "" TERM; echo up; while true; do sleep 1; done', '  terminationGracePeriodSeconds: 2\n'));
    await apply(shellPod('polite', 'trap "exit 0" TERM; echo up; while true; do sleep 0.1; done'));
    await c.waitFor('pods', NS, 'stubborn', (o) => statusOf(o).phase === 'Running');
    await c.waitFor('pods', NS, 'polite', (o) => statusOf(o).phase === 'Running');
    const t0 = Date.now();
    const polite = await c.kubectl(['delete', 'pod', '-n', NS, 'polite', '--wait=true']);
    const politeMs = Date.now() - t0;
    assert.equal(polite.code, 0, polite.stderr);
    const t1 = Date.now();
    const stubborn = await c.kubectl(['delete', 'pod', '-n', NS, 'stubborn', '--wait=true']);
    const stubbornMs = Date.now() - t1;
    assert.equal(stubborn.code, 0, stubborn.stderr);
    assert.ok(politeMs < 2000, `a pod that exits on SIGTERM goes at once (${politeMs} ms)`);
    assert.ok(stubbornMs >= 2000 && stubbornMs < 10_000, `a pod that ignores SIGTERM is killed after its grace period (${stubbornMs} ms)`);
    assert.equal(c.store.get('pods', NS, 'stubborn'), undefined);
  });
});
