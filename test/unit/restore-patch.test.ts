// The JSON patch that gives a Service its selector back
// (plugin/src/kube/restore.ts): guarded by a test op, so a Service someone
// took over again in between is not overwritten with a stale selector.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANNOTATIONS } from '../../contract/protocol.ts';
import { pointer, restorePatch } from '../../plugin/src/kube/restore.ts';

const ANN = `/metadata/annotations/${ANNOTATIONS.originalSelector.replaceAll('/', '~1')}`;

test('restorePatch: test the annotation, put the selector back, drop the annotation, in that order', () => {
  assert.deepEqual(restorePatch({ app: 'web', tier: 'front' }), [
    { op: 'test', path: ANN, value: '{"app":"web","tier":"front"}' },
    { op: 'replace', path: '/spec/selector', value: { app: 'web', tier: 'front' } },
    { op: 'remove', path: ANN },
  ]);
});

test('restorePatch: a Service that had no selector gets none again', () => {
  assert.deepEqual(restorePatch(null), [
    { op: 'test', path: ANN, value: 'null' },
    { op: 'remove', path: '/spec/selector' },
    { op: 'remove', path: ANN },
  ]);
});

test('pointer escapes ~ before / (RFC 6901 §4: ~1 must not turn into ~01)', () => {
  assert.equal(pointer('kt.dev/original-selector'), 'kt.dev~1original-selector');
  assert.equal(pointer('a~/b'), 'a~0~1b');
  assert.equal(pointer('~1'), '~01');
});

/** RFC 6902 test, replace and remove on a plain object: enough to run restorePatch as the API server would. */
function applyJsonPatch(doc: unknown, ops: object[]): unknown {
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops as { op: string; path: string; value?: unknown }[]) {
    const segs = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = segs.pop()!;
    let parent = out as Record<string, unknown>;
    for (const s of segs) parent = parent[s] as Record<string, unknown>;
    if (op.op === 'test') {
      if (JSON.stringify(parent?.[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
    } else if (op.op === 'replace') {
      if (!(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = op.value;
    } else if (op.op === 'remove') {
      if (!(last in parent)) throw new Error(`remove of missing ${op.path}`);
      delete parent[last];
    } else {
      throw new Error(`unexpected op ${op.op}`);
    }
  }
  return out;
}

const takenOver = (saved: string, extra: Record<string, string> = {}): object => ({
  metadata: { name: 'web', annotations: { team: 'shop', [ANNOTATIONS.originalSelector]: saved, ...extra } },
  spec: { selector: { 'kt.dev/router': 'web' }, ports: [{ port: 80 }] },
});

test('restorePatch applied to a taken-over Service gives back exactly the Service before, other annotations kept', () => {
  // Keys out of order and a label key with "/": the saved text must be matched byte for byte.
  const original = { tier: 'front', 'app.kubernetes.io/name': 'web' };
  const saved = JSON.stringify(original);
  assert.deepEqual(applyJsonPatch(takenOver(saved), restorePatch(JSON.parse(saved) as Record<string, string>)), {
    metadata: { name: 'web', annotations: { team: 'shop' } },
    spec: { selector: original, ports: [{ port: 80 }] },
  });
  assert.deepEqual(applyJsonPatch(takenOver('null'), restorePatch(null)), {
    metadata: { name: 'web', annotations: { team: 'shop' } },
    spec: { ports: [{ port: 80 }] },
  });
});

test('restorePatch fails as a whole when someone took the Service over again since it was read', () => {
  const patch = restorePatch({ app: 'web' });
  assert.throws(() => applyJsonPatch(takenOver('{"app":"web-v2"}'), patch), /test failed/);
  assert.throws(() => applyJsonPatch({ metadata: { name: 'web', annotations: {} }, spec: { selector: { app: 'web' } } }, patch), /test failed/, 'already restored: nothing to do');
});
