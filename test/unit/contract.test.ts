// contract/: what plugin and proxy must agree on. A route refusal carries a
// reason the plugin turns into the right error (not always
// KT_ERR_ROUTE_TAKEN); request names are all in SSH_REQUESTS; the route
// annotation reads back what was written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION, ROUTE_REFUSAL_CODES, SSH_REQUESTS, type HeaderMatch, type RouteRequest } from '../../contract/protocol.ts';
import { decodeRouteAnnotation, encodeRouteAnnotation, type RouteAnnotation } from '../../contract/route-annotation.ts';
import { decodeRouteCancel, decodeRouteReply, encodeJson, encodeRouteCancel, encodeRouteRequest } from '../../contract/ssh/route-request.ts';
import type { ErrorCode } from '../../plugin/src/errors.ts';
import { ROUTE_REFUSAL_ERRORS, routeRefusalError, RouteRefusedError } from '../../plugin/src/tunnel/route.ts';
import { RouteTable } from '../../proxy-image/src/router/table.ts';
import type { ConnContext } from '../../proxy-image/src/ssh/context.ts';
import { makeRouteHandler } from '../../proxy-image/src/ssh/route-handler.ts';

/** The router's kt-route@kt.dev handler over a route table for port 80, as the router wires it. */
function router() {
  const table = new RouteTable<null>([80]);
  const handle = makeRouteHandler((ctx, req) => {
    const added = table.add(req, ctx.id, null);
    return 'refused' in added ? added : { id: added.route.id, address: added.route.address };
  });
  const ctx = { id: 'c1', closed: false, log: () => {} } as unknown as ConnContext;
  /** The plugin's error code for a request sent as it is on the wire, or 'accepted'. */
  return async (payload: unknown): Promise<ErrorCode | 'accepted'> => {
    const raw = await handle(ctx, encodeJson(payload));
    const reply = decodeRouteReply(raw as Buffer);
    assert.ok(reply, 'the reply decodes');
    if (!('refused' in reply)) return 'accepted';
    return routeRefusalError(new RouteRefusedError(reply.refused, reply.code), { namespace: 'shop', service: 'web', router: 'kt-router-web-x' }).code as ErrorCode;
  };
}

const mesh = (headers: HeaderMatch[], session = 's-alice'): RouteRequest =>
  ({ protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers, owner: 'alice@laptop', session });

test('route refusals: an unknown kind and a bad regex are KT_ERR_ROUTE_INVALID, a held slot KT_ERR_ROUTE_TAKEN', async () => {
  const send = router();
  assert.equal(await send({ ...mesh([]), kind: 'bogus' }), 'KT_ERR_ROUTE_INVALID', 'unknown kind (the request decoder)');
  assert.equal(await send({ ...mesh([{ name: 'x-user', regex: '(a)\\1' }]) }), 'KT_ERR_ROUTE_INVALID', 'backreference (the route table)');
  assert.equal(await send({ ...mesh([{ name: 'x-user', regex: '(?=a)' }]) }), 'KT_ERR_ROUTE_INVALID', 'lookaround');
  assert.equal(await send({ ...mesh([{ name: 'x-kt-version', value: 'a' }]), servicePort: 81 }), 'KT_ERR_ROUTE_INVALID', 'a port the router does not serve');
  assert.equal(await send({ ...mesh([]), protocol: PROTOCOL_VERSION + 1 }), 'KT_ERR_ROUTE_INVALID', 'another protocol');
  assert.equal(await send(mesh([{ name: 'x-kt-version', value: 'a' }])), 'accepted');
  assert.equal(await send(mesh([{ name: 'x-kt-version', value: 'a' }], 's-bob')), 'KT_ERR_ROUTE_TAKEN', 'the same rule, held by alice');
});

test('a taken refusal names the holding session on the wire (a reconnecting session knows its own old connection by it)', async () => {
  const table = new RouteTable<null>([80]);
  const handle = makeRouteHandler((ctx, req) => {
    const added = table.add(req, ctx.id, null);
    return 'refused' in added ? added : { id: added.route.id, address: added.route.address };
  });
  const ctx = (id: string) => ({ id, closed: false, log: () => {} }) as unknown as ConnContext;
  const rule = [{ name: 'x-kt-version', value: 'a' }];
  assert.ok(!('refused' in (decodeRouteReply((await handle(ctx('c1'), encodeJson(mesh(rule)))) as Buffer) ?? { refused: '' })));
  // The same session from a new connection, and another session: both refused, each told who holds it.
  for (const session of ['s-alice', 's-bob']) {
    const reply = decodeRouteReply((await handle(ctx('c2'), encodeJson(mesh(rule, session)))) as Buffer);
    assert.ok(reply && 'refused' in reply);
    assert.equal(reply.code, 'taken');
    assert.equal(reply.heldBy, 's-alice');
  }
});

