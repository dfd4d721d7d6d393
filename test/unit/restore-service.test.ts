// restoreService against a fake API: which router Secret it removes. The
// last session's restore races a developer who found the router leaving and
// made a new one (a new Secret, a new router pod, the same origin Service):
// the restore removes what belongs to the routers it removed, and leaves the
// newer takeover's Secret and the origin Service it shares.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../../contract/protocol.ts';
import type { KubeApi } from '../../plugin/src/kube/api.ts';
import { restoreService } from '../../plugin/src/kube/restore.ts';
import { ROUTER_CREATE_GRACE_MS } from '../../plugin/src/kube/takeover-apply.ts';

const NS = 'shop';
const ours = { [LABELS.managedBy]: MANAGED_BY };
const notFound = (): Promise<never> => Promise.reject(Object.assign(new Error('not found'), { code: 404 }));

interface World {
  pods: Map<string, V1Pod>;
  secret: V1Secret | undefined;
  origin: V1Service | undefined;
  calls: string[];
}

function routerPodNamed(name: string): V1Pod {
  return { metadata: { name, namespace: NS, labels: { ...ours, [LABELS.role]: 'router', [LABELS.target]: 'web' } } };
}

function secretFor(routerPod: string, createdAt: Date, resourceVersion = '5'): V1Secret {
  return { metadata: { name: 'kt-router-web', namespace: NS, resourceVersion, labels: ours, annotations: { [ANNOTATIONS.routerPod]: routerPod }, creationTimestamp: createdAt } };
}

function fakeApi(w: World): KubeApi {
  const service: V1Service = { metadata: { name: 'web', namespace: NS, annotations: { [ANNOTATIONS.originalSelector]: '{"app":"web"}' } }, spec: { selector: { [LABELS.role]: 'router' } } };
  const core = {
    readNamespacedService: ({ name }: { name: string }) => (name === 'web' ? Promise.resolve(structuredClone(service)) : w.origin ? Promise.resolve(structuredClone(w.origin)) : notFound()),
    patchNamespacedService: () => {
      w.calls.push('restore selector');
      return Promise.resolve({});
    },
    listNamespacedPod: () => Promise.resolve({ items: [...w.pods.values()].filter((p) => p.metadata?.labels?.[LABELS.role] === 'router').map((p) => structuredClone(p)) }),
    readNamespacedPod: ({ name }: { name: string }) => (w.pods.has(name) ? Promise.resolve(structuredClone(w.pods.get(name) as V1Pod)) : notFound()),
    deleteNamespacedPod: ({ name }: { name: string }) => {
      w.calls.push(`delete pod ${name}`);
      w.pods.delete(name);
      return Promise.resolve({});
    },
    readNamespacedSecret: () => (w.secret ? Promise.resolve(structuredClone(w.secret)) : notFound()),
    deleteNamespacedSecret: ({ body }: { body?: { preconditions?: { resourceVersion?: string } } }) => {
      if (!w.secret) return notFound();
      const want = body?.preconditions?.resourceVersion;
      if (want !== undefined && want !== w.secret.metadata?.resourceVersion) return Promise.reject(Object.assign(new Error('conflict'), { code: 409 }));
      w.calls.push(`delete secret naming ${w.secret.metadata?.annotations?.[ANNOTATIONS.routerPod]}`);
      w.secret = undefined;
      return Promise.resolve({});
    },
    deleteNamespacedService: ({ name }: { name: string }) => {
      w.calls.push(`delete service ${name}`);
      w.origin = undefined;
      return Promise.resolve({});
    },
  };
  const apps = { listNamespacedDeployment: () => Promise.resolve({ items: [] }) };
  return { core, apps, jsonPatch: () => ({}), mergePatch: () => ({}) } as unknown as KubeApi;
}

const origin = (): V1Service => ({ metadata: { name: 'web-kt-origin', namespace: NS, labels: ours } });

test('restoreService: the Secret of the router it removes goes (on the version read), then the origin Service', async () => {
  const w: World = { pods: new Map([['kt-router-web-a', routerPodNamed('kt-router-web-a')]]), secret: secretFor('kt-router-web-a', new Date()), origin: origin(), calls: [] };
  const r = await restoreService(fakeApi(w), { namespace: NS, name: 'web' }, { dryRun: false, strict: true });
  assert.deepEqual(w.calls, ['restore selector', 'delete pod kt-router-web-a', 'delete secret naming kt-router-web-a', 'delete service web-kt-origin']);
  assert.deepEqual(r.actions.slice(1), [`delete router pod ${NS}/kt-router-web-a`, `delete secret ${NS}/kt-router-web`, `delete service ${NS}/web-kt-origin`]);
});

