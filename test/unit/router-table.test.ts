// The router's pure decisions: header conditions, conflicts, precedence,
// removal with the holder; sniffing; KT_ROUTER_PORTS. No sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION } from '../../contract/protocol.ts';
import type { HeaderMatch, RouteRequest } from '../../contract/protocol.ts';
import { compileConditions, matchesAll } from '../../proxy-image/src/router/match.ts';
import { MAX_ROUTES, MAX_ROUTES_PER_HOLDER, MAX_SCAN_ROUTES, RouteTable } from '../../proxy-image/src/router/table.ts';
import { sniff } from '../../proxy-image/src/router/sniff.ts';
import { parseRouterPorts } from '../../proxy-image/src/router/env.ts';

const req = (kind: 'exchange' | 'mesh', owner: string, headers?: HeaderMatch[], servicePort = 80): RouteRequest => ({
  protocol: PROTOCOL_VERSION,
  kind,
  servicePort,
  owner,
  session: `s-${owner}`,
  ...(headers ? { headers } : {}),
});
const lookup = (h: Record<string, string | string[]>) => (name: string) => h[name];

function added<H>(r: ReturnType<RouteTable<H>['add']>) {
  if ('refused' in r) throw new Error(`refused: ${r.refused}`);
  return r.route;
}

test('conditions: names case-insensitive, exact values, anchored regexes, all must hold', () => {
  const conds = compileConditions([
    { name: 'X-KT-Version', value: 'alice' },
    { name: 'x-tenant', regex: 'eu-[0-9]+' },
  ]);
  assert.ok(Array.isArray(conds));
  assert.equal(matchesAll(conds, lookup({ 'x-kt-version': 'alice', 'x-tenant': 'eu-12' })), true);
  assert.equal(matchesAll(conds, lookup({ 'x-kt-version': 'alice' })), false, 'one condition missing');
  assert.equal(matchesAll(conds, lookup({ 'x-kt-version': 'Alice', 'x-tenant': 'eu-1' })), false, 'values are case-sensitive');
  assert.equal(matchesAll(conds, lookup({ 'x-kt-version': 'alice', 'x-tenant': 'xeu-1' })), false, 'regex is anchored');
  assert.equal(matchesAll(conds, lookup({ 'x-kt-version': ['bob', 'alice'], 'x-tenant': 'eu-1' })), true, 'any of repeated values');
  assert.match(compileConditions([]) as string, /at least one/);
  assert.match(compileConditions([{ name: 'bad name', value: 'x' }]) as string, /not a valid HTTP field name/);
  assert.match(compileConditions([{ name: 'x', regex: '(' }]) as string, /not an RE2 regular expression/);
  assert.match(compileConditions([{ name: 'x', regex: 'a'.repeat(300) }]) as string, /longer than/);
  assert.match(compileConditions([{ name: 'x', value: 'a' }, { name: 'X', value: 'a' }]) as string, /twice/);
});

test('one exchange per port; a second is refused naming the holder', () => {
  const t = new RouteTable<string>([80, 443]);
  added(t.add(req('exchange', 'alice@a'), 'c1', 'h'));
  const r = t.add(req('exchange', 'bob@b'), 'c2', 'h');
  assert.ok('refused' in r);
  assert.match(r.refused, /already exchanged by alice@a \(session s-alice@a\)/);
  added(t.add(req('exchange', 'bob@b', undefined, 443), 'c2', 'h'));
  assert.match((t.add(req('exchange', 'x', undefined, 8080), 'c3', 'h') as { refused: string }).refused, /serves port\(s\) 80, 443, not 8080/);
  assert.match((t.add(req('exchange', 'x', [{ name: 'a', value: 'b' }]), 'c3', 'h') as { refused: string }).refused, /no header conditions/);
});

