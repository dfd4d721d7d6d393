// `kubectl kt clean` and router pods no takeover holds, against a fake API:
// developers leaving and coming at the same moment can leave a router that
// its Service's router Secret does not name (a newer router replaced it, or
// the Service was given back without it). clean deletes such a pod when none
// of its routes is live and it is older than a set-up takes — and only it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../../contract/protocol.ts';
import { encodeRouteAnnotation } from '../../contract/route-annotation.ts';
import { cleanNamespace, ROUTER_SETUP_GRACE_MS } from '../../plugin/src/commands/clean.ts';
import type { KubeApi } from '../../plugin/src/kube/api.ts';
import { ROUTE_ANNOTATION_PREFIX } from '../../plugin/src/status/model.ts';

const NS = 'shop';
const NOW = Date.parse('2026-12-04T18:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function router(name: string, target: string, ageMs: number, annotations: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, namespace: NS, creationTimestamp: new Date(NOW - ageMs), labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: 'router', [LABELS.target]: target }, annotations },
    status: { phase: 'Running' },
  };
}

function fakeApi(pods: V1Pod[], secrets: Record<string, string>): { api: KubeApi; deleted: string[] } {
  const deleted: string[] = [];
  const core = {
    listNamespacedPod: () => Promise.resolve({ items: structuredClone(pods) }),
    // No Service is taken over: every router here is judged as a pod alone.
    listNamespacedService: () => Promise.resolve({ items: [{ metadata: { name: 'web', namespace: NS } }, { metadata: { name: 'api', namespace: NS } }] }),
    readNamespacedSecret: ({ name }: { name: string }) => {
      const service = name.replace(/^kt-router-/, '');
      const pod = secrets[service];
      if (pod === undefined) return Promise.reject(Object.assign(new Error('not found'), { code: 404 }));
      const s: V1Secret = { metadata: { name, namespace: NS, labels: { [LABELS.managedBy]: MANAGED_BY }, annotations: { [ANNOTATIONS.routerPod]: pod } } };
      return Promise.resolve(s);
    },
    deleteNamespacedPod: ({ name }: { name: string }) => {
      deleted.push(name);
      return Promise.resolve({});
    },
  };
  return { api: { core } as unknown as KubeApi, deleted };
}

test('clean deletes a router pod its Service\'s Secret does not name, with no live route, older than a set-up — and no other', async () => {
  const live = { [`${ROUTE_ANNOTATION_PREFIX}s-1`]: encodeRouteAnnotation({ owner: 'dev@laptop', kind: 'mesh', since: iso(NOW - 600_000), heartbeat: iso(NOW - 5_000) }) };
  const stale = { [`${ROUTE_ANNOTATION_PREFIX}s-2`]: encodeRouteAnnotation({ owner: 'dev@laptop', kind: 'mesh', since: iso(NOW - 600_000), heartbeat: iso(NOW - 300_000) }) };
  const old = ROUTER_SETUP_GRACE_MS + 60_000;
  const pods = [
    router('kt-router-web-old', 'web', old, stale), // replaced: the Secret names the newer one
    router('kt-router-web-new', 'web', old), // the takeover's own router
    router('kt-router-api-young', 'api', 10_000), // no Secret yet: maybe being set up
    router('kt-router-api-live', 'api', old, live), // a session still routes through it
    router('kt-router-api-gone', 'api', old), // no Secret at all: the Service was given back without it
  ];
  const { api, deleted } = fakeApi(pods, { web: 'kt-router-web-new' });
  const dry = await cleanNamespace(api, NS, { dryRun: true, now: NOW });
  assert.deepEqual(dry, [
    `delete router pod ${NS}/kt-router-web-old (no takeover of service ${NS}/web holds it)`,
    `delete router pod ${NS}/kt-router-api-gone (no takeover of service ${NS}/api holds it)`,
  ]);
  assert.deepEqual(deleted, [], 'a dry run deletes nothing');
  await cleanNamespace(api, NS, { dryRun: false, now: NOW });
  assert.deepEqual(deleted, ['kt-router-web-old', 'kt-router-api-gone']);
});
