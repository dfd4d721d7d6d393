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
