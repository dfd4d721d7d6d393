// The status model (plugin/src/status/model.ts): the one picture `status`,
// `clean` and the dashboard share, built from kubectl-kt's objects alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANNOTATIONS, LABELS, MANAGED_BY, ORIGIN_SUFFIX } from '../../contract/protocol.ts';
import { buildStatus, parseRoutes, ROUTE_ANNOTATION_PREFIX, STALE_AFTER_SECONDS, type PodLike, type ServiceLike } from '../../plugin/src/status/model.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const ago = (s: number): string => new Date(NOW - s * 1000).toISOString();
const managed = (role: string, extra: Record<string, string> = {}): Record<string, string> => ({ [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: role, ...extra });

function route(session: string, r: Record<string, unknown>): [string, string] {
  return [`${ROUTE_ANNOTATION_PREFIX}${session}`, JSON.stringify(r)];
}

test('parseRoutes: one route per session annotation, oldest first, staleness from the heartbeat', () => {
  const annotations = Object.fromEntries([
    route('bbb', { owner: 'bob@b', kind: 'mesh', since: ago(100), heartbeat: ago(STALE_AFTER_SECONDS + 5), servicePort: 80, headers: [{ name: 'x-kt-version', value: 'bob' }], localPort: 9000 }),
    route('aaa', { owner: 'alice@a', kind: 'exchange', since: ago(200), heartbeat: ago(3), servicePort: 80 }),
    ['kubectl.kubernetes.io/last-applied-configuration', '{}'],
  ]);
  const routes = parseRoutes(annotations, NOW);
  assert.deepEqual(routes.map((r) => [r.session, r.owner, r.kind, r.stale, r.heartbeatAgeSeconds]), [
    ['aaa', 'alice@a', 'exchange', false, 3],
    ['bbb', 'bob@b', 'mesh', true, STALE_AFTER_SECONDS + 5],
  ]);
  assert.deepEqual(routes[1].headers, [{ name: 'x-kt-version', value: 'bob' }]);
  assert.equal(routes[1].localPort, 9000);
});

test('parseRoutes: a hand-written or broken annotation is passed over, missing fields read as unknown and stale', () => {
  const annotations = Object.fromEntries([
    [`${ROUTE_ANNOTATION_PREFIX}broken`, '{not json'],
    route('bare', {}),
  ]);
  const routes = parseRoutes(annotations, NOW);
  assert.equal(routes.length, 1);
  assert.equal(routes[0].session, 'bare');
  assert.equal(routes[0].owner, 'unknown');
  assert.equal(routes[0].kind, 'exchange', 'anything but "mesh" is an exchange');
  assert.equal(routes[0].stale, true, 'no heartbeat: stale');
  assert.deepEqual(parseRoutes(undefined, NOW), []);
});

test('buildStatus: sessions from proxy pods, Service states from the router routes, origin Services and foreign objects left out', () => {
  const pods: PodLike[] = [
    { metadata: { name: 'kt-connect-1', namespace: 'shop', labels: managed('shadow', { [LABELS.session]: 's1' }), annotations: { [ANNOTATIONS.kind]: 'connect', [ANNOTATIONS.owner]: 'alice@a', [ANNOTATIONS.since]: ago(60), [ANNOTATIONS.heartbeat]: ago(2) } }, status: { phase: 'Running' } },
    { metadata: { name: 'kt-preview-2', namespace: 'shop', labels: managed('shadow', { [LABELS.session]: 's2', [LABELS.target]: 'pre' }), annotations: { [ANNOTATIONS.kind]: 'preview', [ANNOTATIONS.heartbeat]: ago(600) } }, status: { phase: 'Running' } },
    { metadata: { name: 'kt-router-web', namespace: 'shop', labels: managed('router', { [LABELS.target]: 'web' }), annotations: Object.fromEntries([
      route('m1', { kind: 'mesh', owner: 'bob@b', since: ago(30), heartbeat: ago(1) }),
      route('x1', { kind: 'exchange', owner: 'carol@c', since: ago(20), heartbeat: ago(1) }),
    ]) }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } },
    { metadata: { name: 'kt-router-api', namespace: 'shop', labels: managed('router', { [LABELS.target]: 'api' }), annotations: Object.fromEntries([route('old', { kind: 'mesh', since: ago(900), heartbeat: ago(900) })]) }, status: { phase: 'Running' } },
    { metadata: { name: 'going', namespace: 'shop', labels: managed('shadow'), deletionTimestamp: ago(1) } },
    { metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } } },
  ];
  const services: ServiceLike[] = [
    { metadata: { name: 'web', namespace: 'shop', annotations: { [ANNOTATIONS.originalSelector]: '{"app":"web"}' } } },
    { metadata: { name: `web${ORIGIN_SUFFIX}`, namespace: 'shop', labels: managed('origin') } },
    { metadata: { name: 'api', namespace: 'shop', annotations: { [ANNOTATIONS.originalSelector]: 'not json' } } },
    { metadata: { name: 'pre', namespace: 'shop', labels: managed('preview', { [LABELS.session]: 's2' }), annotations: { [ANNOTATIONS.kind]: 'preview', [ANNOTATIONS.owner]: 'dave@d' } } },
    { metadata: { name: 'db', namespace: 'shop' } },
  ];
  const r = buildStatus({ pods, services, now: NOW, namespaces: ['shop'] });
  assert.equal(r.generatedAt, new Date(NOW).toISOString());
  assert.deepEqual(r.sessions.map((s) => [s.pod, s.kind, s.stale, s.target]), [
    ['kt-preview-2', 'preview', true, 'pre'],
    ['kt-connect-1', 'connect', false, undefined],
  ], 'routers and pods being deleted are not sessions; sorted by start (a missing start first)');
  assert.deepEqual(r.services.map((s) => [s.name, s.state]), [
    ['api', 'taken-over'],
    ['pre', 'previewed'],
    ['web', 'exchanged+meshed'],
  ], 'only stale routes on api: taken over, nobody routes; the origin Service and db are not listed');
  const web = r.services.find((s) => s.name === 'web')!;
  assert.deepEqual(web.router, { pod: 'kt-router-web', phase: 'Running', ready: true });
  assert.deepEqual(web.originalSelector, { app: 'web' });
  const api = r.services.find((s) => s.name === 'api')!;
  assert.equal(api.originalSelector, undefined, 'a broken original selector is shown as unknown, not thrown');
  assert.equal(api.router?.ready, false);
  assert.deepEqual([r.services[1].owner, r.services[1].session], ['dave@d', 's2']);
});

