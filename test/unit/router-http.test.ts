import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bed, tag, whoAnswers } from './router-fixtures.ts';
test('untagged goes to origin, tagged to the developer', async (t) => {
  const b = await bed(t);
  assert.equal(await whoAnswers(b.port), 'origin-pod');
  await b.dev('alice', { headers: tag('alice') });
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  assert.equal(await whoAnswers(b.port), 'origin-pod');
});
