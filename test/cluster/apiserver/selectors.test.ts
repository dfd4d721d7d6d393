import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkFields,
  labelSelectorString,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  requirementsOf,
} from './selectors.ts';
import { ApiError } from './status.ts';

const labels = { app: 'web', tier: 'front', 'example.com/x': 'y', n: '5' };

function sel(s: string, l: Record<string, string> = labels): boolean {
  return matchLabels(parseLabelSelector(s), l);
}

test('label selector: equality, inequality, set and existence operators', () => {
  assert.equal(sel(''), true);
  assert.equal(sel('app=web'), true);
  assert.equal(sel('app==web'), true);
  assert.equal(sel('app=db'), false);
  assert.equal(sel('app!=db'), true);
  assert.equal(sel('app!=web'), false);
  assert.equal(sel('missing!=x'), true, '!= matches objects without the label');
  assert.equal(sel('app in (db, web)'), true);
  assert.equal(sel('app in (db)'), false);
  assert.equal(sel('app notin (db,cache)'), true);
  assert.equal(sel('app notin (web)'), false);
  assert.equal(sel('tier'), true);
  assert.equal(sel('nope'), false);
  assert.equal(sel('!nope'), true);
  assert.equal(sel('!tier'), false);
  assert.equal(sel('example.com/x=y'), true);
  assert.equal(sel('n>4,n<6'), true);
  assert.equal(sel('n>5'), false);
  assert.equal(sel('app=web,tier in (front,back),!nope'), true);
  assert.equal(sel('app=web,tier=back'), false);
});

test('label selector: malformed input is a 400 BadRequest', () => {
  for (const bad of ['app=web,', 'a b c', 'app in (x', '-bad=1', 'n>x', 'app=in valid']) {
    assert.throws(
      () => parseLabelSelector(bad),
      (e: unknown) => e instanceof ApiError && e.code === 400 && e.reason === 'BadRequest',
      bad,
    );
  }
});

test('label selector objects: matchLabels and matchExpressions, and their string form', () => {
  const reqs = requirementsOf({
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['front', 'back'] },
      { key: 'gone', operator: 'DoesNotExist' },
    ],
  });
  assert.equal(matchLabels(reqs, labels), true);
  assert.equal(matchLabels(reqs, { app: 'web' }), false);
  assert.equal(labelSelectorString(reqs), 'app=web,!gone,tier in (back,front)');
  assert.equal(matchLabels(requirementsOf({}), {}), true, 'an empty selector matches everything');
});

test('field selector: =, ==, != and escapes', () => {
  const pod = { metadata: { name: 'p1', namespace: 'ns' }, spec: { nodeName: 'n1' }, status: { phase: 'Running' } };
  const f = (s: string): boolean => matchFields(parseFieldSelector(s), pod);
  assert.equal(f('metadata.name=p1'), true);
  assert.equal(f('metadata.name==p1,metadata.namespace=ns'), true);
  assert.equal(f('metadata.name=p2'), false);
  assert.equal(f('status.phase!=Pending'), true);
  assert.equal(f('status.phase!=Running'), false);
  assert.equal(f('spec.nodeName='), false);
  assert.equal(matchFields(parseFieldSelector('spec.nodeName='), { metadata: { name: 'x' }, spec: {} }), true, 'unscheduled pods have an empty nodeName');
  assert.deepEqual(parseFieldSelector('metadata.name=a\\,b'), [{ field: 'metadata.name', op: 'eq', value: 'a,b' }]);
  assert.throws(() => parseFieldSelector('metadata.name'), (e: unknown) => e instanceof ApiError && e.code === 400);
});

test('field selector: only the fields a resource supports', () => {
  checkFields('pods', parseFieldSelector('spec.nodeName=n,status.phase=Running,metadata.name=x'));
  checkFields('services', parseFieldSelector('spec.clusterIP=10.0.0.1'));
  assert.throws(
    () => checkFields('configmaps', parseFieldSelector('spec.nodeName=n')),
    (e: unknown) => e instanceof ApiError && e.code === 400 && e.message === 'field label not supported: spec.nodeName',
  );
});
