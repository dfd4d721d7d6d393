import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, type Json } from './patch.ts';
import { strategicMergePatch } from './strategic.ts';
import { ApiError } from './status.ts';

test('merge patch (RFC 7386): the RFC appendix examples', () => {
  const cases: [Json, Json, Json][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want, JSON.stringify({ target, patch }));
});

test('JSON patch (RFC 6902): add, remove, replace, move, copy, test', () => {
  const doc: Json = { spec: { replicas: 1, list: ['a', 'c'] }, metadata: { labels: { 'a/b': 'x' } } };
  const out = jsonPatch(doc, [
    { op: 'replace', path: '/spec/replicas', value: 3 },
    { op: 'add', path: '/spec/list/1', value: 'b' },
    { op: 'add', path: '/spec/list/-', value: 'd' },
    { op: 'test', path: '/spec/list/0', value: 'a' },
    { op: 'copy', from: '/spec/replicas', path: '/spec/copied' },
    { op: 'move', from: '/metadata/labels/a~1b', path: '/metadata/labels/moved' },
    { op: 'remove', path: '/spec/list/0' },
  ]);
  assert.deepEqual(out, { spec: { replicas: 3, list: ['b', 'c', 'd'], copied: 3 }, metadata: { labels: { moved: 'x' } } });
  assert.deepEqual(doc, { spec: { replicas: 1, list: ['a', 'c'] }, metadata: { labels: { 'a/b': 'x' } } }, 'the input is not changed');
});

test('JSON patch: a failed test or a missing path fails the whole patch with 422', () => {
  const is422 = (e: unknown): boolean => e instanceof ApiError && e.code === 422;
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), is422);
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }]), is422);
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'replace', path: '/b/c', value: 1 }]), is422);
  assert.throws(() => jsonPatch({ a: [] }, [{ op: 'add', path: '/a/5', value: 1 }]), is422);
  assert.throws(() => jsonPatch({}, { op: 'add' }), (e: unknown) => e instanceof ApiError && e.code === 400);
});

const pod = (): Json => ({
  metadata: { name: 'p', finalizers: ['a'], ownerReferences: [{ uid: 'u1', name: 'rs' }] },
  spec: {
    containers: [
      { name: 'app', image: 'app:1', ports: [{ containerPort: 80, protocol: 'TCP' }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], args: ['x', 'y'] },
      { name: 'side', image: 'side:1', volumeMounts: [{ mountPath: '/data', name: 'v' }] },
    ],
    volumes: [{ name: 'v', emptyDir: {} }],
  },
});

test('strategic merge patch: lists with a merge key merge item by item', () => {
  const out = strategicMergePatch(pod(), {
    spec: {
      containers: [
        { name: 'app', image: 'app:2', env: [{ name: 'B', value: '3' }, { name: 'C', value: '4' }], ports: [{ containerPort: 81 }] },
        { name: 'new', image: 'new:1' },
      ],
    },
    metadata: { ownerReferences: [{ uid: 'u2', name: 'other' }], finalizers: ['b', 'a'] },
  }) as { spec: { containers: { name: string; image: string; env?: unknown; ports?: unknown; args?: unknown }[] }; metadata: Record<string, unknown> };
  const cs = out.spec.containers;
  assert.deepEqual(cs.map((c) => c.name), ['app', 'side', 'new']);
  assert.equal(cs[0].image, 'app:2');
  assert.deepEqual(cs[0].env, [{ name: 'A', value: '1' }, { name: 'B', value: '3' }, { name: 'C', value: '4' }]);
  assert.deepEqual(cs[0].ports, [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 81 }]);
  assert.deepEqual(cs[0].args, ['x', 'y'], 'untouched fields stay');
  assert.equal(cs[1].image, 'side:1');
  assert.deepEqual(out.metadata.ownerReferences, [{ uid: 'u1', name: 'rs' }, { uid: 'u2', name: 'other' }]);
  assert.deepEqual(out.metadata.finalizers, ['a', 'b'], 'finalizers merge as a set');
});

test('strategic merge patch: lists without a merge key are replaced; null deletes', () => {
  const out = strategicMergePatch(pod(), { spec: { containers: [{ name: 'app', args: ['z'], image: null }] } }) as {
    spec: { containers: Record<string, unknown>[] };
  };
  assert.deepEqual(out.spec.containers[0].args, ['z']);
  assert.equal('image' in out.spec.containers[0], false);
});

test('strategic merge patch: service ports merge by port', () => {
  const svc: Json = { spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'https', port: 443 }] } };
  const out = strategicMergePatch(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }] } });
  assert.deepEqual(out, { spec: { ports: [{ name: 'http', port: 80, targetPort: 9090 }, { name: 'https', port: 443 }] } });
});

test('strategic merge patch directives: $patch delete/replace, $retainKeys, $deleteFromPrimitiveList, $setElementOrder', () => {
  const del = strategicMergePatch(pod(), { spec: { containers: [{ name: 'side', $patch: 'delete' }] } }) as { spec: { containers: { name: string }[] } };
  assert.deepEqual(del.spec.containers.map((c) => c.name), ['app']);

  const rep = strategicMergePatch(pod(), { spec: { containers: [{ name: 'only', image: 'o' }, { $patch: 'replace' }] } }) as { spec: { containers: unknown[] } };
  assert.deepEqual(rep.spec.containers, [{ name: 'only', image: 'o' }]);

  const mapReplace = strategicMergePatch({ a: { x: 1, y: 2 } }, { a: { $patch: 'replace', z: 3 } });
  assert.deepEqual(mapReplace, { a: { z: 3 } });

  const mapDelete = strategicMergePatch({ a: { x: 1 }, b: 1 }, { a: { $patch: 'delete' } });
  assert.deepEqual(mapDelete, { b: 1 });

  const retain = strategicMergePatch(
    { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } },
    { strategy: { $retainKeys: ['type'], type: 'Recreate' } },
  );
  assert.deepEqual(retain, { strategy: { type: 'Recreate' } });

  const prim = strategicMergePatch(pod(), { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }) as { metadata: { finalizers: string[] } };
  assert.deepEqual(prim.metadata.finalizers, []);

  const order = strategicMergePatch(pod(), {
    spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'app', image: 'app:3' }] },
  }) as { spec: { containers: { name: string; image: string }[] } };
  assert.deepEqual(order.spec.containers.map((c) => `${c.name}:${c.image}`), ['side:side:1', 'app:app:3']);
});
