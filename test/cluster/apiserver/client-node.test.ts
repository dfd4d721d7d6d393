// @kubernetes/client-node (what the plugin uses) against the API server in
// this process: typed CRUD, patch content types, errors, Watch and informers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from './harness.ts';
import { RESOURCES } from './resources.ts';

let h: Harness;
let k8s: typeof import('@kubernetes/client-node');

before(async () => {
  h = await startHarness();
  k8s = await import('@kubernetes/client-node');
});

after(() => h.close());

function kubeConfig(): InstanceType<typeof k8s.KubeConfig> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(h.kubeconfig);
  return kc;
}

const pod = (name: string, labels: Record<string, string> = {}): import('@kubernetes/client-node').V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: { containers: [{ name: 'main', image: 'shell', command: ['sleep', '1000'] }] },
});

test('CoreV1Api: create, list with a label selector, patch (merge and json), 404 and 409 as ApiException', { timeout: 60_000 }, async () => {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'cn' } } });
  const created = await core.createNamespacedPod({ namespace: 'cn', body: pod('one', { app: 'a' }) });
  assert.equal(created.status?.phase, 'Pending');
  assert.equal(created.spec?.restartPolicy, 'Always', 'defaults applied');
  await core.createNamespacedPod({ namespace: 'cn', body: pod('two', { app: 'b' }) });

  const list = await core.listNamespacedPod({ namespace: 'cn', labelSelector: 'app=a' });
  assert.deepEqual(list.items.map((p) => p.metadata?.name), ['one']);
  assert.ok(Number(list.metadata?.resourceVersion) > 0);

  const merged = await core.patchNamespacedPod(
    { name: 'one', namespace: 'cn', body: { metadata: { labels: { patched: 'yes' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.deepEqual(merged.metadata?.labels, { app: 'a', patched: 'yes' });
  const jsonPatched = await core.patchNamespacedPod({ name: 'one', namespace: 'cn', body: [{ op: 'remove', path: '/metadata/labels/app' }] });
  assert.deepEqual(jsonPatched.metadata?.labels, { patched: 'yes' });

  await assert.rejects(core.readNamespacedPod({ name: 'nope', namespace: 'cn' }), (e: unknown) => {
    const err = e as { code: number; body: string };
    const status = JSON.parse(err.body) as { reason: string; message: string; details: { name: string; kind: string } };
    return err.code === 404 && status.reason === 'NotFound' && status.message === 'pods "nope" not found' && status.details.kind === 'pods';
  });
  await assert.rejects(core.createNamespacedPod({ namespace: 'cn', body: pod('two') }), (e: unknown) => (e as { code: number }).code === 409);
  const stale = { ...created, metadata: { ...created.metadata, labels: { stale: 'write' } } };
  await assert.rejects(core.replaceNamespacedPod({ name: 'one', namespace: 'cn', body: stale }), (e: unknown) => {
    const err = e as { code: number; body: string };
    return err.code === 409 && (JSON.parse(err.body) as { reason: string }).reason === 'Conflict';
  });
});

test('Watch: ADDED for what exists, then MODIFIED and DELETED as they happen', { timeout: 60_000 }, async () => {
  h.store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cw' } });
  h.store.create(RESOURCES.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first', namespace: 'cw' } });
  const events: string[] = [];
  let notify = (): void => {};
  const watch = new k8s.Watch(kubeConfig());
  let done: unknown = 'open';
  const ctrl = await watch.watch(
    '/api/v1/namespaces/cw/configmaps',
    { labelSelector: 'watched=yes' },
    (type, obj: { metadata: { name: string } }) => {
      events.push(`${type} ${obj.metadata.name}`);
      notify();
    },
    (err) => (done = err),
  );
  const until = (n: number): Promise<void> =>
    new Promise((resolve) => {
      notify = () => events.length >= n && resolve();
      notify();
    });
  try {
    const base = { apiVersion: 'v1', kind: 'ConfigMap' };
    h.store.create(RESOURCES.configmaps, { ...base, metadata: { name: 'other', namespace: 'cw' } });
    h.store.create(RESOURCES.configmaps, { ...base, metadata: { name: 'w', namespace: 'cw', labels: { watched: 'yes' } } });
    await until(1);
    h.store.mutate(RESOURCES.configmaps, 'cw', 'w', (o) => ({ ...o, data: { a: 'b' } }));
    // Leaving the selector is a DELETED for this watch, as on a real API server.
    h.store.mutate(RESOURCES.configmaps, 'cw', 'w', (o) => ({ ...o, metadata: { ...o.metadata, labels: {} } }));
    await until(3);
    assert.deepEqual(events, ['ADDED w', 'MODIFIED w', 'DELETED w']);
    assert.equal(done, 'open');
  } finally {
    ctrl.abort();
  }
});

test('Watch from an old resourceVersion replays the history; one older than the history gets ERROR 410 Expired', { timeout: 60_000 }, async () => {
  h.store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cr' } });
  const from = h.store.resourceVersion;
  h.store.create(RESOURCES.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late', namespace: 'cr' } });
  let ctrl: AbortController | undefined;
  const seen = await new Promise<string>((resolve, reject) => {
    new k8s.Watch(kubeConfig())
      .watch('/api/v1/namespaces/cr/configmaps', { resourceVersion: String(from) }, (type, obj: { metadata: { name: string } }) => resolve(`${type} ${obj.metadata.name}`), reject)
      .then((c) => (ctrl = c), reject);
  });
  ctrl?.abort();
  assert.equal(seen, 'ADDED late');

  // Push the first writes out of the store's bounded history.
  const oldest = h.store.oldestResumable;
  while (h.store.oldestResumable <= from) {
    h.store.mutate(RESOURCES.configmaps, 'cr', 'late', (o) => ({ ...o, data: { n: String(h.store.resourceVersion) } }));
  }
  assert.ok(h.store.oldestResumable > oldest);
  const res = await fetch(`${h.server.url}/api/v1/namespaces/cr/configmaps?watch=true&resourceVersion=${from}`);
  assert.equal(res.status, 200);
  const lines = (await res.text()).trim().split('\n');
  assert.equal(lines.length, 1);
  const ev = JSON.parse(lines[0]) as { type: string; object: { kind: string; code: number; reason: string } };
  assert.deepEqual([ev.type, ev.object.kind, ev.object.code, ev.object.reason], ['ERROR', 'Status', 410, 'Expired']);
});

test('informer: list then watch, add and update handlers fire', { timeout: 60_000 }, async () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  h.store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ci' } });
  h.store.create(RESOURCES.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'before', namespace: 'ci' }, spec: { ports: [{ port: 80 }] } });
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/ci/services', () => core.listNamespacedService({ namespace: 'ci' }));
  const seen: string[] = [];
  let notify = (): void => {};
  informer.on('add', (o) => {
    seen.push(`add ${o.metadata?.name}`);
    notify();
  });
  informer.on('update', (o) => {
    seen.push(`update ${o.metadata?.name} ${o.metadata?.labels?.v ?? ''}`);
    notify();
  });
  await informer.start();
  try {
    const until = (want: string): Promise<void> =>
      new Promise((resolve) => {
        notify = () => seen.includes(want) && resolve();
        notify();
      });
    await until('add before');
    const core2 = kc.makeApiClient(k8s.CoreV1Api);
    await core2.createNamespacedService({ namespace: 'ci', body: { metadata: { name: 'after' }, spec: { ports: [{ port: 81 }] } } });
    await until('add after');
    await core2.patchNamespacedService(
      { name: 'after', namespace: 'ci', body: { metadata: { labels: { v: '2' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    await until('update after 2');
  } finally {
    await informer.stop();
  }
});

test('list paging (limit/continue) and a watch with sendInitialEvents ending in the initial-events-end bookmark', { timeout: 60_000 }, async () => {
  h.store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cp' } });
  for (const n of ['a', 'b', 'c']) h.store.create(RESOURCES.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n, namespace: 'cp' } });
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const names: string[] = [];
  let cont: string | undefined;
  let pages = 0;
  do {
    const page = await core.listNamespacedConfigMap({ namespace: 'cp', limit: 2, _continue: cont });
    names.push(...page.items.map((i) => i.metadata?.name ?? ''));
    cont = page.metadata?._continue;
    pages++;
  } while (cont);
  assert.deepEqual(names, ['a', 'b', 'c']);
  assert.equal(pages, 2);

  const ctrl = new AbortController();
  const res = await fetch(`${h.server.url}/api/v1/namespaces/cp/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`, { signal: ctrl.signal });
  const reader = res.body?.getReader();
  let text = '';
  while (!text.includes('BOOKMARK')) {
    const chunk = await reader?.read();
    if (!chunk || chunk.done) break;
    text += Buffer.from(chunk.value).toString();
  }
  ctrl.abort();
  const events = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name?: string; annotations?: Record<string, string> } } });
  assert.deepEqual(events.map((e) => `${e.type} ${e.object.metadata.name ?? ''}`), ['ADDED a', 'ADDED b', 'ADDED c', 'BOOKMARK ']);
  assert.equal(events[3].object.metadata.annotations?.['k8s.io/initial-events-end'], 'true');
});
