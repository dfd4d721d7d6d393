// The node's pure decisions, without a cluster: address allocation, image
// mapping, environment building, the service proxy's rules (checked by nft
// itself), the agent's framing and the pod's resolv.conf.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IpAllocator, contains, nthAddress } from './net/cidr.ts';
import { podResolvConf } from './net/netns.ts';
import { nftScript, proxyRules } from './net/proxy.ts';
import { runResult } from './net/run.ts';
import { containerEnv, EnvError, expand, serviceEnv } from './node/env.ts';
import { parseImage, resolveImage } from './node/images.ts';
import { FRAME, FrameReader, frame } from './node/wire.ts';
import type { KubeObject } from './store.ts';

const svc = (ns: string, name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[]): KubeObject => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { clusterIP, ports },
});

describe('addresses', () => {
  test('the allocator skips the gateway and reuses a released address only after going round the range', () => {
    const a = new IpAllocator('10.64.0.0/16', ['10.64.0.1']);
    assert.equal(a.allocate(), '10.64.0.2');
    assert.equal(a.allocate(), '10.64.0.3');
    a.release('10.64.0.2');
    assert.equal(a.allocate(), '10.64.0.4');
    const small = new IpAllocator('10.0.0.0/29', ['10.0.0.1']);
    const got = [1, 2, 3, 4, 5].map(() => small.allocate());
    assert.deepEqual(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    small.release('10.0.0.3');
    assert.equal(small.allocate(), '10.0.0.3');
    assert.equal(nthAddress('10.96.0.0/16', 10), '10.96.0.10');
    assert.ok(contains('10.96.0.0/16', '10.96.255.254'));
    assert.ok(!contains('10.96.0.0/16', '10.97.0.1'));
  });

  test('a small range runs out with an error', () => {
    const a = new IpAllocator('10.0.0.0/30', ['10.0.0.1']);
    assert.equal(a.allocate(), '10.0.0.2');
    assert.throws(() => a.allocate(), /exhausted/);
  });
});

describe('images', () => {
  const ctx = { root: '/repo', node: '/repo/node' };

  test('references split into registry, path, tag and digest', () => {
    assert.deepEqual(parseImage('ghcr.io/kubectl-kt/kt-proxy:0.1.0'), { registry: 'ghcr.io', path: 'kubectl-kt/kt-proxy', tag: '0.1.0', digest: undefined });
    assert.deepEqual(parseImage('localhost:5000/kt-demo/echo@sha256:ab'), { registry: 'localhost:5000', path: 'kt-demo/echo', tag: undefined, digest: 'sha256:ab' });
    assert.deepEqual(parseImage('shell'), { path: 'shell', tag: undefined, digest: undefined });
  });

  test('the proxy image runs the built bundle with the container args', () => {
    const r = resolveImage({ name: 'p', image: 'ghcr.io/kubectl-kt/kt-proxy:0.1.0', args: ['shadow'] }, ctx);
    assert.deepEqual(r, { ok: true, kind: 'proxy', command: ['/repo/node', '/repo/dist/kt-proxy.cjs', 'shadow'], env: {} });
  });

  test('the echo image gets PORT from the first container port, 8080 without one', () => {
    const r = resolveImage({ name: 'e', image: 'kt-demo/echo:2', ports: [{ containerPort: 9000 }] }, ctx);
    assert.ok(r.ok);
    assert.deepEqual(r.command, ['/repo/node', '/repo/test/fixtures/echo/server.ts']);
    assert.equal(r.env.PORT, '9000');
    const d = resolveImage({ name: 'e', image: 'kt-demo/echo' }, ctx);
    assert.ok(d.ok);
    assert.equal(d.env.PORT, '8080');
  });

  test('shell runs command + args; anything else fails to pull', () => {
    assert.deepEqual(resolveImage({ name: 's', image: 'shell', command: ['sh', '-c'], args: ['echo hi'] }, ctx), {
      ok: true, kind: 'shell', command: ['sh', '-c', 'echo hi'], env: {},
    });
    const bad = resolveImage({ name: 'x', image: 'nginx:1.27' }, ctx);
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.reason, 'ErrImagePull');
  });
});

