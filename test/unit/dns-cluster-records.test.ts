// The cluster DNS's record logic, without sockets, over a fake source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer } from 'dns-packet';
import { resolveCluster, reverseIp, type ClusterView } from '../cluster/dns/records.ts';
import type { Endpoints, Pod, Service } from '../cluster/dns/source.ts';
import { OBJECTS } from '../cluster/dns/fixtures.ts';

const view: ClusterView = {
  services: () => OBJECTS.filter((o) => o.resource === 'services').map((o) => o.obj as unknown as Service),
  endpoints: (ns, name) => OBJECTS.find((o) => o.resource === 'endpoints' && o.obj.metadata.namespace === ns && o.obj.metadata.name === name)?.obj as unknown as Endpoints | undefined,
  pods: () => OBJECTS.filter((o) => o.resource === 'pods').map((o) => o.obj as unknown as Pod),
};
const D = 'cluster.local';
const data = (rrs: Answer[] | undefined): unknown[] => (rrs ?? []).map((a) => [a.name, a.type, (a as { data?: unknown }).data]);

test('A for a ClusterIP Service, AAAA only when it has an IPv6 ClusterIP', () => {
  assert.deepEqual(data(resolveCluster('web.shop.svc.cluster.local', 'A', view, D)?.answers), [['web.shop.svc.cluster.local', 'A', '10.96.0.5']]);
  const aaaa = resolveCluster('web.shop.svc.cluster.local', 'AAAA', view, D);
  assert.equal(aaaa?.rcode, 'NOERROR');
  assert.equal(aaaa?.answers.length, 0);
  assert.equal(aaaa?.authorities[0].type, 'SOA');
  assert.deepEqual(data(resolveCluster('Dual.Shop.svc.cluster.local.', 'AAAA', view, D)?.answers), [['Dual.Shop.svc.cluster.local', 'AAAA', 'fd00:96::6']], 'owner keeps the asked case');
});

test('headless Service: one A per ready address; endpoint names by hostname or dashed address', () => {
  assert.deepEqual(data(resolveCluster('db.shop.svc.cluster.local', 'A', view, D)?.answers), [
    ['db.shop.svc.cluster.local', 'A', '10.244.0.7'],
    ['db.shop.svc.cluster.local', 'A', '10.244.0.8'],
  ]);
  assert.deepEqual(data(resolveCluster('db-0.db.shop.svc.cluster.local', 'A', view, D)?.answers), [['db-0.db.shop.svc.cluster.local', 'A', '10.244.0.7']]);
  assert.deepEqual(data(resolveCluster('10-244-0-8.db.shop.svc.cluster.local', 'A', view, D)?.answers), [['10-244-0-8.db.shop.svc.cluster.local', 'A', '10.244.0.8']]);
  assert.equal(resolveCluster('db-2.db.shop.svc.cluster.local', 'A', view, D)?.rcode, 'NXDOMAIN', 'not-ready addresses are not published');
});

test('SRV for named ports: the Service name for ClusterIP, each endpoint for headless', () => {
  const web = resolveCluster('_http._tcp.web.shop.svc.cluster.local', 'SRV', view, D);
  assert.deepEqual(data(web?.answers), [['_http._tcp.web.shop.svc.cluster.local', 'SRV', { priority: 0, weight: 100, port: 80, target: 'web.shop.svc.cluster.local' }]]);
  assert.deepEqual(data(web?.additionals), [['web.shop.svc.cluster.local', 'A', '10.96.0.5']]);
  assert.equal(resolveCluster('_dns._udp.web.shop.svc.cluster.local', 'SRV', view, D)?.answers.length, 1);
  assert.equal(resolveCluster('_dns._tcp.web.shop.svc.cluster.local', 'SRV', view, D)?.rcode, 'NXDOMAIN', 'protocol must match');
  const db = resolveCluster('_pg._tcp.db.shop.svc.cluster.local', 'SRV', view, D);
  assert.deepEqual(db?.answers.map((a) => (a as { data: { target: string } }).data.target), ['db-0.db.shop.svc.cluster.local', '10-244-0-8.db.shop.svc.cluster.local']);
  assert.equal(db?.additionals.length, 2);
  assert.deepEqual(resolveCluster('web.shop.svc.cluster.local', 'SRV', view, D)?.answers.map((a) => (a as { data: { port: number } }).data.port), [80, 53], 'SRV on the Service name lists its named ports');
});

