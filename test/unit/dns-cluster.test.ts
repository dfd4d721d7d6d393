// The test cluster's DNS on real sockets: fed by the Store directly, and by
// list+watch against an API server, with objects changing during the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DecodedPacket } from 'dns-packet';
import { Store } from '../cluster/store.ts';
import { startClusterDns, storeSource, watchSource, type ClusterRecordSource } from '../cluster/dns/server.ts';
import { fill, service } from '../cluster/dns/fixtures.ts';
import { startFakeApi } from '../cluster/dns/fake-api.ts';
import { startFakeUpstream } from '../cluster/dns/fake-upstream.ts';
import { ask } from '../cluster/dns/client.ts';

const HOST = '127.0.0.1';
const rcode = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;
const addrs = (p: DecodedPacket): unknown[] => (p.answers ?? []).map((a) => (a as { data: unknown }).data);

/** Resolves when `pred` holds: checked now and after every change the source takes in (no timers). */
function until(source: ClusterRecordSource, pred: () => boolean): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise((resolve) => {
    const off = source.onSync(() => {
      if (pred()) {
        off();
        resolve();
      }
    });
  });
}

test('store source: records follow the store as Services come and go', async () => {
  const store = new Store();
  fill(store);
  const source = storeSource(store);
  const dns = await startClusterDns({ host: HOST, port: 0, source });
  const at = { host: HOST, port: dns.port };
  try {
    for (const transport of ['udp', 'tcp'] as const) {
      const r = await ask(at, 'web.shop.svc.cluster.local', 'A', { transport });
      assert.equal(rcode(r), 'NOERROR');
      assert.ok(r.flag_aa, 'authoritative');
      assert.ok(!r.flag_ra, 'no recursion without an upstream');
      assert.deepEqual(addrs(r), ['10.96.0.5']);
      assert.equal((r.answers?.[0] as { ttl?: number }).ttl, 5);
    }
    const before = await ask(at, 'late.shop.svc.cluster.local', 'A');
    assert.equal(rcode(before), 'NXDOMAIN');
    assert.equal(before.authorities?.[0].type, 'SOA');

    let syncs = 0;
    const off = source.onSync(() => syncs++);
    store.create('services', service('shop', 'late', { clusterIP: '10.96.0.77', ports: [{ name: 'http', port: 80 }] }));
    assert.equal(syncs, 1, 'the store delivers its event synchronously');
    assert.deepEqual(addrs(await ask(at, 'late.shop.svc.cluster.local', 'A', { transport: 'tcp' })), ['10.96.0.77']);
    store.delete('services', 'shop', 'late');
    assert.equal(syncs, 2);
    assert.equal(rcode(await ask(at, 'late.shop.svc.cluster.local', 'A')), 'NXDOMAIN');
    off();

    const refused = await ask(at, 'example.com', 'A');
    assert.equal(rcode(refused), 'REFUSED', 'outside the domain with no upstream');
  } finally {
    await dns.close();
    source.close();
  }
});

test('watch source: list, watch, and list again after a dropped watch and a 410 Gone', async () => {
  const store = new Store();
  fill(store);
  const api = await startFakeApi(store);
  const source = watchSource(api.url);
  const up = await startFakeUpstream({ 'real.example.com': [{ type: 'A', name: 'real.example.com', ttl: 30, data: '192.0.2.7' }] });
  const dns = await startClusterDns({ host: HOST, port: 0, source, upstream: { host: HOST, port: up.port } });
  const at = { host: HOST, port: dns.port };
  const has = (name: string) => () => source.services().some((s) => s.metadata.name === name);
  try {
    await source.ready;
    assert.deepEqual(addrs(await ask(at, 'db.shop.svc.cluster.local', 'A')), ['10.244.0.7', '10.244.0.8']);

    store.create('services', service('shop', 'late', { clusterIP: '10.96.0.77' }));
    await until(source, has('late'));
    assert.deepEqual(addrs(await ask(at, 'late.shop.svc.cluster.local', 'A')), ['10.96.0.77']);
    store.delete('services', 'shop', 'late');
    await until(source, () => !has('late')());
    assert.equal(rcode(await ask(at, 'late.shop.svc.cluster.local', 'A')), 'NXDOMAIN');
    assert.deepEqual(
      api.requests.filter((r) => r.includes('services')),
      ['list services', `watch services@${api.requests.find((r) => r.startsWith('watch services@'))?.split('@')[1]}`],
      'one list, then one watch carried the changes',
    );

    // The watch drops; the next watch is told 410 Gone; the source lists again twice.
    api.goneOnce('services');
    api.dropWatches();
    store.create('services', service('shop', 'after', { clusterIP: '10.96.0.88' }));
    const lists = (): number => api.requests.filter((r) => r === 'list services').length;
    await until(source, () => has('after')() && lists() >= 3);
    assert.deepEqual(addrs(await ask(at, 'after.shop.svc.cluster.local', 'A', { transport: 'tcp' })), ['10.96.0.88']);

    // Names outside the domain go to the upstream, with its RA.
    const ext = await ask(at, 'real.example.com', 'A');
    assert.deepEqual(addrs(ext), ['192.0.2.7']);
    assert.ok(ext.flag_ra && !ext.flag_aa);
    const inDomain = await ask(at, 'web.shop.svc.cluster.local', 'A');
    assert.ok(inDomain.flag_ra && inDomain.flag_aa, 'with an upstream, recursion is available');
  } finally {
    await dns.close();
    source.close();
    await up.close();
    await api.close();
  }
});

test('main.ts runs as a program: ready line, answers, exits 0 on SIGTERM', async () => {
  const store = new Store();
  fill(store);
  const api = await startFakeApi(store);
  const main = fileURLToPath(new URL('../cluster/dns/main.ts', import.meta.url));
  const child = spawn(process.execPath, [main, '--api', api.url, '--listen', `${HOST}:0`, '--domain', 'cluster.local'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const m = /^dns ready on 127\.0\.0\.1:(\d+)$/.exec(line);
    assert.ok(m, line);
    const r = await ask({ host: HOST, port: Number(m[1]) }, '_http._tcp.web.shop.svc.cluster.local', 'SRV');
    assert.deepEqual(addrs(r), [{ priority: 0, weight: 100, port: 80, target: 'web.shop.svc.cluster.local' }]);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await api.close();
  }
});
