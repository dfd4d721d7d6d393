// The laptop's DNS server of `connect --mode route` on real sockets: cluster
// names travel over one pipelined TCP stream to the proxy's forwarder (here
// a stand-in speaking the same framing), answers find their askers by id,
// a stream that dies is dialled again, and a silent forwarder costs SERVFAIL,
// not a hang. Names outside the cluster go to the old upstream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import * as packet from 'dns-packet';
import { FrameReader, frame } from '../../contract/dns/framing.ts';
import { startLocalDns } from '../../plugin/src/connect/cluster-dns.ts';
import { ask } from '../cluster/dns/client.ts';
import { startFakeUpstream } from '../cluster/dns/fake-upstream.ts';

interface Forwarder {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Most queries one connection carried. */
  maxPerConnection: number;
  sockets: Set<net.Socket>;
  /** When false, queries are read and never answered. */
  answering: boolean;
}

/** Answers every A query with 10.96.0.<n>, n the query's position on its connection. */
async function forwarder(t: TestContext): Promise<Forwarder> {
  const f: Forwarder = { port: 0, connections: 0, maxPerConnection: 0, sockets: new Set(), answering: true };
  const server = net.createServer((s) => {
    f.connections++;
    f.sockets.add(s);
    s.on('close', () => f.sockets.delete(s));
    let n = 0;
    const reader = new FrameReader((m) => {
      n++;
      f.maxPerConnection = Math.max(f.maxPerConnection, n);
      if (!f.answering) return;
      const q = packet.decode(Buffer.from(m));
      const question = q.questions?.[0];
      s.write(frame(packet.encode({
        type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
        questions: q.questions, answers: [{ type: 'A', name: question?.name ?? '', ttl: 5, data: `10.96.0.${n % 250}` }],
      })));
    });
    s.on('data', (d: Buffer) => reader.push(d));
    s.on('error', () => s.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  f.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const s of f.sockets) s.destroy();
    server.close();
  });
  return f;
}

async function localDns(t: TestContext, f: Forwarder, upstreams: string[] = [], timeoutMs = 5000) {
  const dns = await startLocalDns({
    host: '127.0.0.1',
    port: 0,
    dialCluster: async () => {
      const s = net.connect(f.port, '127.0.0.1');
      await once(s, 'connect');
      return s;
    },
    upstreams,
    isClusterName: (n) => n.endsWith('.cluster.local'),
    timeoutMs,
  });
  t.after(() => dns.close());
  return { host: dns.host, port: dns.port };
}

test('cluster names share one pipelined stream; every asker gets its own answer under its own id', async (t) => {
  const f = await forwarder(t);
  const dns = await localDns(t, f);
  const names = Array.from({ length: 40 }, (_, i) => `svc${i}.shop.svc.cluster.local`);
  const answers = await Promise.all(names.map((n) => ask(dns, n, 'A')));
  for (const [i, a] of answers.entries()) {
    assert.equal(a.rcode, 'NOERROR');
    assert.equal(a.questions?.[0]?.name, names[i], 'the answer is to the question asked');
  }
  assert.equal(f.connections, 1, 'one stream for all of them');
  assert.equal(f.maxPerConnection, 40);
});

test('a stream the forwarder closes is dialled again on the next query', async (t) => {
  const f = await forwarder(t);
  const dns = await localDns(t, f);
  assert.equal((await ask(dns, 'web.shop.svc.cluster.local', 'A')).rcode, 'NOERROR');
  const [s] = f.sockets;
  const closed = once(s, 'close');
  s.end();
  await closed;
  assert.equal((await ask(dns, 'web.shop.svc.cluster.local', 'A')).rcode, 'NOERROR');
  assert.equal(f.connections, 2);
});

test('a forwarder that never answers costs SERVFAIL after the timeout, then a fresh stream', async (t) => {
  const f = await forwarder(t);
  const dns = await localDns(t, f, [], 300);
  f.answering = false;
  assert.equal((await ask(dns, 'web.shop.svc.cluster.local', 'A')).rcode, 'SERVFAIL');
  f.answering = true;
  assert.equal((await ask(dns, 'web.shop.svc.cluster.local', 'A')).rcode, 'NOERROR');
  assert.equal(f.connections, 2, 'the stuck stream was replaced');
});

test('other names go to the previous upstream, not through the tunnel', async (t) => {
  const f = await forwarder(t);
  // The local server sends other names to its upstreams on port 53: a loopback address of our own.
  const up = await startFakeUpstream({ 'example.org': [{ type: 'A', name: 'example.org', ttl: 60, data: '192.0.2.7' }] }, { host: '127.77.0.1', port: 53 });
  t.after(() => up.close());
  const dns = await localDns(t, f, ['127.77.0.1']);
  const a = await ask(dns, 'example.org', 'A');
  assert.equal(a.rcode, 'NOERROR');
  assert.deepEqual(a.answers?.map((x) => (x as { data: unknown }).data), ['192.0.2.7']);
  assert.deepEqual(up.asked, ['example.org A udp']);
  assert.equal(f.connections, 0, 'nothing went through the tunnel');
});
