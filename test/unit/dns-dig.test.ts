// dig (bind9-dnsutils) against the cluster DNS and against the proxy's
// forwarder in front of it, over UDP and TCP: what a real resolver client
// sees must match what the tests expect for every record type. The
// forwarder reads a kubelet-style resolv.conf (search list, ndots:5), so
// short names resolve as they do inside a pod.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Store } from '../cluster/store.ts';
import { startClusterDns, storeSource, type ClusterDns, type ClusterRecordSource } from '../cluster/dns/server.ts';
import { fill } from '../cluster/dns/fixtures.ts';
import { startFakeUpstream, type FakeUpstream } from '../cluster/dns/fake-upstream.ts';
import { startDnsForwarder, type DnsForwarder } from '../../proxy-image/src/dns/index.ts';

const DIG = '/usr/bin/dig';
const HOST = '127.0.0.1';
const run = promisify(execFile);

interface DigResult {
  status: string;
  flags: string[];
  /** "name TYPE data" for each answer record. */
  answers: string[];
  authority: string[];
}

async function dig(port: number, args: string[], tcp: boolean): Promise<DigResult> {
  const { stdout } = await run(DIG, [`@${HOST}`, '-p', String(port), '+tries=1', '+time=5', tcp ? '+tcp' : '+notcp', '+noall', '+comments', '+answer', '+authority', ...args]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '(none)';
  const flags = /flags: ([a-z ]*);/.exec(stdout)?.[1].trim().split(' ') ?? [];
  const records = stdout
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';'))
    .map((l) => {
      const [name, , , type, ...data] = l.trim().split(/\s+/);
      return `${name} ${type} ${data.join(' ')}`;
    });
  return { status, flags, answers: records.filter((r) => !r.includes(' SOA ')), authority: records.filter((r) => r.includes(' SOA ')) };
}

