// Thousands of malformed and mutated queries must neither crash the
// forwarder nor get anything but FORMERR (or silence) back when they are
// not well-formed; it keeps answering good queries afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { startDnsForwarder, type DnsForwarder } from '../../proxy-image/src/dns/index.ts';
import { FrameReader, frame } from '../../contract/dns/framing.ts';
import { startFakeUpstream, type FakeUpstream } from '../cluster/dns/fake-upstream.ts';
import { ask, rawQuery } from '../cluster/dns/client.ts';
import { Store } from '../cluster/store.ts';
import { startClusterDns, storeSource } from '../cluster/dns/server.ts';
import { fill } from '../cluster/dns/fixtures.ts';

const HOST = '127.0.0.1';
let up: FakeUpstream;
let fw: DnsForwarder;
/** Exceptions the forwarder's handler let through to the server's last-resort catch. */
const forwarderFailures: string[] = [];
const target = (): { host: string; port: number } => ({ host: HOST, port: fw.port });
const rcode = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;

before(async () => {
  up = await startFakeUpstream({ 'web.shop.svc.cluster.local': [{ type: 'A', name: 'web.shop.svc.cluster.local', ttl: 5, data: '10.0.0.5' }] as Answer[] });
  fw = await startDnsForwarder({
    host: HOST,
    port: 0,
    upstreams: [{ host: HOST, port: up.port }],
    search: ['shop.svc.cluster.local', 'svc.cluster.local'],
    ndots: 5,
    timeoutMs: 500,
    debug: (m) => m.startsWith('dns handler failed') && forwarderFailures.push(m),
  });
});

after(async () => {
  await fw.close();
  await up.close();
});

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seeds = [
  packet.encode({ type: 'query', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ name: 'web', type: 'A' }] }),
  packet.encode({ type: 'query', id: 2, flags: packet.RECURSION_DESIRED, questions: [{ name: 'web.shop.svc.cluster.local', type: 'SRV' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 10, data: Buffer.from('cookie!!') } as never] }] }),
  packet.encode({ type: 'query', id: 3, questions: [{ name: '5.0.0.10.in-addr.arpa', type: 'PTR' }] }),
];

function header(id: number, counts: [number, number, number, number]): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return h;
}

test('hand-made malformed queries get FORMERR with their ID, or no answer', async () => {
  const q = (id: number, body: number[], counts: [number, number, number, number] = [1, 0, 0, 0]): Buffer => Buffer.concat([header(id, counts), Buffer.from(body)]);
  const formerr: [string, Buffer][] = [
    ['label longer than the message', q(11, [40, 97, 98, 0, 0, 1, 0, 1])],
    ['reserved label type', q(12, [0x41, 97, 0, 0, 1, 0, 1])],
    ['pointer to itself', q(13, [0xc0, 12, 0, 1, 0, 1])],
    ['two pointers pointing at each other', q(14, [0xc0, 14, 0xc0, 12, 0, 1, 0, 1])],
    ['forward pointer', q(15, [0xc0, 40, 0, 1, 0, 1])],
    ['huge counts', q(16, [3, 119, 101, 98, 0, 0, 1, 0, 1], [1, 0xffff, 0xffff, 0xffff])],
    ['no question', header(17, [0, 0, 0, 0])],
    ['two questions', q(18, [1, 97, 0, 0, 1, 0, 1, 1, 98, 0, 0, 1, 0, 1], [2, 0, 0, 0])],
    ['question cut short', q(19, [3, 119, 101, 98, 0, 0])],
    ['name longer than 255 octets', q(20, [...Array.from({ length: 5 }, () => [63, ...Array(63).fill(97)]).flat(), 0, 0, 1, 0, 1])],
  ];
  for (const [what, msg] of formerr) {
    for (const transport of ['udp', 'tcp'] as const) {
      const r = packet.decode(await rawQuery(target(), msg, transport));
      assert.equal(r.id, msg.readUInt16BE(0), what);
      assert.equal(rcode(r), 'FORMERR', `${what} over ${transport}`);
      assert.ok(r.flag_qr);
    }
  }
});

test('messages without a header, and responses, are not answered; the server keeps serving', async () => {
  const sock = createSocket('udp4');
  const got: DecodedPacket[] = [];
  const sentinel = new Promise<void>((resolve) =>
    sock.on('message', (m) => {
      const p = packet.decode(m);
      got.push(p);
      if (p.id === 0xbeef) resolve();
    }),
  );
  sock.send(Buffer.alloc(0), fw.port, HOST);
  sock.send(Buffer.from([1, 2, 3]), fw.port, HOST);
  sock.send(Buffer.alloc(11, 0xff), fw.port, HOST);
  sock.send(packet.encode({ type: 'response', id: 0x1111, questions: [{ name: 'web', type: 'A' }] }), fw.port, HOST);
  sock.send(packet.encode({ type: 'query', id: 0xbeef, flags: packet.RECURSION_DESIRED, questions: [{ name: 'web', type: 'A' }] }), fw.port, HOST);
  await sentinel;
  sock.close();
  assert.deepEqual(got.map((p) => p.id), [0xbeef]);
});

