import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  apiStatus, ERRORS, EXIT_FAILURE, EXIT_USAGE, errorTable, fromApiError, isKtError, ktError, toKtError, type ErrorCode,
} from '../../plugin/src/errors.ts';
import { errorLine } from '../../plugin/src/output.ts';
import { clientConfig, type KubeTarget } from '../../plugin/src/kube/config.ts';
import { errorsMarkdown } from '../../scripts/errors-table.ts';

test('every error code is unique, prefixed, and has a meaning and a fix', () => {
  const rows = errorTable();
  const codes = rows.map((r) => r.code);
  assert.equal(new Set(codes).size, codes.length);
  for (const r of rows) {
    assert.match(r.code, /^KT_ERR_[A-Z_]+$/);
    assert.ok(r.meaning.endsWith('.'), r.code);
    assert.ok(r.fix.length > 10 && !r.fix.includes('\n'), r.code);
    assert.ok(r.exit === EXIT_USAGE || r.exit === EXIT_FAILURE);
  }
  // The codes the rest of the plugin relies on.
  for (const c of ['KT_ERR_PORT_IN_USE', 'KT_ERR_NO_SUCH_WORKLOAD', 'KT_ERR_NEEDS_ROOT',
    'KT_ERR_TIMEOUT', 'KT_ERR_INTERNAL', 'KT_ERR_API_FORBIDDEN', 'KT_ERR_API_NOT_FOUND', 'KT_ERR_API_CONFLICT',
    'KT_ERR_API_UNAUTHORIZED', 'KT_ERR_API_UNREACHABLE', 'KT_ERR_KUBECONFIG_NOT_FOUND', 'KT_ERR_UNKNOWN_COMMAND',
    'KT_ERR_UNKNOWN_FLAG', 'KT_ERR_BAD_VALUE', 'KT_ERR_MISSING_ARGUMENT']) {
    assert.ok(Object.hasOwn(ERRORS, c), c);
  }
});

test('the README table generator lists every code once', () => {
  const md = errorsMarkdown();
  const lines = md.trim().split('\n');
  assert.equal(lines[0], '| code | meaning | how to fix |');
  for (const code of Object.keys(ERRORS)) {
    assert.equal(lines.filter((l) => l.startsWith(`| \`${code}\` |`)).length, 1, code);
  }
  assert.equal(lines.length, Object.keys(ERRORS).length + 2);
  // The README's table is this output, as generated: a changed meaning or fix shows up there.
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.ok(readme.includes(md.trim()), 'README.md has the table of `node scripts/errors-table.ts`; regenerate it');
});

test('an error prints as one line: code, what happened, what to do', () => {
  const e = ktError('KT_ERR_PORT_IN_USE', { port: 1080, host: '127.0.0.1' });
  assert.equal(e.exitCode, EXIT_FAILURE);
  assert.equal(errorLine(e),
    'error KT_ERR_PORT_IN_USE: local port 127.0.0.1:1080 is already in use — pick another port with the flag, or stop what listens there (`ss -ltnp`)\n');
  const internal = toKtError(new TypeError('boom\nsecond line'));
  assert.equal(internal.code, 'KT_ERR_INTERNAL');
  const line = errorLine(internal);
  assert.equal(line.split('\n').length, 2, 'one line, newline-terminated');
  assert.match(line, /run again with --debug for details/);
  assert.equal(ktError('KT_ERR_UNKNOWN_FLAG', { flag: '--x' }).exitCode, EXIT_USAGE);
});

const call = { verb: 'patch', resource: 'services', namespace: 'shop' };