test('buildStatus: a taken-over Service whose router pod is gone still shows, with no router', () => {
  const r = buildStatus({ pods: [], services: [{ metadata: { name: 'web', namespace: 'shop', annotations: { [ANNOTATIONS.originalSelector]: 'null' } } }], now: NOW, namespaces: 'all' });
  assert.equal(r.services.length, 1);
  assert.equal(r.services[0].state, 'taken-over');
  assert.equal(r.services[0].router, undefined);
  assert.equal(r.services[0].originalSelector, null, 'a Service that had no selector');
});

test('parseRoutes: stale only past the limit; a heartbeat in the future is fresh, an unreadable one stale; traffic kept only when it has ports', () => {
  const annotations = Object.fromEntries([
    route('edge', { since: ago(50), heartbeat: ago(STALE_AFTER_SECONDS) }),
    route('past', { since: ago(40), heartbeat: ago(STALE_AFTER_SECONDS + 1) }),
    route('ahead', { since: ago(30), heartbeat: ago(-20), traffic: { ports: [] } }),
    route('garbled', { since: ago(20), heartbeat: 'yesterday', traffic: { matched: 3 } }),
  ]);
  const routes = parseRoutes(annotations, NOW);
  assert.deepEqual(routes.map((r) => [r.session, r.stale, r.heartbeatAgeSeconds]), [
    ['edge', false, STALE_AFTER_SECONDS],
    ['past', true, STALE_AFTER_SECONDS + 1],
    ['ahead', false, 0],
    ['garbled', true, Number.POSITIVE_INFINITY],
  ]);
  assert.deepEqual(routes[2].traffic, { ports: [] });
  assert.equal('traffic' in routes[3], false, 'a traffic object without ports is not shown');
});