/** Send 3000 mutated queries to a server, then check it still answers `name`. */
async function fuzz(port: number, name: string): Promise<void> {
  const at = { host: HOST, port };
  const rand = rng(0x5eed);
  const int = (n: number): number => Math.floor(rand() * n);
  const mutate = (i: number): Buffer => {
    const seed = Buffer.from(seeds[i % seeds.length]);
    switch (i % 6) {
      case 0:
        return seed.subarray(0, int(seed.length));
      case 1: {
        for (let k = 0; k <= int(8); k++) seed[int(seed.length)] ^= 1 << int(8);
        return seed;
      }
      case 2:
        return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
      case 3:
        seed[12 + int(seed.length - 12)] = int(256);
        return seed;
      case 4:
        seed.writeUInt16BE(int(0x10000), 4 + 2 * int(4));
        return seed;
      default: {
        // A pointer somewhere in the body, anywhere.
        const at = 12 + int(seed.length - 13);
        seed[at] = 0xc0 | int(0x40);
        seed[at + 1] = int(256);
        return seed;
      }
    }
  };
  const msgs = Array.from({ length: 3000 }, (_, i) => {
    const m = mutate(i);
    if (m.length >= 2) m.writeUInt16BE(i + 1, 0);
    return m;
  });

  // UDP: in batches, each closed by a good query whose answer paces the next batch.
  const sock = createSocket('udp4');
  const replies: Buffer[] = [];
  let waiting: { id: number; resolve(): void } | undefined;
  sock.on('message', (m) => {
    replies.push(m);
    if (waiting && m.readUInt16BE(0) === waiting.id) waiting.resolve();
  });
  for (let b = 0; b < msgs.length; b += 100) {
    for (const m of msgs.slice(b, b + 100)) sock.send(m, port, HOST);
    const id = 0xf000 + b / 100;
    await new Promise<void>((resolve) => {
      waiting = { id, resolve };
      sock.send(packet.encode({ type: 'query', id, questions: [{ name, type: 'A' }] }), port, HOST);
    });
  }
  sock.close();
  for (const r of replies) {
    assert.ok(r.length >= 12, 'every reply has a header');
    assert.ok(r[2] & 0x80, 'every reply is a response');
    const id = r.readUInt16BE(0);
    assert.ok(id >= 0xf000 || (id >= 1 && id <= msgs.length), `reply id ${id} was sent`);
  }
  const sentinels = replies.filter((r) => r.readUInt16BE(0) >= 0xf000).map((r) => packet.decode(r));
  assert.equal(sentinels.length, 30);
  assert.ok(sentinels.every((p) => p.answers?.[0]?.type === 'A'));
  assert.ok(replies.some((r) => (r[3] & 0xf) === 1), 'some mutated queries got FORMERR');

  // TCP: the same bytes as frames on one connection, then a good query.
  const tcp = connect(at);
  const done = new Promise<DecodedPacket>((resolve, reject) => {
    const reader = new FrameReader((m) => {
      if (m.length >= 2 && m.readUInt16BE(0) === 0xabcd) resolve(packet.decode(Buffer.from(m)));
    });
    tcp.on('data', (d: Buffer) => reader.push(d));
    tcp.on('error', reject);
    tcp.on('close', () => reject(new Error('the forwarder closed the connection')));
  });
  for (let b = 0; b < 600; b += 100) tcp.write(Buffer.concat(msgs.slice(b, b + 100).map(frame)));
  tcp.write(frame(packet.encode({ type: 'query', id: 0xabcd, questions: [{ name, type: 'A' }] })));
  const last = await done;
  tcp.destroy();
  assert.equal(last.answers?.[0]?.name, name);

  const after = await ask(at, name, 'A', { transport: 'tcp' });
  assert.equal(after.answers?.length, 1, 'still serving');
}

test('3000 mutated queries (truncation, bit flips, random bytes, bad lengths, counts) to the forwarder, over UDP and TCP', async () => {
  await fuzz(fw.port, 'web');
  assert.deepEqual(forwarderFailures, [], 'every query is answered by design, not by the last-resort catch');
});

test('3000 mutated queries to the cluster DNS, over UDP and TCP', async () => {
  const store = new Store();
  fill(store);
  const source = storeSource(store);
  const failures: string[] = [];
  const dns = await startClusterDns({ host: HOST, port: 0, source, debug: (m) => m.startsWith('dns handler failed') && failures.push(m) });
  try {
    await fuzz(dns.port, 'web.shop.svc.cluster.local');
    assert.deepEqual(failures, [], 'every query is answered by design, not by the last-resort catch');
  } finally {
    await dns.close();
    source.close();
  }
});
