import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanDuration, toTable } from './table.ts';
import type { KubeObject } from '../store.ts';

test('humanDuration prints ages as kubectl does', () => {
  const s = 1000;
  const cases: [number, string][] = [
    [0, '0s'], [59 * s, '59s'], [119 * s, '119s'], [120 * s, '2m'], [150 * s, '2m30s'], [600 * s, '10m'],
    [179 * 60 * s, '179m'], [3 * 3600 * s, '3h'], [(3 * 3600 + 300) * s, '3h5m'], [47 * 3600 * s, '47h'],
    [50 * 3600 * s, '2d2h'], [10 * 86400 * s, '10d'], [800 * 86400 * s, '2y70d'], [-5 * s, '<invalid>'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
});

const now = Date.parse('2026-01-01T00:10:00Z');
const created = '2026-01-01T00:00:00Z';

function pod(status: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'default', creationTimestamp: created, ...extra },
    spec: { nodeName: 'node-a', containers: [{ name: 'a' }, { name: 'b' }] },
    status,
  };
}

test('pods: READY, STATUS, RESTARTS, AGE and the -o wide columns', () => {
  const running = pod({
    phase: 'Running',
    podIP: '10.0.0.7',
    containerStatuses: [
      { name: 'a', ready: true, restartCount: 1, state: { running: {} } },
      { name: 'b', ready: false, restartCount: 2, state: { running: {} } },
    ],
  });
  const t = toTable('pods', [running], { include: 'Metadata', withColumns: true, now });
  assert.deepEqual(t.columnDefinitions?.map((c) => `${c.name}:${c.priority}`), [
    'Name:0', 'Ready:0', 'Status:0', 'Restarts:0', 'Age:0', 'IP:1', 'Node:1', 'Nominated Node:1', 'Readiness Gates:1',
  ]);
  assert.deepEqual(t.rows[0].cells, ['web-1', '1/2', 'Running', '3', '10m', '10.0.0.7', 'node-a', '<none>', '<none>']);
  assert.deepEqual(t.rows[0].object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: running.metadata });

  const pulling = pod({ phase: 'Pending', containerStatuses: [{ name: 'a', state: { waiting: { reason: 'ImagePullBackOff' } } }] });
  assert.equal(toTable('pods', [pulling], { include: 'None', withColumns: false, now }).rows[0].cells[2], 'ImagePullBackOff');
  const terminating = pod({ phase: 'Running' }, { deletionTimestamp: created });
  assert.equal(toTable('pods', [terminating], { include: 'None', withColumns: false, now }).rows[0].cells[2], 'Terminating');
  const failed = pod({ phase: 'Running', containerStatuses: [{ name: 'a', state: { terminated: { exitCode: 2 } } }] });
  assert.equal(toTable('pods', [failed], { include: 'None', withColumns: false, now }).rows[0].cells[2], 'ExitCode:2');
});

test('services, deployments, endpoints: the columns kubectl shows', () => {
  const svc: KubeObject = {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', creationTimestamp: created },
    spec: { type: 'NodePort', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] },
  };
  const st = toTable('services', [svc], { include: 'Object', withColumns: true, now });
  assert.deepEqual(st.columnDefinitions?.map((c) => c.name), ['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age', 'Selector']);
  assert.deepEqual(st.rows[0].cells, ['web', 'NodePort', '10.96.0.10', '<none>', '80:30080/TCP,53/UDP', '10m', 'app=web']);
  assert.equal(st.rows[0].object, svc);

  const deploy: KubeObject = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', creationTimestamp: created },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { spec: { containers: [{ name: 'c', image: 'img:1' }] } } },
    status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
  };
  const dt = toTable('deployments.apps', [deploy], { include: 'None', withColumns: true, now });
  assert.deepEqual(dt.columnDefinitions?.map((c) => c.name), ['Name', 'Ready', 'Up-to-date', 'Available', 'Age', 'Containers', 'Images', 'Selector']);
  assert.deepEqual(dt.rows[0].cells, ['web', '2/3', 3, 2, '10m', 'c', 'img:1', 'app=web']);
  assert.equal('object' in dt.rows[0], false);

  const ep: KubeObject = {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', creationTimestamp: created },
    subsets: [{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3' }, { ip: '10.0.0.4' }], ports: [{ port: 8080 }] }],
  };
  assert.deepEqual(toTable('endpoints', [ep], { include: 'None', withColumns: false, now }).rows[0].cells, [
    'web', '10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...', '10m',
  ]);
  assert.equal(toTable('endpoints', [ep], { include: 'None', withColumns: false, now }).columnDefinitions, null);
});
