// The local SOCKS5 + HTTP proxy of `connect --mode socks`, driven by the real
// curl. The dialer stands in for the tunnel: it knows one "cluster" name.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseAuthority, parseSocksRequest, proxyEnv, socksReplyFor, startProxyServer, type ProxyServer } from '../../plugin/src/connect/socks.ts';

const run = promisify(execFile);
let web: Server;
let webPort = 0;
let closedPort = 0;
let proxy: ProxyServer;
const seen: string[] = [];

before(async () => {
  web = createHttpServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, host: req.headers.host, proxyConnection: req.headers['proxy-connection'] ?? null, version: req.headers['x-kt-version'] ?? null, baggage: req.headers.baggage ?? null }));
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
  // A port nothing listens on: bind, read the port, close.
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));

  proxy = await startProxyServer({
    dial: async (host, port) => {
      seen.push(`${host}:${port}`);
      // "web.shop.svc.cluster.local" exists only on the cluster side of this dialer.
      const target = host === 'web.shop.svc.cluster.local' || host === '127.0.0.1' ? '127.0.0.1' : undefined;
      if (!target) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return await new Promise((resolve, reject) => {
        const s = connect({ host: target, port }, () => resolve(s));
        s.once('error', reject);
      });
    },
  });
});

after(async () => {
  await proxy.close();
  await new Promise<void>((r) => web.close(() => r()));
});

test('SOCKS5 with remote name resolution reaches a name only the cluster side knows', async () => {
  const url = `http://web.shop.svc.cluster.local:${webPort}/hello`;
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${proxy.port}`, url]);
  assert.equal(JSON.parse(stdout).path, '/hello');
  assert.ok(seen.includes(`web.shop.svc.cluster.local:${webPort}`));
});

test('HTTP proxy: absolute-URI requests, hop-by-hop headers dropped', async () => {
  const url = `http://web.shop.svc.cluster.local:${webPort}/abs?q=1`;
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${proxy.port}`, '-H', 'Proxy-Connection: keep-alive', url]);
  const body = JSON.parse(stdout);
  assert.equal(body.path, '/abs?q=1');
  assert.equal(body.host, `web.shop.svc.cluster.local:${webPort}`);
  assert.equal(body.proxyConnection, null);
});

test('HTTP proxy: CONNECT tunnels', async () => {
  const url = `http://web.shop.svc.cluster.local:${webPort}/tunnelled`;
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-p', '-x', `http://127.0.0.1:${proxy.port}`, url]);
  assert.equal(JSON.parse(stdout).path, '/tunnelled');
});

test('connect --header/--baggage: set on plain-HTTP requests (replacing, merging); CONNECT passes untouched', async () => {
  const tagging = await startProxyServer({
    dial: async (_host, port) => await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    }),
    setHeaders: [{ name: 'x-kt-version', value: 'alice' }],
    baggage: [{ key: 'kt', value: 'alice smith' }],
  });
  try {
    const url = `http://127.0.0.1:${webPort}/tagged`;
    const curl = async (...args: string[]) => JSON.parse((await run('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${tagging.port}`, ...args, url])).stdout);
    const plain = await curl();
    assert.equal(plain.version, 'alice');
    assert.equal(plain.baggage, 'kt=alice%20smith');
    const own = await curl('-H', 'x-kt-version: bob', '-H', 'baggage: kt=bob;p=1, userId=42', '-H', 'baggage: other=x');
    assert.equal(own.version, 'alice', 'ours replaces the request\'s value');
    assert.equal(own.baggage, 'kt=alice%20smith,userId=42,other=x', 'members merged, ours win for kt');
    const tunnelled = await curl('-p', '-H', 'x-kt-version: bob');
    assert.equal(tunnelled.version, 'bob', 'a CONNECT tunnel is bytes we do not touch');
    assert.equal(tunnelled.baggage, null);
  } finally {
    await tagging.close();
  }
});

test('the proxy environment makes curl use the proxy without flags', async () => {
  const env = proxyEnv(proxy.port, { PATH: process.env.PATH });
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', `http://web.shop.svc.cluster.local:${webPort}/env`], { env });
  assert.equal(JSON.parse(stdout).path, '/env');
  assert.match(env.JAVA_TOOL_OPTIONS ?? '', new RegExp(`-DsocksProxyPort=${proxy.port}`));
});

test('failures map to SOCKS5 and HTTP errors the client can read', async () => {
  const unknown = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${proxy.port}`, 'http://nope.invalid/']).then(
    () => assert.fail('expected curl to fail'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(unknown.code, 97); // CURLE_PROXY: the SOCKS5 reply was an error
  assert.match(unknown.stderr, /unreachable|SOCKS/i);
  const refused = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-x', `http://127.0.0.1:${proxy.port}`, `http://127.0.0.1:${closedPort}/`]).then(
    (r) => r.stdout,
  );
  assert.equal(refused, '502');
});

test('parseSocksRequest handles every address type and partial input', () => {
  const v4 = Buffer.from([5, 1, 0, 1, 10, 0, 0, 7, 0x1f, 0x90]);
  assert.deepEqual(parseSocksRequest(v4), { ok: true, cmd: 1, host: '10.0.0.7', port: 8080, length: 10 });
  assert.deepEqual(parseSocksRequest(v4.subarray(0, 7)), { ok: false, incomplete: true });
  const name = Buffer.concat([Buffer.from([5, 1, 0, 3, 3]), Buffer.from('web'), Buffer.from([0, 80])]);
  assert.deepEqual(parseSocksRequest(name), { ok: true, cmd: 1, host: 'web', port: 80, length: 10 });
  const v6 = Buffer.concat([Buffer.from([5, 1, 0, 4]), Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([1, 187])]);
  assert.deepEqual(parseSocksRequest(v6), { ok: true, cmd: 1, host: '2001:db8:0:0:0:0:0:1', port: 443, length: 22 });
  assert.deepEqual(parseSocksRequest(Buffer.from([5, 1, 0, 9, 0, 0])), { ok: false, incomplete: false, rep: 8 });
  assert.deepEqual(parseSocksRequest(Buffer.from([5, 1, 0, 3, 0, 0, 0])), { ok: false, incomplete: false, rep: 1 });
});

test('socksReplyFor and parseAuthority', () => {
  assert.equal(socksReplyFor(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 5);
  assert.equal(socksReplyFor(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 4);
  assert.equal(socksReplyFor(new Error('Connection refused by peer')), 5);
  assert.equal(socksReplyFor(new Error('boom')), 1);
  assert.deepEqual(parseAuthority('web:443'), { host: 'web', port: 443 });
  assert.deepEqual(parseAuthority('[::1]:8080'), { host: '::1', port: 8080 });
  assert.equal(parseAuthority('web'), undefined);
  assert.deepEqual(parseAuthority('web', 80), { host: 'web', port: 80 });
  assert.equal(parseAuthority('web:99999'), undefined);
});
