// The proxy's DNS forwarder on real sockets, against a scripted upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { startDnsForwarder, type DnsForwarder } from '../../proxy-image/src/dns/index.ts';
import { FrameReader, frame } from '../../contract/dns/framing.ts';
import { startFakeUpstream, type FakeUpstream, type ZoneTable } from '../cluster/dns/fake-upstream.ts';
import { ask, rawQuery } from '../cluster/dns/client.ts';

const HOST = '127.0.0.1';
const SEARCH = ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];
const many: Answer[] = Array.from({ length: 60 }, (_, i) => ({ type: 'A', name: 'big.example.com', ttl: 5, data: `192.0.2.${i + 1}` }));
const ZONE: ZoneTable = {
  'web.shop.svc.cluster.local': [{ type: 'A', name: 'web.shop.svc.cluster.local', ttl: 5, data: '10.0.0.5' }] as Answer[],
  'real.example.com': [
    { type: 'A', name: 'real.example.com', ttl: 5, data: '192.0.2.7' },
    // HTTPS (type 65, RFC 9460): priority 1, target ".", alpn="h2". dns-packet has no codec for it.
    { type: 'UNKNOWN_65', name: 'real.example.com', ttl: 5, data: Buffer.from('00010000010003026832', 'hex') } as unknown as Answer,
  ],
  'big.example.com': many,
  'many.shop.svc.cluster.local': many.map((a) => ({ ...a, name: 'many.shop.svc.cluster.local' })),
};

let up: FakeUpstream;
let fw: DnsForwarder;
let tmp: string;
const target = (): { host: string; port: number } => ({ host: HOST, port: fw.port });
const rcode = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'kt-dns-'));
  // Search list and ndots come from a resolv.conf, as in the pod; only the
  // name server is overridden, because the real one would be on port 53.
  await writeFile(join(tmp, 'resolv.conf'), `nameserver 10.255.255.1\nsearch ${SEARCH.join(' ')}\noptions ndots:5\n`);
  up = await startFakeUpstream(ZONE);
  fw = await startDnsForwarder({ host: HOST, port: 0, resolvConf: join(tmp, 'resolv.conf'), upstreams: [{ host: HOST, port: up.port }] });
});

after(async () => {
  await fw.close();
  await up.close();
  await rm(tmp, { recursive: true, force: true });
});

test('short names are expanded with the search list and answered under the asked name', async () => {
  for (const name of ['web', 'web.shop', 'web.shop.svc.cluster.local']) {
    for (const transport of ['udp', 'tcp'] as const) {
      const r = await ask(target(), name, 'A', { transport });
      assert.equal(rcode(r), 'NOERROR', `${name} over ${transport}`);
      assert.deepEqual(r.questions?.map((q) => q.name), [name]);
      assert.deepEqual(r.answers?.map((a) => [a.name, a.type, (a as { data: unknown }).data]), [[name, 'A', '10.0.0.5']], `${name} over ${transport}`);
      assert.ok(r.flag_ra, 'RA as the upstream set it');
    }
  }
});

test('the search order is glibc\'s: suffixes first for short names, stopping at the first answer', async () => {
  up.asked.length = 0;
  await ask(target(), 'web.shop', 'A');
  assert.deepEqual(up.asked, ['web.shop.shop.svc.cluster.local A udp', 'web.shop.svc.cluster.local A udp']);
});

test('AAAA for a name with only A records is NODATA, not NXDOMAIN; unknown names are NXDOMAIN', async () => {
  const nodata = await ask(target(), 'web', 'AAAA');
  assert.equal(rcode(nodata), 'NOERROR');
  assert.equal(nodata.answers?.length, 0);
  const nx = await ask(target(), 'nope', 'A');
  assert.equal(rcode(nx), 'NXDOMAIN');
  assert.deepEqual(nx.questions?.map((q) => q.name), ['nope']);
});

test('without expansion the upstream bytes come back untouched except the ID (EDNS cookie, HTTPS records)', async () => {
  const query = (id: number): Buffer =>
    packet.encode({
      type: 'query',
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: 'real.example.com.', type: 'UNKNOWN_65' as never }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 10, data: Buffer.from('clientck') } as never] }],
    });
  // ndots 5: real.example.com has fewer dots, so make the forwarder see it as-is with a lower ndots one.
  const fw2 = await startDnsForwarder({ host: HOST, port: 0, upstreams: [{ host: HOST, port: up.port }], search: SEARCH, ndots: 2 });
  try {
    const direct = await rawQuery({ host: HOST, port: up.port }, query(0x4242));
    const via = await rawQuery({ host: HOST, port: fw2.port }, query(0x4242));
    assert.deepEqual(via, direct);
    const opt = packet.decode(via).additionals?.find((a) => a.type === 'OPT') as { options: { code: number; data: Buffer }[] };
    assert.equal(opt.options[0].data.toString(), 'clientcksrvcooki', 'the client cookie reached the upstream and its answer came back');
  } finally {
    await fw2.close();
  }
});

