// The forwarder's decisions without sockets: resolv.conf, search order,
// which try's answer wins, and how an expanded answer is renamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as packet from 'dns-packet';
import type { Answer } from 'dns-packet';
import { parseResolvConf } from '../../proxy-image/src/dns/resolvconf.ts';
import { classify, rewriteAnswer, searchCandidates, settle, withQuestionName } from '../../proxy-image/src/dns/search.ts';
import { errorReply, parseQuery, questionEndOffset, readQuery } from '../../proxy-image/src/dns/wire.ts';
import { encodeName, expandedName, queryFor, renameAnswer } from '../../proxy-image/src/dns/rename.ts';

const KUBE = { search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 };

test('resolv.conf: a kubelet-written file', () => {
  const conf = parseResolvConf(
    ['# written by kubelet', 'search shop.svc.cluster.local svc.cluster.local cluster.local', 'nameserver 10.96.0.10', 'options ndots:5 timeout:3 attempts:4 rotate', ''].join('\n'),
  );
  assert.deepEqual(conf, {
    nameservers: [{ host: '10.96.0.10', port: 53 }],
    search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    ndots: 5,
    timeoutMs: 3000,
    attempts: 4,
    rotate: true,
  });
});

test('resolv.conf: glibc limits, comments, domain vs search, defaults', () => {
  const conf = parseResolvConf(
    ['; comment', 'nameserver 10.0.0.1', 'nameserver fe80::1%eth0', 'nameserver not-an-ip', 'nameserver 10.0.0.3', 'nameserver 10.0.0.4', 'search a.example b.example.', 'domain Corp.Example', 'options ndots:99 timeout:0 attempts:9 bogus'].join('\n'),
  );
  assert.deepEqual(conf.nameservers.map((n) => n.host), ['10.0.0.1', 'fe80::1', '10.0.0.3']);
  assert.deepEqual(conf.search, ['corp.example'], 'the last of domain/search wins');
  assert.equal(conf.ndots, 15);
  assert.equal(conf.timeoutMs, 5000, 'timeout:0 is ignored');
  assert.equal(conf.attempts, 5);
  const empty = parseResolvConf('');
  assert.deepEqual(empty.nameservers, [{ host: '127.0.0.1', port: 53 }]);
  assert.equal(empty.ndots, 1);
  assert.deepEqual(empty.search, []);
});

test('search order: fewer dots than ndots → suffixes first, then as is', () => {
  assert.deepEqual(searchCandidates('web', KUBE), ['web.shop.svc.cluster.local', 'web.svc.cluster.local', 'web.cluster.local', 'web']);
  assert.deepEqual(searchCandidates('web.shop', KUBE), ['web.shop.shop.svc.cluster.local', 'web.shop.svc.cluster.local', 'web.shop.cluster.local', 'web.shop']);
  // Already under a search domain: as it is first (glibc would try three NXDOMAIN names before it).
  assert.deepEqual(searchCandidates('web.shop.svc.cluster.local', KUBE)[0], 'web.shop.svc.cluster.local');
  assert.deepEqual(searchCandidates('WEB.Shop.SVC.cluster.local.', KUBE)[0], 'WEB.Shop.SVC.cluster.local');
  // Not under one (a pod name with fewer dots than ndots): the search list first, as glibc does.
  assert.deepEqual(searchCandidates('db.example', KUBE)[0], 'db.example.shop.svc.cluster.local');
});

