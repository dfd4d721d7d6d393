// The JSON patch that gives a Service its selector back
// (plugin/src/kube/restore.ts): guarded by a test op, so a Service someone
// took over again in between is not overwritten with a stale selector.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANNOTATIONS } from '../../contract/protocol.ts';
import { pointer, publishNotReadyIsOurs, restorePatch } from '../../plugin/src/kube/restore.ts';
import { heldByRouter, takeoverPatch } from '../../plugin/src/kube/takeover-plan.ts';

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

/** RFC 6902 test, add, replace and remove on a plain object: enough to run these patches as the API server would. */
function applyJsonPatch(doc: unknown, ops: object[]): unknown {
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops as { op: string; path: string; value?: unknown }[]) {
    const segs = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = segs.pop()!;
    let parent = out as Record<string, unknown>;
    for (const s of segs) parent = parent[s] as Record<string, unknown>;
    if (op.op === 'test') {
      if (JSON.stringify(parent?.[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
    } else if (op.op === 'add') {
      parent[last] = op.value;
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

test('takeover then restore: the Service publishes not-ready addresses while held, and is exactly as before after', () => {
  const before = { metadata: { name: 'web', resourceVersion: '7', annotations: { team: 'shop' } }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } };
  const held = applyJsonPatch(before, takeoverPatch({ resourceVersion: '7', hasAnnotations: true, original: { app: 'web' } }, 'web')) as never;
  assert.equal(heldByRouter(held, 'web'), true);
  assert.equal(publishNotReadyIsOurs(held), true);
  const back = applyJsonPatch(held, restorePatch({ app: 'web' }, true)) as { metadata: object; spec: { publishNotReadyAddresses?: boolean } };
  // The API server drops a false publishNotReadyAddresses (omitempty): what it stores is the Service before.
  assert.equal(back.spec.publishNotReadyAddresses, false);
  delete back.spec.publishNotReadyAddresses;
  assert.deepEqual(back, before);
});

test('takeover of a Service that publishes not-ready addresses itself: left as it is, and restore leaves it so', () => {
  const own = { metadata: { name: 'web', resourceVersion: '3', annotations: {} }, spec: { selector: { app: 'web' }, publishNotReadyAddresses: true } };
  const held = applyJsonPatch(own, takeoverPatch({ resourceVersion: '3', hasAnnotations: true, original: { app: 'web' }, publishNotReady: true }, 'web'));
  assert.equal(publishNotReadyIsOurs(held as never), false);
  assert.equal(heldByRouter(held as never, 'web'), true);
  assert.deepEqual(applyJsonPatch(held, restorePatch({ app: 'web' }, false)), own);
  // Held again after someone turned it off: our annotation is written once, never over the first one.
  const patch = takeoverPatch({ resourceVersion: '4', hasAnnotations: true, original: { app: 'web' }, publishNotReady: false, savedPublishNotReady: true }, 'web');
  assert.equal(patch.filter((o) => JSON.stringify(o).includes('original-publish-not-ready')).length, 0);
  assert.ok(patch.some((o) => JSON.stringify(o) === '{"op":"add","path":"/spec/publishNotReadyAddresses","value":true}'));
});
