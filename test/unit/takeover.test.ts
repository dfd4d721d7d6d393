// The pure planning of exchange and mesh: router ports from a Service's
// ports, which --expose is which Service port, the origin Service, the
// selector patch and how a merged selector is read back, the env file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../../contract/protocol.ts';
import { isKtError } from '../../plugin/src/errors.ts';
import { containerEnv, envFileText } from '../../plugin/src/kube/env-file.ts';
import { routerOwnPorts, routerOwnPortsOf } from '../../plugin/src/kube/router-pod.ts';
import {
  keysFromSecret, newOriginal, originService, planPorts, routerName, routerSecret, routerSelector, selects, takeoverPatch,
} from '../../plugin/src/kube/takeover-plan.ts';
import { describePorts, exposeNote, routeForExpose } from '../../plugin/src/kube/expose.ts';
import { generatedHeader, toWire } from '../../plugin/src/session/takeover-command.ts';
import { makeSessionKey } from '../../plugin/src/tunnel/index.ts';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isKtError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

test('router ports: numeric, absent and named targetPorts; UDP skipped; named ports keep their names on the router', () => {
  const plan = planPorts('web', [
    { name: 'http', port: 80, targetPort: 'web-http' },
    { name: 'admin', port: 9000, targetPort: 9090 },
    { name: 'plain', port: 7000 },
    { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
  ], [{ name: 'web-http', containerPort: 8080 }]);
  assert.deepEqual(plan.routerPorts, [
    { name: 'http', servicePort: 80, listenPort: 8080, originPort: 80, protocol: 'TCP' },
    { name: 'admin', servicePort: 9000, listenPort: 9090, originPort: 9000, protocol: 'TCP' },
    { name: 'plain', servicePort: 7000, listenPort: 7000, originPort: 7000, protocol: 'TCP' },
  ]);
  assert.deepEqual(plan.containerPorts.map((c) => [c.name, c.containerPort]), [['web-http', 8080], ['kt-9090', 9090], ['kt-7000', 7000]]);
  assert.deepEqual(plan.skipped, ['53/UDP']);
});

test('router ports: an unresolvable named port or two Service ports on one pod port are refused', () => {
  assert.equal(code(() => planPorts('web', [{ port: 80, targetPort: 'http' }], [])), 'KT_ERR_UNRESOLVED_PORT');
  assert.equal(code(() => planPorts('web', [{ port: 80, targetPort: 8080 }, { port: 81, targetPort: 8080 }], [])), 'KT_ERR_UNRESOLVED_PORT');
});

test('--expose REMOTE: a Service port, or the pods\' port of exactly one Service port (numeric or named targetPort)', () => {
  const ports = [
    { name: 'http', port: 80, targetPort: 'http' },
    { name: 'admin', port: 9000, targetPort: 9090 },
    { name: 'plain', port: 7000 },
    { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
  ];
  const pods = [{ name: 'http', containerPort: 8080 }];
  assert.deepEqual(routeForExpose('web', ports, pods, { local: 18080, remote: 80 }), { servicePort: 80, local: 18080 });
  assert.deepEqual(routeForExpose('web', ports, pods, { local: 18080, remote: 8080 }), { servicePort: 80, local: 18080, viaTargetPort: 'http' });
  assert.deepEqual(routeForExpose('web', ports, pods, { local: 9090, remote: 9090 }), { servicePort: 9000, local: 9090, viaTargetPort: 9090 });
  assert.deepEqual(routeForExpose('web', ports, pods, { local: 7000, remote: 7000 }), { servicePort: 7000, local: 7000 });
  // Neither: another Service of a deploy/ target may have it; the caller refuses it with the ports listed.
  assert.equal(routeForExpose('web', ports, pods, { local: 1, remote: 8081 }), undefined);
  // A named targetPort no pod declares resolves to nothing; UDP ports are not routed.
  assert.equal(routeForExpose('web', ports, [], { local: 1, remote: 8080 }), undefined);
  assert.equal(routeForExpose('web', ports, pods, { local: 1, remote: 5353 }), undefined);
  assert.deepEqual(describePorts(ports, pods), ['80 (pods\' port "http" = 8080)', '9000 (pods\' port 9090)', '7000']);
  assert.equal(exposeNote('web', { local: 18080, remote: 8080 }, { servicePort: 80, local: 18080, viaTargetPort: 'http' }),
    '--expose 18080:8080: 8080 is the pods\' port "http" (targetPort) of service web port 80; routing web:80 -> localhost:18080');
});

test('--expose REMOTE: a Service port wins over a targetPort; the pods\' port of two Service ports is ambiguous', () => {
  const ports = [{ port: 80, targetPort: 8080 }, { port: 8080, targetPort: 9090 }];
  assert.deepEqual(routeForExpose('web', ports, [], { local: 1, remote: 8080 }), { servicePort: 8080, local: 1 });
  const twin = [{ port: 80, targetPort: 8080 }, { port: 81, targetPort: 'http' }];
  assert.equal(code(() => routeForExpose('twin', twin, [{ name: 'http', containerPort: 8080 }], { local: 1, remote: 8080 })), 'KT_ERR_AMBIGUOUS_PORT');
  assert.throws(() => routeForExpose('twin', twin, [{ name: 'http', containerPort: 8080 }], { local: 1, remote: 8080 }),
    { message: "port 8080 is the pods' port of service twin ports 80 and 81; which one is meant?" });
});

test('origin Service: same ports (targetPorts included), the original selector, our labels, no clusterIP or nodePort copied', () => {
  const o = originService({ name: 'web', namespace: 'shop', ports: [{ name: 'http', port: 80, targetPort: 'http' }], selector: { app: 'web' } });
  assert.equal(o.metadata?.name, 'web-kt-origin');
  assert.deepEqual(o.metadata?.labels, { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: 'origin', [LABELS.target]: 'web' });
  assert.deepEqual(o.spec?.selector, { app: 'web' });
  assert.deepEqual(o.spec?.ports, [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }]);
  assert.equal(o.spec?.type, 'ClusterIP');
  assert.equal(o.spec?.clusterIP, undefined);
});

test('takeover patch: tests resourceVersion, keeps the original selector in the annotation, creates annotations when absent, publishes not-ready addresses', () => {
  const p = takeoverPatch({ resourceVersion: '42', hasAnnotations: false, original: { app: 'web' } }, 'web');
  assert.deepEqual(p, [
    { op: 'test', path: '/metadata/resourceVersion', value: '42' },
    { op: 'add', path: '/metadata/annotations', value: {} },
    { op: 'add', path: '/metadata/annotations/kt.dev~1original-selector', value: '{"app":"web"}' },
    { op: 'add', path: '/metadata/annotations/kt.dev~1original-publish-not-ready', value: 'false' },
    { op: 'add', path: '/spec/publishNotReadyAddresses', value: true },
    { op: 'add', path: '/spec/selector', value: routerSelector('web') },
  ]);
  assert.equal(takeoverPatch({ resourceVersion: '1', hasAnnotations: true, original: null, publishNotReady: true }, 'web').length, 3);
});

test('new original selector: a merge onto the router selector leaves the user part; a full overwrite is the new original', () => {
  const merged = { ...routerSelector('web'), app: 'web' };
  assert.deepEqual(newOriginal(merged, { app: 'web' }, 'web'), { app: 'web' });
  assert.deepEqual(newOriginal({ app: 'web', version: 'v2' }, { app: 'web' }, 'web'), { app: 'web', version: 'v2' });
  assert.deepEqual(newOriginal(routerSelector('web'), { app: 'old' }, 'web'), { app: 'old' });
  assert.deepEqual(newOriginal({ app: 'web' }, undefined, 'web'), { app: 'web' });
  assert.equal(selects({ app: 'web' }, { app: 'web', pod: 'x' }), true);
  assert.equal(selects({}, { app: 'web' }), false, 'an empty selector selects nothing (Kubernetes: no endpoints)');
});

test('router Secret round-trips the keys and names its router pod', () => {
  const keys = { client: makeSessionKey('c'), host: makeSessionKey('h') };
  const pod = routerName('web', 'abc');
  const s = routerSecret('web', 'shop', keys, pod);
  assert.equal(s.metadata?.name, 'kt-router-web');
  assert.equal(s.metadata?.annotations?.[ANNOTATIONS.routerPod], 'kt-router-web-abc');
  assert.deepEqual(keysFromSecret(s), keys);
  assert.equal(keysFromSecret({ data: {} }), undefined);
});

test('env file: envFrom with prefix, env overrides, ConfigMap/Secret refs, fieldRefs, $(VAR) expansion, notes for what is missing', async () => {
  const pod: V1Pod = {
    metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } },
    spec: {
      containers: [{
        name: 'app',
        envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }, { secretRef: { name: 'missing', optional: true } }],
        env: [
          { name: 'A', value: 'one' },
          { name: 'B', value: '$(A)-two $$(A)' },
          { name: 'CM', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'level' } } },
          { name: 'SEC', valueFrom: { secretKeyRef: { name: 'sec', key: 'pw' } } },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'GONE', valueFrom: { secretKeyRef: { name: 'sec', key: 'nope' } } },
        ],
      }],
    },
    status: { podIP: '10.0.0.5' },
  };
  const { env, notes } = await containerEnv(pod, undefined, {
    configMap: async (n) => (n === 'cfg' ? { level: 'debug', greeting: 'hello world' } : undefined),
    secret: async (n) => (n === 'sec' ? { pw: 's3cr3t' } : undefined),
  });
  assert.deepEqual(Object.fromEntries(env), {
    CFG_level: 'debug', CFG_greeting: 'hello world', A: 'one', B: 'one-two $(A)', CM: 'debug', SEC: 's3cr3t', POD: 'web-1', APP: 'web',
  });
  assert.deepEqual(notes, ['GONE: key nope of secret sec not found']);
  assert.equal(envFileText(new Map([['A', 'plain/v:1'], ['B', 'two words'], ['C', 'line\nbreak'], ['D', '']])), 'A=plain/v:1\nB="two words"\nC="line\\nbreak"\nD=\n');
});