test('fromApiError names namespace, verb and resource for 401/403/404/409', () => {
  const cases: [number, ErrorCode, string][] = [
    [401, 'KT_ERR_API_UNAUTHORIZED', 'cannot patch services in namespace shop: unauthorized'],
    [403, 'KT_ERR_API_FORBIDDEN', 'cannot patch services in namespace shop: forbidden'],
    [404, 'KT_ERR_API_NOT_FOUND', 'cannot patch services in namespace shop: not found'],
    [409, 'KT_ERR_API_CONFLICT', 'cannot patch services in namespace shop: conflict'],
    [500, 'KT_ERR_API_FAILED', 'cannot patch services in namespace shop: HTTP 500 InternalError'],
  ];
  for (const [status, code, message] of cases) {
    // The shape of client-node's ApiException: numeric `code`, Status `body`.
    const e = fromApiError({ code: status, body: JSON.stringify({ kind: 'Status', reason: 'InternalError' }) }, call);
    assert.equal(e.code, code);
    assert.equal(e.message, message);
  }
  assert.equal(fromApiError({ statusCode: 403 }, { ...call, name: 'web' }).message,
    'cannot patch services "web" in namespace shop: forbidden');
  assert.equal(fromApiError({ statusCode: 404 }, { verb: 'list', resource: 'namespaces' }).message, 'cannot list namespaces: not found');
  const typed = ktError('KT_ERR_TIMEOUT', { what: 'the router', seconds: 30 });
  assert.equal(fromApiError(typed, call), typed, 'typed errors pass through');
  const fetchFailed = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  assert.equal(fromApiError(fetchFailed, call).code, 'KT_ERR_API_UNREACHABLE');
  assert.equal(fromApiError(new Error('weird'), call).code, 'KT_ERR_INTERNAL');
});

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function target(server: string): KubeTarget {
  return {
    context: 'test',
    // client-node refuses plain http unless TLS verification is off.
    cluster: { name: 'test', cluster: { server, 'insecure-skip-tls-verify': true }, file: '/dev/null' },
    server,
    user: { name: 'u', user: { token: 'x' }, file: '/dev/null' },
    namespace: 'shop',
  };
}

test('fromApiError on real client-node failures: a 403 Status and a closed port', async () => {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
      message: 'services "web" is forbidden: User "alice" cannot patch resource "services" in the namespace "shop"',
    }));
  });
  const port = await listen(server);
  try {
    const k8s = await import('@kubernetes/client-node');
    const api = (await clientConfig(target(`http://127.0.0.1:${port}`))).makeApiClient(k8s.CoreV1Api);
    const err = await api.readNamespacedService({ name: 'web', namespace: 'shop' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err, 'the call failed');
    const e = fromApiError(err, { verb: 'get', resource: 'services', namespace: 'shop', name: 'web' });
    assert.equal(e.code, 'KT_ERR_API_FORBIDDEN');
    assert.equal(errorLine(e),
      'error KT_ERR_API_FORBIDDEN: cannot get services "web" in namespace shop: forbidden — see `kubectl kt rbac` for the Role this plugin needs\n');
    assert.deepEqual(requests, ['GET /api/v1/namespaces/shop/services/web']);
  } finally {
    server.close();
    await once(server, 'close');
  }

  // A port nothing listens on: take a free one, then release it.
  const closed = createServer();
  const free = await listen(closed);
  closed.close();
  await once(closed, 'close');
  const k8s = await import('@kubernetes/client-node');
  const api = (await clientConfig(target(`http://127.0.0.1:${free}`))).makeApiClient(k8s.CoreV1Api);
  const err = await api.listNamespacedService({ namespace: 'shop' }).then(() => undefined, (e: unknown) => e);
  const e = fromApiError(err, { verb: 'list', resource: 'services', namespace: 'shop', server: `http://127.0.0.1:${free}` });
  assert.ok(isKtError(e));
  assert.equal(e.code, 'KT_ERR_API_UNREACHABLE', String(err));
  assert.match(e.message, /^cannot list services in namespace shop: API server http:\/\/127\.0\.0\.1:\d+ unreachable \(ECONNREFUSED\)$/);
});

test('apiStatus reads the status of every error shape an API call throws, through KtError causes', () => {
  assert.equal(apiStatus({ code: 404, body: '{"kind":"Status","code":404}' }), 404, "client-node's ApiException");
  assert.equal(apiStatus({ statusCode: 403 }), 403);
  assert.equal(apiStatus({ body: '{"kind":"Status","code":422,"reason":"Invalid"}' }), 422, 'a Status body alone');
  const wrapped = fromApiError({ code: 409, body: {} }, { verb: 'patch', resource: 'services', namespace: 'shop', name: 'web' });
  assert.equal(wrapped.code, 'KT_ERR_API_CONFLICT');
  assert.equal(apiStatus(wrapped), 409, 'a KtError made from an API error keeps its status');
  assert.equal(apiStatus(fromApiError({ code: 422, body: {} }, { verb: 'patch', resource: 'services' })), 422);
  assert.equal(apiStatus(ktError('KT_ERR_TIMEOUT', { what: 'the router', seconds: 1 })), undefined, 'a KtError of our own has none');
  assert.equal(apiStatus(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), undefined, 'a network error has none');
  assert.equal(apiStatus(undefined), undefined);
  assert.equal(apiStatus('HTTP 404'), undefined, 'never read from text');
});