describe('dig against the cluster DNS and the forwarder', () => {
  before(() => assert.ok(existsSync(DIG), `${DIG} is missing: apt-get install bind9-dnsutils`));

  let store: Store;
  let source: ClusterRecordSource;
  let up: FakeUpstream;
  let cluster: ClusterDns;
  let fw: DnsForwarder;
  let tmp: string;

  before(async () => {
    store = new Store();
    fill(store);
    source = storeSource(store);
    up = await startFakeUpstream({
      'alias.example.com': [{ type: 'CNAME', name: 'alias.example.com', ttl: 30, data: 'real.example.com' }],
      'real.example.com': [
        { type: 'A', name: 'real.example.com', ttl: 30, data: '192.0.2.7' },
        { type: 'AAAA', name: 'real.example.com', ttl: 30, data: '2001:db8::7' },
      ],
    });
    cluster = await startClusterDns({ host: HOST, port: 0, source, upstream: { host: HOST, port: up.port } });
    tmp = await mkdtemp(join(tmpdir(), 'kt-dig-'));
    await writeFile(join(tmp, 'resolv.conf'), 'search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
    fw = await startDnsForwarder({ host: HOST, port: 0, resolvConf: join(tmp, 'resolv.conf'), upstreams: [{ host: HOST, port: cluster.port }] });
  });

  after(async () => {
    await fw.close();
    await cluster.close();
    source.close();
    await up.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const clusterCases: [string, string[], Partial<DigResult> & { aa?: boolean }][] = [
    ['ClusterIP A', ['web.shop.svc.cluster.local', 'A'], { status: 'NOERROR', answers: ['web.shop.svc.cluster.local. A 10.96.0.5'], aa: true }],
    ['dual-stack AAAA', ['dual.shop.svc.cluster.local', 'AAAA'], { status: 'NOERROR', answers: ['dual.shop.svc.cluster.local. AAAA fd00:96::6'], aa: true }],
    ['headless A', ['db.shop.svc.cluster.local', 'A'], { answers: ['db.shop.svc.cluster.local. A 10.244.0.7', 'db.shop.svc.cluster.local. A 10.244.0.8'] }],
    ['endpoint hostname A', ['db-0.db.shop.svc.cluster.local', 'A'], { answers: ['db-0.db.shop.svc.cluster.local. A 10.244.0.7'] }],
    ['pod A', ['10-244-0-4.shop.pod.cluster.local', 'A'], { answers: ['10-244-0-4.shop.pod.cluster.local. A 10.244.0.4'] }],
    ['SRV', ['_http._tcp.web.shop.svc.cluster.local', 'SRV'], { answers: ['_http._tcp.web.shop.svc.cluster.local. SRV 0 100 80 web.shop.svc.cluster.local.'] }],
    ['PTR of a ClusterIP', ['-x', '10.96.0.5'], { answers: ['5.0.96.10.in-addr.arpa. PTR web.shop.svc.cluster.local.'], aa: true }],
    ['PTR of a pod', ['-x', '10.244.0.4'], { answers: ['4.0.244.10.in-addr.arpa. PTR 10-244-0-4.shop.pod.cluster.local.'] }],
    ['ExternalName CNAME', ['ext.shop.svc.cluster.local', 'CNAME'], { answers: ['ext.shop.svc.cluster.local. CNAME real.example.com.'] }],
    ['NXDOMAIN with SOA', ['nope.shop.svc.cluster.local', 'A'], { status: 'NXDOMAIN', answers: [], authority: ['cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5'], aa: true }],
    ['outside the domain: upstream CNAME chain', ['alias.example.com', 'A'], { status: 'NOERROR', answers: ['alias.example.com. CNAME real.example.com.', 'real.example.com. A 192.0.2.7'], aa: false }],
  ];

  const forwarderCases: [string, string[], Partial<DigResult>][] = [
    ['short name', ['web', 'A'], { status: 'NOERROR', answers: ['web. A 10.96.0.5'] }],
    ['name.namespace', ['web.shop', 'A'], { status: 'NOERROR', answers: ['web.shop. A 10.96.0.5'] }],
    ['full name', ['web.shop.svc.cluster.local', 'A'], { status: 'NOERROR', answers: ['web.shop.svc.cluster.local. A 10.96.0.5'] }],
    ['AAAA of a short name', ['dual', 'AAAA'], { status: 'NOERROR', answers: ['dual. AAAA fd00:96::6'] }],
    ['NODATA, not NXDOMAIN, for a missing type', ['web', 'AAAA'], { status: 'NOERROR', answers: [] }],
    ['short SRV name', ['_http._tcp.web.shop', 'SRV'], { answers: ['_http._tcp.web.shop. SRV 0 100 80 web.shop.svc.cluster.local.'] }],
    ['headless short name', ['db.shop', 'A'], { answers: ['db.shop. A 10.244.0.7', 'db.shop. A 10.244.0.8'] }],
    ['PTR', ['-x', '10.96.0.5'], { answers: ['5.0.96.10.in-addr.arpa. PTR web.shop.svc.cluster.local.'] }],
    ['external CNAME through the whole chain', ['alias.example.com', 'A'], { answers: ['alias.example.com. CNAME real.example.com.', 'real.example.com. A 192.0.2.7'] }],
    ['external AAAA', ['real.example.com', 'AAAA'], { answers: ['real.example.com. AAAA 2001:db8::7'] }],
    ['NXDOMAIN', ['nope', 'A'], { status: 'NXDOMAIN', answers: [] }],
  ];

  for (const tcp of [false, true]) {
    const via = tcp ? 'TCP' : 'UDP';
    for (const [what, args, want] of clusterCases) {
      test(`cluster DNS, ${via}: ${what}`, async () => {
        const got = await dig(cluster.port, args, tcp);
        if (want.status) assert.equal(got.status, want.status);
        if (want.answers) assert.deepEqual(got.answers, want.answers);
        if (want.authority) assert.deepEqual(got.authority, want.authority);
        if (want.aa !== undefined) assert.equal(got.flags.includes('aa'), want.aa, `flags ${got.flags.join(' ')}`);
      });
    }
    for (const [what, args, want] of forwarderCases) {
      test(`forwarder, ${via}: ${what}`, async () => {
        const got = await dig(fw.port, args, tcp);
        if (want.status) assert.equal(got.status, want.status);
        if (want.answers) assert.deepEqual(got.answers, want.answers);
        assert.ok(got.flags.includes('ra'), 'RA as the cluster DNS set it');
      });
    }
  }
});