test('mesh: the same header set (any order, any name case) conflicts; a different value does not', () => {
  const t = new RouteTable<string>([80]);
  added(t.add(req('mesh', 'alice', [{ name: 'x-kt-version', value: 'alice' }, { name: 'x-b', value: '1' }]), 'c1', 'h'));
  const r = t.add(req('mesh', 'eve', [{ name: 'X-B', value: '1' }, { name: 'X-KT-Version', value: 'alice' }]), 'c2', 'h');
  assert.ok('refused' in r);
  assert.match(r.refused, /already routed to alice \(session s-alice\)/);
  added(t.add(req('mesh', 'bob', [{ name: 'x-kt-version', value: 'bob' }]), 'c2', 'h'));
  // A regex with the same text as a value is a different rule.
  added(t.add(req('mesh', 'carol', [{ name: 'x-kt-version', regex: 'bob' }]), 'c3', 'h'));
});

test('precedence: mesh header routes, then the exchange, then origin; deny by default', () => {
  const t = new RouteTable<string>([80]);
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' })), undefined, 'no routes: origin');
  const alice = added(t.add(req('mesh', 'alice', [{ name: 'x-kt-version', value: 'alice' }]), 'c1', 'h'));
  assert.equal(t.decide(80, lookup({})), undefined, 'untagged: origin');
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alicex' })), undefined, 'near miss: origin');
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' })), alice);
  const ex = added(t.add(req('exchange', 'erin'), 'c2', 'h'));
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' })), alice, 'mesh before exchange');
  assert.equal(t.decide(80, lookup({})), ex, 'exchange before origin');
  assert.equal(t.defaultRoute(80), ex);
  // First registered mesh wins when two match.
  const re = added(t.add(req('mesh', 'rex', [{ name: 'x-kt-version', regex: 'ali.*' }]), 'c3', 'h'));
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' })), alice);
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alina' })), re);
});

test('routes go with their holder; removal is reported; cancel only by the holder', () => {
  const t = new RouteTable<string>([80]);
  const removed: string[] = [];
  t.onRemove((r) => removed.push(r.id));
  const a = added(t.add(req('mesh', 'alice', [{ name: 'x', value: 'a' }]), 'c1', 'h'));
  const b = added(t.add(req('exchange', 'alice'), 'c1', 'h'));
  const c = added(t.add(req('mesh', 'bob', [{ name: 'x', value: 'b' }]), 'c2', 'h'));
  assert.notEqual(a.address, c.address);
  assert.equal(t.remove(c.id, 'c1'), false, 'not the holder');
  assert.deepEqual(t.removeHolder('c1').map((r) => r.id).sort(), [a.id, b.id].sort());
  assert.deepEqual(removed.sort(), [a.id, b.id].sort());
  assert.equal(t.decide(80, lookup({ x: 'a' })), undefined);
  assert.equal(t.decide(80, lookup({ x: 'b' })), c);
  assert.equal(t.remove(c.id, 'c2'), true);
  assert.equal(t.hasRoutes(80), false);
  // The slot is free again.
  added(t.add(req('exchange', 'bob'), 'c2', 'h'));
});

test('sniff: h2 preface, HTTP/1 method, anything else raw', () => {
  assert.equal(sniff(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'h2');
  assert.equal(sniff(Buffer.from('PRI * HT')), 'more');
  assert.equal(sniff(Buffer.from('GET / HTTP/1.1\r\n')), 'h1');
  assert.equal(sniff(Buffer.from('\r\nPOST ')), 'h1');
  assert.equal(sniff(Buffer.from('GE')), 'more');
  assert.equal(sniff(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), 'raw', 'TLS ClientHello');
  assert.equal(sniff(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])), 'raw', 'PostgreSQL SSLRequest');
  assert.equal(sniff(Buffer.from('A'.repeat(30))), 'raw', 'no space within a method length');
  assert.equal(sniff(Buffer.from(' GET')), 'raw');
});