test('mesh headers: --header and --baggage forms to the wire; a generated value is short and safe', () => {
  assert.deepEqual(toWire([{ name: 'x-kt-version', kind: 'exact', value: 'alice' }, { name: 'x-user', kind: 'regex', pattern: '^a.*' }], [{ key: 'kt', value: 'alice' }]), [
    { name: 'x-kt-version', value: 'alice' },
    { name: 'x-user', regex: '^a.*' },
    { baggage: 'kt', value: 'alice' },
  ]);
  const h = generatedHeader('Root.User');
  assert.equal(h.name, 'x-kt-version');
  assert.match((h as { value: string }).value, /^rootuser-[a-z0-9]{5}$/);
});

test('the router\'s own SSH and health ports keep clear of the ports it serves, and are read back off its pod', () => {
  const at = (...ports: number[]) => routerOwnPorts(ports.map((p) => ({ servicePort: p, listenPort: p, originPort: p })));
  assert.deepEqual(at(8080), { ssh: 2222, health: 8081 });
  assert.deepEqual(at(8081, 2222, 2223), { ssh: 2224, health: 8082 });
  const pod = { spec: { containers: [{ env: [{ name: 'KT_SSH_PORT', value: '2224' }, { name: 'KT_ROUTER_HEALTH_PORT', value: '8082' }] }] } };
  assert.deepEqual(routerOwnPortsOf(pod), { ssh: 2224, health: 8082 });
  assert.deepEqual(routerOwnPortsOf({ spec: { containers: [{ env: [] }] } }), { ssh: 2222, health: 8081 }, 'a router from before: the defaults');
});
