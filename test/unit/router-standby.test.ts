// The router pod's standby (proxy-image/src/router/standby.ts) with a real
// router on real sockets: the two share the Service port (SO_REUSEPORT) but
// never serve at once. The standby serves (everything to the origin) until
// the router links; then it no longer listens, its kept-alive clients are
// told to move, and the router is ready only after that. When the router
// goes, the standby serves again at once.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import { test } from 'node:test';
import { bed, echo, SERVICE_PORT } from './router-fixtures.ts';
import { startStandby } from '../../proxy-image/src/router/standby.ts';
import type { Standby } from '../../proxy-image/src/router/standby.ts';

interface Answer {
  status: number;
  pod: string;
  connection: string | undefined;
}

function get(port: number, headers: Record<string, string>, agent: http.Agent | false = false, path = '/who'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pod: res.statusCode === 200 && path === '/who' ? (JSON.parse(body) as { pod: string }).pod : body, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
}

/** A standby on a free port, with its serving changes as events. */
async function standby(socket: string, originPort: number, startMs: number): Promise<{ s: Standby; port: () => number; changes: EventEmitter; logs: string[] }> {
  const changes = new EventEmitter();
  const logs: string[] = [];
  const s = await startStandby({
    ports: [{ name: 'http', servicePort: SERVICE_PORT, listenPort: 0, originPort }],
    originHost: '127.0.0.1',
    listenHost: '127.0.0.1',
    socket,
    startMs,
    drain: { quietMs: 2000, maxMs: 5000 },
    log: (l) => logs.push(l),
    onChange: (serving) => changes.emit(serving ? 'serving' : 'released'),
  });
  return { s, port: () => s.bound(SERVICE_PORT) ?? 0, changes, logs };
}

const unique = (what: string): string => `kt-test-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

test('standby and router share the port but never serve at once: the standby until the router links, the router after, the standby again when it goes', async (t) => {
  const origin = await echo('origin-pod');
  t.after(() => origin.close());
  const socket = unique('standby');
  const sb = await standby(socket, origin.port, 0);
  t.after(() => sb.s.close());
  if (!sb.s.serving()) await once(sb.changes, 'serving');
  const port = sb.port();
  const tagged = { 'x-kt-version': 'alice' };
  assert.equal((await get(port, tagged)).pod, 'origin-pod', 'the standby alone sends everything to the origin');
  // A client of the standby that keeps its connection.
  const kept = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => kept.destroy());
  assert.equal((await get(port, {}, kept)).connection, 'keep-alive');

  const released = once(sb.changes, 'released');
  const b = await bed(t, { standby: socket, ports: [{ name: 'http', servicePort: SERVICE_PORT, listenPort: port, originPort: origin.port }] });
  assert.equal(b.port, port, 'the router binds the standby\'s port beside it');
  await released;
  assert.equal(sb.s.serving(), false);
  await b.dev('alice', { headers: [{ name: 'x-kt-version', value: 'alice' }] });
  // New connections, each hashed anew by the kernel: every one reaches the router.
  const answers = await Promise.all(Array.from({ length: 40 }, () => get(port, tagged)));
  assert.deepEqual([...new Set(answers.map((a) => a.pod))], ['alice'], 'no connection reaches the standby once it let go');
  // The kept-alive client of the standby was told to move: its next answer closes the connection.
  const moved = await get(port, {}, kept);
  assert.equal(moved.pod, 'origin-pod');
  assert.equal(moved.connection, 'close');
  assert.equal((await get(port, tagged, kept)).pod, 'alice', 'its next request opened a connection to the router');

  const serving = once(sb.changes, 'serving');
  await b.router.close();
  await serving;
  assert.equal((await get(port, tagged)).pod, 'origin-pod', 'with the router gone the standby serves again, everything to the origin');
  assert.ok(sb.logs.some((l) => /serving every request to the origin: the router is gone/.test(l)), sb.logs.join('\n'));
});

test('a router whose standby is not there yet is not ready; it links once the standby comes, and is ready then', async (t) => {
  const origin = await echo('origin-pod');
  t.after(() => origin.close());
  const socket = unique('late');
  const b = await bed(t, { standby: socket, ports: [{ name: 'http', servicePort: SERVICE_PORT, listenPort: 0, originPort: origin.port }] });
  const health = (): Promise<number> => get(b.router.healthPort, {}, false, '/healthz').then((a) => a.status);
  assert.equal(await health(), 503, 'the standby might still hold the port: not ready');
  // The standby starts late and must not take a share of the live router's port: it waits for the link.
  const sb = await standby(socket, origin.port, 60_000);
  t.after(() => sb.s.close());
  await new Promise<void>((resolve) => {
    const check = (): void => void health().then((s) => (s === 200 ? resolve() : setTimeout(check, 20)));
    check();
  });
  assert.equal(sb.s.serving(), false, 'the standby never listened: the router linked first');
  assert.equal(sb.s.bound(SERVICE_PORT), undefined);
  // The standby goes (its container restarts) and comes back: the router links to the new one.
  await sb.s.close();
  const again = await standby(socket, origin.port, 60_000);
  t.after(() => again.s.close());
  await new Promise<void>((resolve) => {
    const check = (): void => void health().then((s) => (s === 200 && again.logs.some((l) => /the router linked/.test(l)) ? resolve() : setTimeout(check, 20)));
    check();
  });
  assert.equal(again.s.serving(), false, 'the router linked to the new standby, which never listened');
});