test('an answer too big for UDP comes back truncated; the client retries over TCP and gets all of it', async () => {
  const udp = await ask(target(), 'big.example.com', 'A');
  assert.ok(udp.flag_tc);
  assert.equal(udp.answers?.length, 0);
  up.asked.length = 0;
  const tcp = await ask(target(), 'big.example.com', 'A', { transport: 'tcp' });
  assert.ok(!tcp.flag_tc);
  assert.equal(tcp.answers?.length, 60);
  assert.ok(tcp.answers?.every((a) => a.name === 'big.example.com'));
  assert.ok(up.asked.every((a) => a.endsWith(' tcp')), 'the TCP side asks upstream over TCP');
});

test('a truncated answer for an expanded name ends the search with TC; over TCP the client gets it all, renamed', async () => {
  const udp = await ask(target(), 'many', 'A');
  assert.ok(udp.flag_tc);
  assert.deepEqual(udp.questions?.map((q) => q.name), ['many']);
  const tcp = await ask(target(), 'many', 'A', { transport: 'tcp' });
  assert.ok(!tcp.flag_tc);
  assert.equal(tcp.answers?.length, 60);
  assert.ok(tcp.answers?.every((a) => a.name === 'many'));
});

test('TCP: many queries pipelined on one connection all get their answers (RFC 7766)', async () => {
  const sock = connect(target());
  const ids = Array.from({ length: 20 }, (_, i) => 1000 + i);
  const got = new Map<number, DecodedPacket>();
  const all = new Promise<void>((resolve, reject) => {
    const reader = new FrameReader((m) => {
      const p = packet.decode(Buffer.from(m));
      got.set(p.id ?? -1, p);
      if (got.size === ids.length) resolve();
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('error', reject);
  });
  sock.write(Buffer.concat(ids.map((id, i) => frame(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name: i % 2 ? 'web' : 'real.example.com', type: 'A' }] })))));
  await all;
  sock.destroy();
  for (const [i, id] of ids.entries()) {
    const p = got.get(id);
    assert.ok(p, `answer for ${id}`);
    assert.equal(p.questions?.[0].name, i % 2 ? 'web' : 'real.example.com');
    assert.equal(p.answers?.length, 1);
  }
});

test('a silent name server is skipped for the next one, and then avoided', async () => {
  const silent = await startFakeUpstream({}, { silent: true });
  const f = await startDnsForwarder({ host: HOST, port: 0, upstreams: [{ host: HOST, port: silent.port }, { host: HOST, port: up.port }], search: [], ndots: 1, timeoutMs: 150 });
  try {
    const r = await ask({ host: HOST, port: f.port }, 'real.example.com', 'A');
    assert.equal(r.answers?.length, 1);
    assert.equal(silent.asked.length, 1);
    const r2 = await ask({ host: HOST, port: f.port }, 'real.example.com', 'A', { transport: 'tcp' });
    assert.equal(r2.answers?.length, 1);
    assert.equal(silent.asked.length, 1, 'the next query starts at the server that answered');
  } finally {
    await f.close();
    await silent.close();
  }
});

test('a name server with nothing listening is skipped at once (ICMP port unreachable), not after the timeout', async () => {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, HOST, r));
  const deadPort = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  // A minute of timeout: an answer within the test's time comes from the fast failover.
  const f = await startDnsForwarder({ host: HOST, port: 0, upstreams: [{ host: HOST, port: deadPort }, { host: HOST, port: up.port }], search: [], ndots: 1, timeoutMs: 60_000 });
  try {
    const r = await ask({ host: HOST, port: f.port }, 'real.example.com', 'A');
    assert.equal(r.answers?.length, 1);
  } finally {
    await f.close();
  }
});

test('no upstream answer → SERVFAIL after the timeout; beyond the pending cap → SERVFAIL at once', async () => {
  const silent = await startFakeUpstream({}, { silent: true });
  const quick = await startDnsForwarder({ host: HOST, port: 0, upstreams: [{ host: HOST, port: silent.port }], search: [], ndots: 1, timeoutMs: 50 });
  // A minute of timeout: answers that come back during the test come from the cap, not the timer.
  const capped = await startDnsForwarder({ host: HOST, port: 0, upstreams: [{ host: HOST, port: silent.port }], search: [], ndots: 1, timeoutMs: 60_000, maxPending: 4 });
  const client = createSocket('udp4');
  try {
    const r = await ask({ host: HOST, port: quick.port }, 'x.example', 'A');
    assert.equal(rcode(r), 'SERVFAIL');
    assert.deepEqual(r.questions?.map((q) => q.name), ['x.example']);

    const replies: DecodedPacket[] = [];
    const sixBack = new Promise<void>((resolve) =>
      client.on('message', (m) => {
        replies.push(packet.decode(m));
        if (replies.length === 6) resolve();
      }),
    );
    for (let id = 1; id <= 10; id++) client.send(packet.encode({ type: 'query', id, questions: [{ name: `n${id}.example`, type: 'A' }] }), capped.port, HOST);
    await sixBack;
    assert.ok(replies.every((p) => rcode(p) === 'SERVFAIL'));
    assert.equal(new Set(replies.map((p) => p.id)).size, 6);
  } finally {
    client.close();
    await quick.close();
    await capped.close();
    await silent.close();
  }
});