test('KT_ROUTER_PORTS: parsed once, exact errors', () => {
  assert.deepEqual(parseRouterPorts('[{"name":"http","servicePort":80,"listenPort":8080,"originPort":80}]'), [
    { name: 'http', servicePort: 80, listenPort: 8080, originPort: 80, protocol: 'TCP' },
  ]);
  assert.throws(() => parseRouterPorts(undefined), /empty/);
  assert.throws(() => parseRouterPorts('{'), /not JSON/);
  assert.throws(() => parseRouterPorts('[]'), /non-empty/);
  assert.throws(() => parseRouterPorts('[{"servicePort":80,"listenPort":8080}]'), /originPort/);
  assert.throws(() => parseRouterPorts('[{"servicePort":80,"listenPort":1,"originPort":80,"protocol":"UDP"}]'), /only TCP/);
  assert.throws(() => parseRouterPorts('[{"servicePort":80,"listenPort":1,"originPort":80},{"servicePort":80,"listenPort":2,"originPort":80}]'), /twice/);
});

test('caps: routes per router, per holder, regex-only routes; refusals carry a code', () => {
  const t = new RouteTable<string>([80]);
  for (let i = 0; i < MAX_ROUTES_PER_HOLDER; i++) added(t.add(req('mesh', 'a', [{ name: 'x-kt-version', value: `a${i}` }]), 'c-a', 'h'));
  const perHolder = t.add(req('mesh', 'a', [{ name: 'x-kt-version', value: 'a-over' }]), 'c-a', 'h');
  assert.ok('refused' in perHolder && perHolder.code === 'limit', 'per holder');
  for (let i = 0; i < MAX_SCAN_ROUTES; i++) added(t.add(req('mesh', 'r', [{ name: 'x-user', regex: `r${i}.*` }]), `c-r${i}`, 'h'));
  const scan = t.add(req('mesh', 'r', [{ name: 'x-user', regex: 'over.*' }]), 'c-r-over', 'h');
  assert.ok('refused' in scan && scan.code === 'limit' && /no exact header condition/.test(scan.refused), 'regex-only');
  added(t.add(req('mesh', 'r', [{ name: 'x-user', regex: 'over.*' }, { name: 'x-kt-version', value: 'r' }]), 'c-r-over', 'h'));
  let n = t.list().length;
  for (let h = 0; n < MAX_ROUTES; h++) for (let i = 0; i < MAX_ROUTES_PER_HOLDER && n < MAX_ROUTES; i++, n++) added(t.add(req('mesh', 'm', [{ name: 'x-kt-version', value: `m${h}-${i}` }]), `c-m${h}`, 'h'));
  const full = t.add(req('mesh', 'z', tagOf('z')), 'c-z', 'h');
  assert.ok('refused' in full && full.code === 'limit' && /1000 routes/.test(full.refused), 'per router');
  const taken = t.add(req('mesh', 'a', [{ name: 'x-kt-version', value: 'a0' }]), 'c-b', 'h');
  assert.ok('refused' in taken && taken.code === 'taken');
  // The holder goes: its slots come back.
  t.removeHolder('c-a');
  added(t.add(req('mesh', 'z', tagOf('z')), 'c-z', 'h'));
});

test('lookup by header value: registration order decides between an indexed and a regex route; list elements match', () => {
  const t = new RouteTable<string>([80]);
  const re = added(t.add(req('mesh', 'regex', [{ name: 'x-kt-version', regex: 'al.*' }]), 'c1', 'h'));
  const exact = added(t.add(req('mesh', 'alice', tagOf('alice')), 'c2', 'h'));
  const ex = added(t.add(req('exchange', 'ex'), 'c3', 'h'));
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' }))?.id, re.id, 'the earlier registration wins');
  t.remove(re.id);
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'alice' }))?.id, exact.id);
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'bob, alice' }))?.id, exact.id, 'one comma-joined line');
  assert.equal(t.decide(80, lookup({ 'x-kt-version': ['bob', 'alice'] }))?.id, exact.id, 'two lines');
  assert.equal(t.decide(80, lookup({ 'x-kt-version': 'bob' }))?.id, ex.id, 'no match: the exchange');
});

const tagOf = (v: string): HeaderMatch[] => [{ name: 'x-kt-version', value: v }];