test('route replies: a refusal without a code is taken (older routers), one with an unknown code invalid', () => {
  const reply = (v: unknown) => decodeRouteReply(encodeJson(v));
  assert.deepEqual(reply({ refused: 'held' }), { refused: 'held', code: 'taken' });
  assert.deepEqual(reply({ refused: 'held', code: 'taken', heldBy: 's-1' }), { refused: 'held', code: 'taken', heldBy: 's-1' });
  assert.deepEqual(reply({ refused: 'x', code: 'limit', heldBy: 's-1' }), { refused: 'x', code: 'limit' }, 'heldBy only with taken');
  assert.deepEqual(reply({ refused: 'held', code: 'taken', heldBy: 7 }), { refused: 'held', code: 'taken' });
  assert.deepEqual(reply({ refused: 'new reason', code: 'draining' }), { refused: 'new reason', code: 'invalid' });
  for (const code of ROUTE_REFUSAL_CODES) assert.deepEqual(reply({ refused: 'x', code }), { refused: 'x', code });
  assert.deepEqual(reply({ id: 'r1', address: 'route-r1', extra: 1 }), { id: 'r1', address: 'route-r1' });
  assert.equal(reply({ id: 1 }), undefined);
  assert.equal(decodeRouteReply(Buffer.from('not an ssh string')), undefined);
  // Every reason has its own error, and they differ.
  assert.deepEqual(Object.keys(ROUTE_REFUSAL_ERRORS).sort(), [...ROUTE_REFUSAL_CODES].sort());
  assert.equal(new Set(Object.values(ROUTE_REFUSAL_ERRORS)).size, ROUTE_REFUSAL_CODES.length);
  // A refusal because the connection was closing is about the tunnel, not the route: it names the router pod, not a holder.
  const closing = routeRefusalError(new RouteRefusedError('the connection is closing', 'closing'), { namespace: 'shop', service: 'web', router: 'kt-router-web-x' });
  assert.equal(closing.code, 'KT_ERR_TUNNEL_FAILED');
  assert.match(closing.message, /shop\/kt-router-web-x.*closing.*run the command again/);
  // A router that drains before its exit takes no route: the router is gone, as far as the session goes.
  const leaving = routeRefusalError(new RouteRefusedError('the router is leaving', 'leaving'), { namespace: 'shop', service: 'web', router: 'kt-router-web-x' });
  assert.equal(leaving.code, 'KT_ERR_ROUTER_GONE');
  assert.match(leaving.message, /service shop\/web is gone \(kt-router-web-x: the router is leaving\)/);
});

test('SSH request names: every kt request is in SSH_REQUESTS, distinct, under @kt.dev; route and cancel payloads round-trip', () => {
  const names = Object.values(SSH_REQUESTS);
  assert.equal(new Set(names).size, names.length);
  for (const n of names) assert.match(n, /^kt-[a-z-]+@kt\.dev$/);
  assert.ok(names.includes('kt-route-cancel@kt.dev'));
  assert.equal(decodeRouteCancel(encodeRouteCancel('r7')), 'r7');
  assert.equal(decodeRouteCancel(encodeJson({ id: 7 })), undefined);
  assert.equal(decodeRouteCancel(encodeJson(null)), undefined);
  const req = mesh([{ baggage: 'kt', value: 'alice' }]);
  assert.deepEqual(decodeRouteReply(encodeRouteRequest(req)), undefined, 'a request is not a reply');
});

test('route annotation: what the session writes, status reads back; fields of the wrong type read as absent', () => {
  const a: RouteAnnotation = {
    owner: 'alice@laptop',
    kind: 'mesh',
    since: '2026-01-01T00:00:00Z',
    heartbeat: '2026-01-01T00:00:10Z',
    servicePort: 80,
    headers: [{ name: 'x-kt-version', value: 'alice' }, { baggage: 'kt', value: 'alice' }],
    localPort: 8080,
    traffic: { windowSeconds: 60, at: '2026-01-01T00:00:10Z', ports: [{ servicePort: 80, matched: 3, otherValue: 1, untagged: 2, requests: 6, portUntagged: 2 }] },
  };
  assert.deepEqual(decodeRouteAnnotation(encodeRouteAnnotation(a)), a);
  assert.deepEqual(decodeRouteAnnotation('{"servicePort":"80","headers":"x","traffic":{"ports":1},"kind":"other"}'), {
    owner: 'unknown', kind: 'exchange', since: '', heartbeat: '',
  });
  assert.equal(decodeRouteAnnotation('not json'), undefined);
  assert.equal(decodeRouteAnnotation('null'), undefined);
});