test('pods: verified dashed names; PTR for ClusterIPs, headless endpoints and pods', () => {
  assert.deepEqual(data(resolveCluster('10-244-0-4.shop.pod.cluster.local', 'A', view, D)?.answers), [['10-244-0-4.shop.pod.cluster.local', 'A', '10.244.0.4']]);
  assert.equal(resolveCluster('10-244-0-99.shop.pod.cluster.local', 'A', view, D)?.rcode, 'NXDOMAIN');
  assert.equal(resolveCluster('10-244-0-4.other.pod.cluster.local', 'A', view, D)?.rcode, 'NXDOMAIN');
  assert.deepEqual(data(resolveCluster('5.0.96.10.in-addr.arpa', 'PTR', view, D)?.answers), [['5.0.96.10.in-addr.arpa', 'PTR', 'web.shop.svc.cluster.local']]);
  assert.deepEqual(data(resolveCluster('7.0.244.10.in-addr.arpa', 'PTR', view, D)?.answers), [['7.0.244.10.in-addr.arpa', 'PTR', 'db-0.db.shop.svc.cluster.local']]);
  assert.deepEqual(data(resolveCluster('4.0.244.10.in-addr.arpa', 'PTR', view, D)?.answers), [['4.0.244.10.in-addr.arpa', 'PTR', '10-244-0-4.shop.pod.cluster.local']]);
  assert.equal(resolveCluster('9.9.9.9.in-addr.arpa', 'PTR', view, D), null, 'unknown addresses are not ours');
  assert.equal(reverseIp('6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa'), 'fd00:0096:0000:0000:0000:0000:0000:0006');
  assert.equal(resolveCluster('6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa', 'PTR', view, D)?.answers.length, 1);
});

test('ExternalName is a CNAME; unknown names are NXDOMAIN with the SOA; empty non-terminals are NODATA; outside is null', () => {
  assert.deepEqual(data(resolveCluster('ext.shop.svc.cluster.local', 'A', view, D)?.answers), [['ext.shop.svc.cluster.local', 'CNAME', 'real.example.com']]);
  for (const n of ['nope.shop.svc.cluster.local', 'web.nons.svc.cluster.local', 'nons.svc.cluster.local', 'x.cluster.local', 'a.b.c.d.e.svc.cluster.local']) {
    const r = resolveCluster(n, 'A', view, D);
    assert.equal(r?.rcode, 'NXDOMAIN', n);
    assert.deepEqual(r?.authorities.map((a) => [a.name, a.type]), [['cluster.local', 'SOA']]);
  }
  for (const n of ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'pod.cluster.local']) assert.deepEqual([resolveCluster(n, 'A', view, D)?.rcode, resolveCluster(n, 'A', view, D)?.answers.length], ['NOERROR', 0], n);
  assert.equal(resolveCluster('cluster.local', 'SOA', view, D)?.answers[0].type, 'SOA');
  assert.equal(resolveCluster('example.com', 'A', view, D), null);
  assert.equal(resolveCluster('notcluster.local', 'A', view, D), null);
  assert.deepEqual(data(resolveCluster('web.shop.svc.corp.internal', 'A', view, 'corp.internal')?.answers), [['web.shop.svc.corp.internal', 'A', '10.96.0.5']], 'another domain');
  assert.equal(resolveCluster('web.shop.svc.cluster.local', 'A', view, 'corp.internal'), null);
});