test('buildStatus: exchanged or meshed from the live routes only; a router counts for its own namespace only', () => {
  const router = (ns: string, target: string, routes: [string, string][]): PodLike => ({
    metadata: { name: `kt-router-${target}`, namespace: ns, labels: managed('router', { [LABELS.target]: target }), annotations: Object.fromEntries(routes) },
    status: { phase: 'Running' },
  });
  const takenOver = (ns: string, name: string): ServiceLike => ({ metadata: { name, namespace: ns, annotations: { [ANNOTATIONS.originalSelector]: `{"app":"${name}"}` } } });
  const pods = [
    router('shop', 'web', [route('x', { kind: 'exchange', since: ago(9), heartbeat: ago(1) }), route('m-old', { kind: 'mesh', since: ago(900), heartbeat: ago(900) })]),
    router('shop', 'api', [route('m', { kind: 'mesh', since: ago(9), heartbeat: ago(1) })]),
    router('lab', 'web', [route('m2', { kind: 'mesh', since: ago(9), heartbeat: ago(1) })]),
    // A router pod without a target label serves no Service.
    { metadata: { name: 'kt-router-x', namespace: 'shop', labels: managed('router'), annotations: Object.fromEntries([route('z', { kind: 'exchange', heartbeat: ago(1) })]) } },
  ];
  const services = [takenOver('shop', 'web'), takenOver('shop', 'api'), takenOver('lab', 'web'), takenOver('lab', 'db'),
    // Looks like a preview but is not ours: not listed.
    { metadata: { name: 'fake', namespace: 'shop', annotations: { [ANNOTATIONS.kind]: 'preview' } } }];
  const r = buildStatus({ pods, services, now: NOW, namespaces: 'all' });
  assert.deepEqual(r.services.map((s) => [`${s.namespace}/${s.name}`, s.state, s.router?.pod]), [
    ['lab/db', 'taken-over', undefined],
    ['lab/web', 'meshed', 'kt-router-web'],
    ['shop/api', 'meshed', 'kt-router-api'],
    ['shop/web', 'exchanged', 'kt-router-web'],
  ], 'sorted by namespace and name; the stale mesh on shop/web does not count');
  assert.deepEqual(r.services[3].routes.map((x) => x.session), ['m-old', 'x'], 'stale routes are still listed, oldest first');
  assert.equal(r.namespaces, 'all');
  assert.deepEqual(r.sessions, [], 'routers are not sessions');
});

test('buildStatus: sessions sort by namespace, then start; a pod without a kind annotation is shown by its role', () => {
  const shadow = (ns: string, name: string, since: string, kind?: string): PodLike => ({
    metadata: { name, namespace: ns, labels: managed('shadow'), annotations: { [ANNOTATIONS.since]: since, ...(kind ? { [ANNOTATIONS.kind]: kind } : {}) } },
  });
  const r = buildStatus({
    pods: [shadow('shop', 'b', ago(10), 'connect'), shadow('lab', 'c', ago(5), 'connect'), shadow('shop', 'a', ago(20))],
    services: [], now: NOW, namespaces: ['lab', 'shop'],
  });
  assert.deepEqual(r.sessions.map((s) => [s.namespace, s.pod, s.kind, s.phase, s.owner]), [
    ['lab', 'c', 'connect', 'Unknown', 'unknown'],
    ['shop', 'a', 'shadow', 'Unknown', 'unknown'],
    ['shop', 'b', 'connect', 'Unknown', 'unknown'],
  ]);
});
