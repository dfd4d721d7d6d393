// kt-proxy in the router role as a process, as the pod runs it: env in,
// /healthz 200 once its listeners are up, a route registered over SSH
// steers tagged requests, SIGTERM exits 0; a bad env exits 2 with the reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV, PROTOCOL_VERSION, ROUTER_ENV } from '../../contract/protocol.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import { echo, tag, whoAnswers } from '../unit/router-fixtures.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proxy-image', 'src', 'main.ts');

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', [ENV.role]: 'router', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  /** The router's start line: ssh port, health port, listen port of service port 80. */
  const started = new Promise<{ ssh: number; health: number; port: number }>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /router: ssh on 127\.0\.0\.1:(\d+), health on :(\d+), ports 80→(\d+)/.exec(log);
      if (m) resolve({ ssh: Number(m[1]), health: Number(m[2]), port: Number(m[3]) });
    });
    exit.then(([code]) => reject(new Error(`exited ${code} before starting:\n${log}`)), () => {});
  });
  // Awaited only by tests that expect a start; the others look at the exit.
  started.catch(() => {});
  return { child, exit, started, log: () => log };
}

test('router process: healthz, a route over SSH, SIGTERM exits 0', async (t) => {
  const origin = await echo('origin-pod');
  const laptop = await echo('alice');
  const key = makeSessionKey();
  const p = run({
    [ENV.sshPort]: '0',
    [ENV.authorizedKeys]: key.publicKey,
    [ROUTER_ENV.healthPort]: '0',
    [ROUTER_ENV.origin]: '127.0.0.1',
    [ROUTER_ENV.ports]: JSON.stringify([{ name: 'http', servicePort: 80, listenPort: 0, originPort: origin.port }]),
  });
  t.after(async () => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await origin.close();
    await laptop.close();
  });
  const { ssh, health, port } = await p.started;
  const h = await fetch(`http://127.0.0.1:${health}/healthz`);
  assert.equal(h.status, 200);
  assert.equal(await h.text(), 'ok\n');
  assert.equal(await whoAnswers(port, { 'x-kt-version': 'alice' }), 'origin-pod');
  const tunnel = await openTunnel({ stream: net.connect(ssh, '127.0.0.1'), privateKey: key.privateKey });
  assert.equal((await tunnel.hello()).role, 'router');
  await requestRoute(tunnel, { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: tag('alice'), owner: 'alice@laptop', session: 's1' }, { host: '127.0.0.1', port: laptop.port });
  assert.equal(await whoAnswers(port, { 'x-kt-version': 'alice' }), 'alice');
  const routes = (await (await fetch(`http://127.0.0.1:${health}/routes`)).json()) as { routes: Array<{ owner: string }> };
  assert.deepEqual(routes.routes.map((r) => r.owner), ['alice@laptop']);
  await tunnel.close();
  p.child.kill('SIGTERM');
  assert.deepEqual(await p.exit, [0, null]);
  assert.match(p.log(), /stopping: SIGTERM/);
});

test('router process: a bad environment exits 2 with the reason', async () => {
  const key = makeSessionKey();
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ [ENV.authorizedKeys]: key.publicKey, [ROUTER_ENV.origin]: 'o' }, /KT_ROUTER_PORTS is empty/],
    [{ [ENV.authorizedKeys]: key.publicKey, [ROUTER_ENV.origin]: 'o', [ROUTER_ENV.ports]: '[{"servicePort":80}]' }, /listenPort must be a port number/],
    [{ [ENV.authorizedKeys]: key.publicKey, [ROUTER_ENV.ports]: '[]' }, /KT_ROUTER_ORIGIN is empty/],
    [{ [ROUTER_ENV.origin]: 'o' }, /KT_AUTHORIZED_KEYS is empty/],
  ];
  for (const [env, re] of cases) {
    const p = run({ [ENV.sshPort]: '0', [ROUTER_ENV.healthPort]: '0', ...env });
    assert.deepEqual(await p.exit, [2, null]);
    assert.match(p.log(), re);
  }
});