test('restoreService: a newer takeover\'s Secret (its router being made, not among those removed) stays, and so does the origin Service it shares', async () => {
  // Listed and deleted: router a. The Secret read after it names router b, made a moment ago and not there yet.
  const w: World = { pods: new Map([['kt-router-web-a', routerPodNamed('kt-router-web-a')]]), secret: secretFor('kt-router-web-b', new Date()), origin: origin(), calls: [] };
  const r = await restoreService(fakeApi(w), { namespace: NS, name: 'web' }, { dryRun: false, strict: true });
  assert.deepEqual(w.calls, ['restore selector', 'delete pod kt-router-web-a']);
  assert.ok(w.secret && w.origin, 'the newer takeover keeps its Secret and the origin Service');
  assert.deepEqual(r.actions.slice(1), [`delete router pod ${NS}/kt-router-web-a`]);
});

test('restoreService: a Secret left by a router that is long gone goes (clean after a crash)', async () => {
  const w: World = { pods: new Map(), secret: secretFor('kt-router-web-old', new Date(Date.now() - ROUTER_CREATE_GRACE_MS - 60_000)), origin: origin(), calls: [] };
  await restoreService(fakeApi(w), { namespace: NS, name: 'web' }, { dryRun: false, strict: false });
  assert.deepEqual(w.calls, ['restore selector', 'delete secret naming kt-router-web-old', 'delete service web-kt-origin']);
});

test('restoreService: a Secret replaced between its read and its deletion stays (the deletion\'s precondition), and so does the origin Service', async () => {
  const w: World = { pods: new Map([['kt-router-web-a', routerPodNamed('kt-router-web-a')]]), secret: secretFor('kt-router-web-a', new Date()), origin: origin(), calls: [] };
  const api = fakeApi(w);
  const read = api.core.readNamespacedSecret.bind(api.core);
  // The read sees the old Secret; the deletion finds a new one (another resourceVersion) in its place.
  (api.core as unknown as { readNamespacedSecret: typeof read }).readNamespacedSecret = async (...args) => {
    const s = await read(...args);
    w.secret = secretFor('kt-router-web-b', new Date(), '9');
    return s;
  };
  await restoreService(api, { namespace: NS, name: 'web' }, { dryRun: false, strict: true });
  assert.equal(w.secret?.metadata?.annotations?.[ANNOTATIONS.routerPod], 'kt-router-web-b');
  assert.ok(!w.calls.some((c) => c.startsWith('delete secret') || c.startsWith('delete service')), w.calls.join(', '));
  assert.ok(w.origin, 'the origin Service stays with the newer takeover');
});

test('restoreService for a leaving session (router named): its own router and Secret go; a newer router, listed beside it, stays', async () => {
  const w: World = {
    pods: new Map([['kt-router-web-a', routerPodNamed('kt-router-web-a')], ['kt-router-web-b', routerPodNamed('kt-router-web-b')]]),
    secret: secretFor('kt-router-web-a', new Date()),
    origin: origin(),
    calls: [],
  };
  await restoreService(fakeApi(w), { namespace: NS, name: 'web' }, { dryRun: false, strict: false, router: 'kt-router-web-a' });
  assert.deepEqual(w.calls, ['restore selector', 'delete pod kt-router-web-a', 'delete secret naming kt-router-web-a', 'delete service web-kt-origin']);
  assert.ok(w.pods.has('kt-router-web-b'));
});

test('restoreService for a session whose young router is gone already: the Secret naming it goes all the same', async () => {
  const w: World = { pods: new Map(), secret: secretFor('kt-router-web-a', new Date()), origin: origin(), calls: [] };
  await restoreService(fakeApi(w), { namespace: NS, name: 'web' }, { dryRun: false, strict: false, router: 'kt-router-web-a' });
  assert.deepEqual(w.calls, ['restore selector', 'delete secret naming kt-router-web-a', 'delete service web-kt-origin']);
});