describe('environment', () => {
  const pod: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'shop', uid: 'u1', labels: { app: 'web' } }, spec: {} };
  const base = {
    pod, podIP: '10.64.0.5', hostIP: '10.64.0.1', services: [] as KubeObject[],
    configMap: (n: string): KubeObject | undefined => (n === 'cfg' ? { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: '1', b: '2' } } : undefined),
    secret: (n: string): KubeObject | undefined => (n === 'sec' ? { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sec' }, data: { pw: Buffer.from('s3').toString('base64') } } : undefined),
  };

  test('service variables as kubelet names them', () => {
    const env = serviceEnv([svc('shop', 'my-db', '10.96.0.7', [{ name: 'sql', port: 5432 }]), svc('shop', 'headless', 'None', [{ port: 1 }])]);
    assert.equal(env.MY_DB_SERVICE_HOST, '10.96.0.7');
    assert.equal(env.MY_DB_SERVICE_PORT, '5432');
    assert.equal(env.MY_DB_SERVICE_PORT_SQL, '5432');
    assert.equal(env.MY_DB_PORT, 'tcp://10.96.0.7:5432');
    assert.equal(env.MY_DB_PORT_5432_TCP_ADDR, '10.96.0.7');
    assert.equal(env.HEADLESS_SERVICE_HOST, undefined);
  });

  test('envFrom, then env; refs, fields and $(VAR) expansion', () => {
    const env = containerEnv({
      envFrom: [{ prefix: 'C_', configMapRef: { name: 'cfg' } }],
      env: [
        { name: 'PW', valueFrom: { secretKeyRef: { name: 'sec', key: 'pw' } } },
        { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'URL', value: 'http://$(IP):$(C_a)/$(NOPE)$$' },
        { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'missing', key: 'x', optional: true } } },
      ],
    }, base);
    assert.equal(env.C_a, '1');
    assert.equal(env.PW, 's3');
    assert.equal(env.IP, '10.64.0.5');
    assert.equal(env.APP, 'web');
    assert.equal(env.URL, 'http://10.64.0.5:1/$(NOPE)$');
    assert.equal('OPT' in env, false);
    assert.equal(expand('$(A)-$(B)', { A: 'x' }), 'x-$(B)');
  });

  test('a missing ConfigMap or key is a config error, as CreateContainerConfigError', () => {
    assert.throws(() => containerEnv({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nope', key: 'x' } } }] }, base), EnvError);
    assert.throws(() => containerEnv({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'zz' } } }] }, base), /couldn't find key zz/);
  });

  test('without service links only the kubernetes Service is set', () => {
    const services = [svc('default', 'kubernetes', '10.96.0.1', [{ name: 'https', port: 443 }]), svc('shop', 'web', '10.96.0.9', [{ port: 80 }])];
    const env = containerEnv({}, { ...base, services }, false);
    assert.equal(env.KUBERNETES_SERVICE_HOST, '10.96.0.1');
    assert.equal(env.WEB_SERVICE_HOST, undefined);
  });
});