test('search order: enough dots → as is first; reverse names, root and no search list are not expanded', () => {
  assert.deepEqual(searchCandidates('a.b.c', { search: ['x', 'y'], ndots: 2 }), ['a.b.c', 'a.b.c.x', 'a.b.c.y']);
  assert.deepEqual(searchCandidates('web.', { search: ['x'], ndots: 1 }), ['web.x', 'web']);
  assert.deepEqual(searchCandidates('5.0.96.10.in-addr.arpa', KUBE), ['5.0.96.10.in-addr.arpa']);
  assert.deepEqual(searchCandidates('1.0.ip6.ARPA', KUBE), ['1.0.ip6.ARPA']);
  assert.deepEqual(searchCandidates('', KUBE), ['']);
  assert.deepEqual(searchCandidates('web', { search: [], ndots: 5 }), ['web']);
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(50)}`;
  assert.deepEqual(searchCandidates(long, KUBE), [long], 'expansions longer than 253 characters are skipped');
});

test('settle: first answer wins; NODATA beats NXDOMAIN; SERVFAIL beats NXDOMAIN; final errors stop', () => {
  assert.equal(classify(0, 1, false), 'answer');
  assert.equal(classify(0, 0, false), 'nodata');
  assert.equal(classify(3, 0, false), 'nxdomain');
  assert.equal(classify(2, 0, false), 'servfail');
  assert.equal(classify(5, 0, false), 'final');
  assert.equal(classify(0, 1, true), 'final', 'truncated ends the search');
  assert.equal(settle([], 4), -1);
  assert.equal(settle(['nxdomain'], 4), -1);
  assert.equal(settle(['nxdomain', 'answer'], 4), 1);
  assert.equal(settle(['nxdomain', 'final'], 4), 1);
  assert.equal(settle(['nodata', 'nxdomain', 'nxdomain', 'nxdomain'], 4), 0);
  assert.equal(settle(['nxdomain', 'servfail', 'nodata', 'nxdomain'], 4), 2);
  assert.equal(settle(['nxdomain', 'servfail', 'nxdomain', 'nxdomain'], 4), 1);
  assert.equal(settle(['nxdomain', 'nxdomain', 'nxdomain', 'nxdomain'], 4), 3);
});

test('rewriteAnswer: owners of the expanded name become the asked name; the rest of the chain stays', () => {
  const resp = packet.decode(
    packet.encode({
      type: 'response',
      id: 7,
      flags: packet.RECURSION_AVAILABLE | packet.AUTHORITATIVE_ANSWER,
      questions: [{ name: 'ext.shop.svc.cluster.local', type: 'A' }],
      answers: [
        { type: 'CNAME', name: 'ext.shop.svc.cluster.local', ttl: 5, data: 'api.example.com' },
        { type: 'A', name: 'api.example.com', ttl: 5, data: '192.0.2.1' },
      ],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    }),
  );
  const out = packet.decode(packet.encode(rewriteAnswer(resp, 'EXT.shop.svc.cluster.local.', 'Ext')));
  assert.equal(out.id, 7);
  assert.ok(out.flag_ra && out.flag_aa, 'flags kept');
  assert.deepEqual(out.questions, [{ name: 'Ext', type: 'A', class: 'IN' }]);
  assert.deepEqual(out.answers?.map((a) => [a.name, a.type]), [['Ext', 'CNAME'], ['api.example.com', 'A']]);
  assert.equal(out.additionals?.[0].type, 'OPT');
});

/** A name in wire form, labels only (no pointers). */
const wire = (name: string): number[] => [...name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]), 0];

test('renameAnswer: the byte-level rename reads as rewriteAnswer\'s, pointers into the question decompressed', () => {
  // web.shop.svc.cluster.local A, compressed as servers send it: the CNAME
  // target ends in a pointer into the question, the A record's owner points
  // into the CNAME's data, the SOA's names point into the question too.
  const tried = 'web.shop.svc.cluster.local';
  const q = wire(tried);
  const svc = 12 + 4 + 5; // "svc.cluster.local" inside the question
  const rr = (owner: number[], type: number, data: number[]): number[] => [...owner, 0, type, 0, 1, 0, 0, 0, 5, data.length >> 8, data.length & 0xff, ...data];
  const cnameData = [3, ...Buffer.from('api'), 0xc0, svc];
  const cnameAt = 12 + q.length + 4 + 2 + 10; // where the CNAME's data starts
  const soaData = [2, ...Buffer.from('ns'), 0xc0, svc, 4, ...Buffer.from('host'), 0xc0, svc, ...Array(20).fill(1)];
  const body = [
    ...[0, 7, 0x85, 0x80, 0, 1, 0, 2, 0, 1, 0, 1],
    ...q, 0, 1, 0, 1,
    ...rr([0xc0, 12], 5, cnameData),
    ...rr([0xc0, cnameAt], 1, [10, 0, 0, 9]),
    ...rr([0xc0, svc], 6, soaData),
    ...[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0],
  ];
  const resp = Buffer.from(body);
  const asked = Buffer.from(wire('Web'));
  const out = renameAnswer(resp, 0x4242, Buffer.from(wire('WEB.shop.svc.cluster.local')), asked, 0);
  assert.ok(out);
  const want = packet.decode(packet.encode(rewriteAnswer({ ...packet.decode(resp), id: 0x4242 }, tried, 'Web')));
  const got = packet.decode(out);
  assert.deepEqual(got, want);
  assert.deepEqual(got.answers?.map((a) => [a.name, a.type, (a as { data: unknown }).data]), [['Web', 'CNAME', 'api.svc.cluster.local'], ['api.svc.cluster.local', 'A', '10.0.0.9']]);
  assert.equal(got.authorities?.[0].name, 'svc.cluster.local', 'the authority section keeps its owner');
  // Too big for the client's UDP size: header, question and OPT with TC.
  const cut = renameAnswer(resp, 0x4242, Buffer.from(wire(tried)), asked, out.length - 1);
  assert.ok(cut);
  const tc = packet.decode(cut);
  assert.ok(tc.flag_tc && tc.answers?.length === 0 && tc.authorities?.length === 0);
  assert.deepEqual(tc.questions?.map((x) => x.name), ['Web']);
  assert.deepEqual(tc.additionals?.map((a) => a.type), ['OPT']);
  // Data with names in a layout not walked here (RRSIG) goes the dns-packet way.
  const rrsig = Buffer.from([...body.slice(0, 12 + q.length + 4), ...rr([0xc0, 12], 46, Array(18).fill(0).concat([0]))]);
  rrsig.writeUInt16BE(1, 6);
  rrsig.writeUInt16BE(0, 8);
  rrsig.writeUInt16BE(0, 10);
  assert.equal(renameAnswer(rrsig, 1, Buffer.from(wire(tried)), asked, 0), undefined);
});

test('readQuery and queryFor: the query asked again under a search domain, byte for byte', () => {
  const edns: Answer = { type: 'OPT', name: '.', udpPayloadSize: 1400, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
  const msg = packet.encode({ type: 'query', id: 9, flags: packet.RECURSION_DESIRED, questions: [{ name: 'Web', type: 'AAAA' }], additionals: [edns] });
  const r = readQuery(msg);
  assert.ok(r.ok);
  assert.deepEqual({ ...r.query }, { id: 9, name: 'Web', nameEnd: 17, questionEnd: 21, udpSize: 1400, compressed: false });
  const sent = queryFor(msg, r.query.nameEnd, expandedName(msg, r.query.nameEnd, encodeName('shop.svc.cluster.local')!));
  assert.deepEqual(packet.decode(sent), packet.decode(packet.encode(withQuestionName(packet.decode(msg), 'Web.shop.svc.cluster.local'))));
  assert.equal(encodeName(`${'a'.repeat(64)}.b`), undefined, 'a label over 63 octets is left to dns-packet');
  // What parseQuery refuses, readQuery refuses (the FORMERR cases of test/unit/dns-malformed.test.ts).
  const looped = Buffer.concat([msg.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  assert.ok(!readQuery(looped).ok && !parseQuery(looped).ok);
  const cutRecord = msg.subarray(0, msg.length - 3);
  assert.ok(!readQuery(cutRecord).ok && !parseQuery(cutRecord).ok);
});

test('withQuestionName keeps the header and EDNS of the query', () => {
  const q = packet.decode(packet.encode({ type: 'query', id: 9, flags: packet.RECURSION_DESIRED, questions: [{ name: 'web', type: 'AAAA' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: packet.DNSSEC_OK, flag_do: true, options: [] }] }));
  const out = packet.decode(packet.encode(withQuestionName(q, 'web.shop.svc.cluster.local')));
  assert.equal(out.id, 9);
  assert.ok(out.flag_rd);
  assert.deepEqual(out.questions, [{ name: 'web.shop.svc.cluster.local', type: 'AAAA', class: 'IN' }]);
  const opt = out.additionals?.[0];
  assert.ok(opt && opt.type === 'OPT' && opt.udpPayloadSize === 4096 && opt.flag_do);
});

test('parseQuery: no header → no reply; responses ignored; bad bodies → FORMERR with the ID; other opcodes → NOTIMP', () => {
  assert.deepEqual(parseQuery(Buffer.alloc(5)), { ok: false, reply: null });
  const resp = packet.encode({ type: 'response', id: 1, questions: [{ name: 'a', type: 'A' }] });
  assert.deepEqual(parseQuery(resp), { ok: false, reply: null });
  const good = packet.encode({ type: 'query', id: 0x1234, flags: packet.RECURSION_DESIRED, questions: [{ name: 'a.b', type: 'A' }] });
  const ok = parseQuery(good);
  assert.ok(ok.ok && ok.query.name === 'a.b' && ok.query.udpSize === 512 && ok.query.questionEnd === good.length);
  const badLabel = Buffer.from(good);
  badLabel[12] = 0x50; // label type 01: reserved (RFC 6891 §5)
  const formerr = parseQuery(badLabel);
  assert.ok(!formerr.ok && formerr.reply);
  const r = packet.decode(formerr.reply);
  assert.equal(r.id, 0x1234);
  assert.equal((r as unknown as { rcode: string }).rcode, 'FORMERR');
  assert.ok(r.flag_qr && r.flag_rd);
  const notify = Buffer.from(good);
  notify.writeUInt16BE((4 << 11) | 0x0100, 2);
  const notimp = parseQuery(notify);
  assert.ok(!notimp.ok && notimp.reply && (packet.decode(notimp.reply) as unknown as { rcode: string }).rcode === 'NOTIMP');
  const servfail = packet.decode(errorReply(good, 2));
  assert.deepEqual(servfail.questions, [{ name: 'a.b', type: 'A', class: 'IN' }], 'SERVFAIL repeats the question');
  const loop = Buffer.from(good.subarray(0, 12));
  const looped = Buffer.concat([loop, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  assert.ok(!parseQuery(looped).ok, 'a pointer to itself is FORMERR, not a hang');
  assert.equal(questionEndOffset(Buffer.concat([loop, Buffer.from([3, 97])])), -1);
});
