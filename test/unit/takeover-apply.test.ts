// The selector switch against a fake API: the calls it makes, counted, for
// a Service read a moment ago (no second read), a stale one (the patch's
// resourceVersion test fails, then it reads), and one that already selects
// the router (that is never taken from the earlier read).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS } from '../../contract/protocol.ts';
import type { KubeApi } from '../../plugin/src/kube/api.ts';
import { switchSelector } from '../../plugin/src/kube/takeover-apply.ts';
import { routerSelector } from '../../plugin/src/kube/takeover-plan.ts';

function fakeApi(live: V1Service, routers: V1Pod[] = []): { api: KubeApi; calls: string[] } {
  const calls: string[] = [];
  const core = {
    // The router pods: listed once per switch, a leaving one (deletionTimestamp) unselected.
    listNamespacedPod: () => Promise.resolve({ items: structuredClone(routers) }),
    patchNamespacedPod: ({ name, body }: { name: string; body: unknown }) => {
      calls.push(`unselect ${name} ${JSON.stringify(body)}`);
      return Promise.resolve({});
    },
    readNamespacedService: () => {
      calls.push('read');
      return Promise.resolve(structuredClone(live));
    },
    patchNamespacedService: ({ body }: { body: { op: string; path: string; value: unknown }[] }) => {
      calls.push('patch');
      const test = body.find((op) => op.op === 'test');
      if (test?.value !== live.metadata?.resourceVersion) return Promise.reject(Object.assign(new Error('test failed'), { code: 422 }));
      const selector = body.find((op) => op.path === '/spec/selector');
      live.spec = { ...live.spec, selector: selector?.value as Record<string, string> };
      live.metadata = { ...live.metadata, resourceVersion: String(Number(live.metadata?.resourceVersion) + 1) };
      return Promise.resolve(structuredClone(live));
    },
  };
  return { api: { core, jsonPatch: () => ({}), mergePatch: () => ({}) } as unknown as KubeApi, calls };
}

/** A Service; with `saved`, as a takeover leaves it (our annotation, and publishing not-ready addresses). */
const svc = (resourceVersion: string, selector: Record<string, string>, saved?: string): V1Service => ({
  metadata: { name: 'web', namespace: 'shop', resourceVersion, annotations: saved ? { [ANNOTATIONS.originalSelector]: saved } : {} },
  spec: { selector, ...(saved ? { publishNotReadyAddresses: true } : {}) },
});

test('switchSelector: a Service read a moment ago is patched without reading it again', async () => {
  const { api, calls } = fakeApi(svc('7', { app: 'web' }));
  assert.deepEqual(await switchSelector(api, 'shop', 'web', svc('7', { app: 'web' })), { app: 'web' });
  assert.deepEqual(calls, ['patch']);
  const without = fakeApi(svc('7', { app: 'web' }));
  await switchSelector(without.api, 'shop', 'web');
  assert.deepEqual(without.calls, ['read', 'patch']);
});

test('switchSelector: a stale read fails the patch\'s test, and the Service is read again', async () => {
  const { api, calls } = fakeApi(svc('9', { app: 'web', tier: 'front' }));
  assert.deepEqual(await switchSelector(api, 'shop', 'web', svc('7', { app: 'web' })), { app: 'web', tier: 'front' });
  assert.deepEqual(calls, ['patch', 'read', 'patch']);
});

test('switchSelector: "already the router\'s" is read afresh, never taken from the earlier read', async () => {
  const saved = JSON.stringify({ app: 'web' });
  // Read earlier as the router's; since then someone gave the Service back.
  const { api, calls } = fakeApi(svc('9', { app: 'web' }));
  assert.deepEqual(await switchSelector(api, 'shop', 'web', svc('8', routerSelector('web'), saved)), { app: 'web' });
  assert.deepEqual(calls, ['read', 'patch']);
  const already = fakeApi(svc('8', routerSelector('web'), saved));
  assert.equal(await switchSelector(already.api, 'shop', 'web', svc('8', routerSelector('web'), saved)), undefined);
  assert.deepEqual(already.calls, ['read']);
});

test('switchSelector: a held Service that no longer publishes not-ready addresses (a redeploy reset it) is taken over again', async () => {
  const saved = JSON.stringify({ app: 'web' });
  const reset: V1Service = { ...svc('8', routerSelector('web'), saved), spec: { selector: routerSelector('web') } };
  const { api, calls } = fakeApi(reset);
  assert.deepEqual(await switchSelector(api, 'shop', 'web'), { app: 'web' }, 'the saved original stands');
  assert.deepEqual(calls, ['read', 'patch']);
});

test('switchSelector: a router pod being deleted stops matching the selector before the Service is pointed at routers (its target label goes)', async () => {
  const leaving: V1Pod = { metadata: { name: 'kt-router-web-old', deletionTimestamp: new Date() } };
  const live: V1Pod = { metadata: { name: 'kt-router-web-new' } };
  const { api, calls } = fakeApi(svc('7', { app: 'web' }), [leaving, live]);
  await switchSelector(api, 'shop', 'web');
  assert.deepEqual(calls, ['read', 'unselect kt-router-web-old {"metadata":{"labels":{"kt.dev/target":null}}}', 'patch']);
});
