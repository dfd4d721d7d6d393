import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANNOTATIONS, DOMAIN, LABELS } from '../../contract/protocol.ts';

test('every label and annotation name is unique and under the project domain', () => {
  const names = [...Object.values(LABELS), ...Object.values(ANNOTATIONS)];
  assert.equal(new Set(names).size, names.length);
  for (const n of names) {
    if (n === LABELS.managedBy) continue;
    assert.ok(n.startsWith(`${DOMAIN}/`), n);
  }
});
