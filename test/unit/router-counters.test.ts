// The router's per-route and per-port counts over a sliding window, and the
// plugin's reading of them (the "matched nothing" line). Pure: a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION, type HeaderMatch } from '../../contract/protocol.ts';
import { Counters } from '../../proxy-image/src/router/counters.ts';
import { RouteTable } from '../../proxy-image/src/router/table.ts';
import { quietLine, trafficOf } from '../../plugin/src/session/route-traffic.ts';
import { parseRoutes } from '../../plugin/src/status/model.ts';
import { trafficText } from '../../plugin/src/commands/status.ts';
import { routerEnv } from '../../plugin/src/kube/router-pod.ts';

const lk = (h: Record<string, string>) => (n: string) => h[n];

test('counters: matched, other value and untagged per route; untagged per port; a sliding window', () => {
  let now = 1_000_000;
  const counters = new Counters({ windowMs: 60_000, now: () => now });
  const table = new RouteTable<null>([80]);
  const add = (owner: string, headers: HeaderMatch[]) => {
    const r = table.add({ protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, owner, session: `s-${owner}`, headers }, owner, null);
    if ('refused' in r) throw new Error(r.refused);
    return r.route;
  };
  const alice = add('alice', [{ name: 'x-kt-version', value: 'alice' }]);
  const bag = add('bob', [{ baggage: 'kt', value: 'bob' }]);
  const send = (h: Record<string, string>, n: number) => {
    for (let i = 0; i < n; i++) {
      const l = lk(h);
      counters.record(80, table.routesOn(80), table.decide(80, l), l);
    }
  };
  send({ 'x-kt-version': 'alice' }, 3);
  send({ 'x-kt-version': 'carol' }, 2);
  send({ baggage: 'kt=bob,a=1' }, 4);
  send({ baggage: 'kt=dave' }, 1);
  send({ baggage: 'broken' }, 1);
  send({}, 5);
  assert.deepEqual(counters.route(alice.id), { matched: 3, otherValue: 2, untagged: 11 });
  assert.deepEqual(counters.route(bag.id), { matched: 4, otherValue: 1, untagged: 11 });
  assert.deepEqual(counters.port(80), { servicePort: 80, requests: 16, untagged: 6 });
  counters.recordUnrouted(80);
  assert.deepEqual(counters.port(80), { servicePort: 80, requests: 17, untagged: 7 });
  now += 30_000;
  send({}, 2);
  assert.equal(counters.port(80).requests, 19);
  now += 31_000;
  assert.deepEqual(counters.port(80), { servicePort: 80, requests: 2, untagged: 2 }, 'the first burst left the window');
  assert.deepEqual(counters.route(alice.id), { matched: 0, otherValue: 0, untagged: 2 });
  counters.drop(alice.id);
  assert.deepEqual(counters.route(alice.id), { matched: 0, otherValue: 0, untagged: 0 });
});

test('route traffic: the session\'s own counts from /routes, and the "matched nothing" line', () => {
  const answer = {
    routes: [
      { session: 'me', servicePort: 80, counts: { matched: 0, otherValue: 0, untagged: 312 } },
      { session: 'other', servicePort: 80, counts: { matched: 9, otherValue: 0, untagged: 303 } },
    ],
    ports: [{ servicePort: 80, requests: 321, untagged: 303 }],
    windowSeconds: 60,
  };
  const t = trafficOf(answer, 'me', new Date(0));
  assert.deepEqual(t, { windowSeconds: 60, at: '1970-01-01T00:00:00.000Z', ports: [{ servicePort: 80, matched: 0, otherValue: 0, untagged: 312, requests: 321, portUntagged: 303 }] });
  assert.equal(trafficOf({ routes: [] }, 'me', new Date(0)), undefined, 'an older router sends no counts');
  const line = quietLine(t!.ports[0], 60, 'x-kt-version: alice', 'web');
  assert.match(line!, /^no request carried x-kt-version: alice in the last minute; 312 untagged requests reached web — is the tag passed on by the caller\?/);
  assert.equal(quietLine({ ...t!.ports[0], matched: 1 }, 60, 'x', 'web'), undefined);
  assert.equal(quietLine({ ...t!.ports[0], requests: 0, untagged: 0 }, 60, 'x', 'web'), undefined);
  assert.match(quietLine({ ...t!.ports[0], untagged: 0, otherValue: 4 }, 5, 'baggage kt=alice', 'back')!, /in the last 5 s; 4 with another value reached back/);
});

test('status: a route annotation\'s counts reach status (text and JSON); a new router gets the count window', () => {
  const traffic = { windowSeconds: 60, at: '2026-12-03T10:00:00.000Z', ports: [{ servicePort: 80, matched: 7, otherValue: 5, untagged: 9, requests: 21, portUntagged: 9 }] };
  const routes = parseRoutes({
    'kt.dev/routes.s1': JSON.stringify({ owner: 'alice@laptop', kind: 'mesh', since: '2026-12-03T09:59:00Z', heartbeat: '2026-12-03T10:00:00Z', servicePort: 80, headers: [{ baggage: 'kt', value: 'alice' }], traffic }),
    'kt.dev/routes.s2': JSON.stringify({ owner: 'bob@laptop', kind: 'mesh', since: '2026-12-03T09:59:30Z', heartbeat: '2026-12-03T10:00:00Z', servicePort: 80, headers: [{ name: 'x-kt-version', value: 'bob' }] }),
  }, Date.parse('2026-12-03T10:00:05Z'));
  assert.deepEqual(routes[0].traffic, traffic);
  assert.deepEqual(routes[0].headers, [{ baggage: 'kt', value: 'alice' }]);
  assert.equal(routes[1].traffic, undefined, 'a session of an older plugin sends none');
  assert.equal(trafficText(routes[0]), '7 matched, 5 other value, 9 untagged of 21 (last 60 s)');
  assert.equal(trafficText(routes[1]), '');
  const own = { ssh: 2222, health: 8081 };
  assert.equal(routerEnv([], 'o', own, 5).KT_ROUTER_COUNT_WINDOW_SECONDS, '5');
  assert.equal(routerEnv([], 'o', own).KT_ROUTER_COUNT_WINDOW_SECONDS, undefined);
});
