// W3C Baggage (https://www.w3.org/TR/baggage/) as the router reads it, and
// baggage conditions of mesh routes. Pure: no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeValue, encodeValue, mergeBaggage, parseBaggage, parseMember } from '../../contract/http/baggage.ts';
import { compileConditions, describeConditions, matchesAll } from '../../proxy-image/src/router/match.ts';
import { PROTOCOL_VERSION, type HeaderMatch } from '../../contract/protocol.ts';
import { RouteTable } from '../../proxy-image/src/router/table.ts';

const members = (b: ReturnType<typeof parseBaggage>) => (b ? Object.fromEntries(b) : undefined);

test('baggage: several members, optional whitespace, properties ignored', () => {
  assert.deepEqual(members(parseBaggage('kt=alice,userId=42')), { kt: ['alice'], userId: ['42'] });
  assert.deepEqual(members(parseBaggage(' kt = alice ,\tuserId=42\t')), { kt: ['alice'], userId: ['42'] });
  assert.deepEqual(members(parseBaggage('kt=alice;ttl=10;secret, other=x;flag')), { kt: ['alice'], other: ['x'] });
  assert.deepEqual(members(parseBaggage('kt=alice ; ttl = 10')), { kt: ['alice'] });
  assert.deepEqual(members(parseBaggage('kt=')), { kt: [''] }, 'an empty value is a value');
  assert.deepEqual(members(parseBaggage('k=a=b')), { k: ['a=b'] }, '= is a baggage-octet');
  assert.deepEqual(members(parseBaggage('kt=alice,kt=bob')), { kt: ['alice', 'bob'] });
});

test('baggage: percent-encoded values decode as UTF-8; bad UTF-8 becomes U+FFFD', () => {
  assert.deepEqual(members(parseBaggage('kt=al%20ice,name=J%C3%BCrgen,pct=100%25,c=a%2Cb')), { kt: ['al ice'], name: ['Jürgen'], pct: ['100%'], c: ['a,b'] });
  assert.equal(decodeValue('%ff'), '\uFFFD');
  assert.equal(decodeValue('%zz'), undefined);
  assert.equal(decodeValue('abc%4'), undefined);
  assert.equal(encodeValue('al ice,Jürgen;100%'), 'al%20ice%2CJ%C3%BCrgen%3B100%25');
  assert.equal(decodeValue(encodeValue('any "text" \\ here')), 'any "text" \\ here');
});

test('baggage: several header lines are one list; empty lines are skipped', () => {
  assert.deepEqual(members(parseBaggage(['a=1', 'kt=alice;p', '', '  '])), { a: ['1'], kt: ['alice'] });
  assert.deepEqual(members(parseBaggage([])), {});
});

test('baggage: malformed input is undefined (never an exception)', () => {
  for (const bad of ['kt', 'kt alice', '=alice', 'k t=alice', 'kt=al ice', 'kt="alice"', 'kt=a\\b', 'kt=alice,', ',kt=alice', 'kt=alice,,x=1',
    'kt=alice;', 'kt=alice;=x', 'kt=alice;p=a b', 'kt=%zz', 'kt=\u00e9', 'kt=a\u0000', 'ké=1', '\u0000']) {
    assert.equal(parseBaggage(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(parseBaggage(['kt=alice', 'oops']), undefined, 'one bad line spoils the set');
  assert.equal(parseMember('kt'), undefined);
  assert.deepEqual(parseMember(' kt = al%41 ;p'), { key: 'kt', value: 'alA' });
});

test('baggage: merge puts ours first, replaces our keys, keeps the rest, drops malformed members', () => {
  assert.equal(mergeBaggage(undefined, [{ key: 'kt', value: 'alice' }]), 'kt=alice');
  assert.equal(mergeBaggage(['kt=bob;p, userId=42', 'x=1'], [{ key: 'kt', value: 'alice smith' }]), 'kt=alice%20smith,userId=42,x=1');
  assert.equal(mergeBaggage('bad member,y=2', [{ key: 'kt', value: 'a' }]), 'kt=a,y=2');
  assert.deepEqual(members(parseBaggage(mergeBaggage('a=1', [{ key: 'kt', value: 'ü,;' }]))), { kt: ['ü,;'], a: ['1'] });
});

test('baggage conditions: match a member by decoded value, all conditions hold, malformed never matches', () => {
  const conds = compileConditions([{ baggage: 'kt', value: 'alice smith' }, { name: 'x-tenant', value: 'eu' }]);
  assert.ok(Array.isArray(conds));
  const lk = (h: Record<string, string | string[]>) => (n: string) => h[n];
  assert.equal(matchesAll(conds, lk({ baggage: 'a=1,kt=alice%20smith;p=1', 'x-tenant': 'eu' })), true);
  assert.equal(matchesAll(conds, lk({ baggage: ['a=1', 'kt=alice%20smith'], 'x-tenant': 'eu' })), true, 'member on the second line');
  assert.equal(matchesAll(conds, lk({ baggage: 'kt=alice%20smith' })), false, 'the header rule must hold too');
  assert.equal(matchesAll(conds, lk({ baggage: 'kt=bob', 'x-tenant': 'eu' })), false);
  assert.equal(matchesAll(conds, lk({ baggage: 'KT=alice%20smith', 'x-tenant': 'eu' })), false, 'keys are case-sensitive');
  assert.equal(matchesAll(conds, lk({ baggage: 'kt=alice%20smith,broken', 'x-tenant': 'eu' })), false, 'malformed never matches');
  assert.equal(matchesAll(conds, lk({ 'x-kt': 'kt=alice%20smith', 'x-tenant': 'eu' })), false, 'only the baggage header counts');
  assert.equal(describeConditions(conds), 'baggage kt=alice smith, x-tenant=eu');
  assert.match(compileConditions([{ baggage: 'k t', value: 'x' }]) as string, /not a valid key/);
  assert.match(compileConditions([{ baggage: 'kt', value: 'a' }, { baggage: 'kt', value: 'a' }]) as string, /given twice/);
});

test('baggage routes: conflicts name the rule; a header rule on the same value is a different route', () => {
  const table = new RouteTable<null>([80]);
  const req = (owner: string, headers: HeaderMatch[]) => ({ protocol: PROTOCOL_VERSION, kind: 'mesh' as const, servicePort: 80, owner, session: `s-${owner}`, headers });
  assert.ok(!('refused' in table.add(req('alice', [{ baggage: 'kt', value: 'alice' }]), 'c1', null)));
  const again = table.add(req('mallory', [{ baggage: 'kt', value: 'alice' }]), 'c2', null);
  assert.ok('refused' in again && /baggage kt=alice is already routed to alice/.test(again.refused));
  assert.ok(!('refused' in table.add(req('bob', [{ name: 'kt', value: 'alice' }]), 'c3', null)));
  const lk = (h: Record<string, string>) => (n: string) => h[n];
  assert.equal(table.decide(80, lk({ baggage: 'kt=alice' }))?.owner, 'alice');
  assert.equal(table.decide(80, lk({ kt: 'alice' }))?.owner, 'bob');
  assert.equal(table.decide(80, lk({ baggage: 'kt=alice;x,' })), undefined);
  assert.deepEqual(RouteTable.view(table.list()[0]).headers, [{ baggage: 'kt', value: 'alice' }]);
});