describe('service proxy rules', () => {
  const services = [
    svc('shop', 'web', '10.96.1.1', [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }]),
    svc('shop', 'empty', '10.96.1.2', [{ port: 80 }]),
    svc('shop', 'headless', 'None', [{ port: 80 }]),
  ];
  // Two slices of one Service (the EndpointSlice controller splits large ones): a not-ready
  // endpoint is left out, a missing `ready` condition counts as ready, as the API documents.
  const slice = (name: string, endpoints: unknown[]): KubeObject => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }],
    endpoints,
  });
  const endpoints: KubeObject[] = [
    slice('web-a', [{ addresses: ['10.64.0.2'], conditions: { ready: true } }, { addresses: ['10.64.0.9'], conditions: { ready: false, terminating: true } }]),
    slice('web-b', [{ addresses: ['10.64.0.3'] }]),
  ];

  test('ports match slice ports by name and protocol; not-ready endpoints and headless Services get no rule', () => {
    assert.deepEqual(proxyRules(services, endpoints), [
      { clusterIp: '10.96.1.1', protocol: 'tcp', port: 80, backends: [{ ip: '10.64.0.2', port: 8080 }, { ip: '10.64.0.3', port: 8080 }] },
      { clusterIp: '10.96.1.1', protocol: 'udp', port: 53, backends: [{ ip: '10.64.0.2', port: 5353 }, { ip: '10.64.0.3', port: 5353 }] },
      { clusterIp: '10.96.1.2', protocol: 'tcp', port: 80, backends: [] },
    ]);
  });

  test('a port with no ready endpoint uses those still serving while terminating (kube-proxy >= 1.28); with a ready one, never', () => {
    const only = (endpoints: unknown[]): KubeObject[] => [slice('web-t', endpoints)];
    const draining = { addresses: ['10.64.0.9'], conditions: { ready: false, serving: true, terminating: true } };
    const stopped = { addresses: ['10.64.0.8'], conditions: { ready: false, serving: false, terminating: true } };
    const web = [services[0]];
    assert.deepEqual(proxyRules(web, only([draining, stopped]))[0].backends, [{ ip: '10.64.0.9', port: 8080 }]);
    assert.deepEqual(proxyRules(web, only([stopped]))[0].backends, []);
    assert.deepEqual(proxyRules(web, only([draining, { addresses: ['10.64.0.2'], conditions: { ready: true } }]))[0].backends, [{ ip: '10.64.0.2', port: 8080 }]);
  });

  test('the script balances with numgen, rejects ports without endpoints, and nft accepts it', async () => {
    const script = nftScript('kt_check', proxyRules(services, endpoints));
    assert.match(script, /ip daddr 10\.96\.1\.1 tcp dport 80 dnat ip to numgen random mod 2 map \{ 0 : 10\.64\.0\.2 \. 8080, 1 : 10\.64\.0\.3 \. 8080 \}/);
    assert.match(script, /elements = \{ 10\.96\.1\.2 \. tcp \. 80 \}/);
    assert.match(script, /10\.64\.0\.2 \. 10\.64\.0\.2/);
    // -c: parse and validate in the kernel's terms without applying anything.
    const r = await runResult('nft', ['-c', '-f', '-'], { input: script });
    assert.equal(r.code, 0, r.stderr);
    const single = nftScript('kt_check', [{ clusterIp: '10.96.0.1', protocol: 'tcp', port: 443, backends: [{ ip: '10.64.0.1', port: 6443 }] }]);
    assert.match(single, /dnat ip to 10\.64\.0\.1:6443/);
    assert.equal((await runResult('nft', ['-c', '-f', '-'], { input: single })).code, 0);
  });
});

describe('agent framing and resolv.conf', () => {
  test('frames survive arbitrary splits', () => {
    const got: [number, string][] = [];
    const r = new FrameReader((t, p) => got.push([t, p.toString()]));
    const bytes = Buffer.concat([frame(FRAME.stdout, 'hello'), frame(FRAME.stderr, ''), frame(FRAME.exit, '{"code":3}')]);
    for (let i = 0; i < bytes.length; i += 3) r.push(bytes.subarray(i, i + 3));
    assert.deepEqual(got, [[FRAME.stdout, 'hello'], [FRAME.stderr, ''], [FRAME.exit, '{"code":3}']]);
  });

  test('resolv.conf is what kubelet writes for ClusterFirst', () => {
    assert.equal(podResolvConf('shop', 'cluster.local', '10.96.0.10'), 'search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  });
});
