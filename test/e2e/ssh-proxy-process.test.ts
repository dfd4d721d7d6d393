// kt-proxy as a process (node proxy-image/src/main.ts), as the pod runs it:
// role from the environment, one log line per event on stderr, exit 0 on
// SIGTERM and when idle, loopback-only sockets.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV, VERSION } from '../../contract/protocol.ts';
import { makeSessionKey, openTunnel } from '../../plugin/src/tunnel/index.ts';
import { echoServer, exchange } from '../unit/ssh-fixtures.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proxy-image', 'src', 'main.ts');

interface Proxy {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the first match of re in stderr (now or later). */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

function startProxy(env: Record<string, string>): Proxy {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', [ENV.sshPort]: '0', [ENV.dnsPort]: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...waiters]) {
      const m = err.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    stderr: () => err,
    exit,
    waitFor: (re) => {
      const m = err.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        exit.then(([code]) => reject(new Error(`kt-proxy exited ${code} before ${re}:\n${err}`)), () => {});
      });
    },
  };
}

async function stopProxy(p: Proxy): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exit;
}

/** Local addresses of the sockets this process has bound (TCP listening, UDP bound), from /proc. */
function boundAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const rows = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      const [local, state, inode] = [f[1], f[3], f[9]];
      // TCP: LISTEN is state 0A; UDP sockets are "bound" in state 07.
      if (!inodes.has(inode) || (table.startsWith('tcp') && state !== '0A')) continue;
      out.push(`${table} ${hexAddress(local)}`);
    }
  }
  return out;
}

/** /proc/net hex "0100007F:1F90" → "127.0.0.1:8080" (each 32-bit word is host byte order). */
function hexAddress(local: string): string {
  const [hex, port] = local.split(':');
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  const addr = bytes.length === 4 ? bytes.join('.') : net.SocketAddress.parse(`[${toV6(bytes)}]:0`)?.address ?? toV6(bytes);
  return `${addr}:${parseInt(port, 16)}`;
}

function toV6(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(':');
}

test('shadow: serves the tunnel, logs each event, binds loopback only, exits 0 on SIGTERM', async (t) => {
  const key = makeSessionKey();
  const p = startProxy({ [ENV.role]: 'shadow', [ENV.authorizedKeys]: `${key.publicKey}\n` });
  t.after(() => stopProxy(p));
  const echo = await echoServer();
  t.after(() => echo.close());

  const m = await p.waitFor(/shadow: ssh on 127\.0\.0\.1:(\d+), dns on 127\.0\.0\.1:(\d+)/);
  const tunnel = await openTunnel({ stream: net.connect(Number(m[1]), '127.0.0.1'), privateKey: key.privateKey });
  assert.deepEqual(await tunnel.hello(), { version: VERSION, protocol: 1, role: 'shadow' });
  const back = await exchange(await tunnel.connect('127.0.0.1', echo.port), Buffer.from('ping'));
  assert.equal(back.toString(), 'ping');
  await p.waitFor(/c1 authenticated/);
  await p.waitFor(/c1 direct-tcpip 127\.0\.0\.1:\d+ open/);

  const bound = boundAddresses(p.child.pid as number);
  // The SSH listener and the DNS forwarder (TCP and UDP) at least, and nothing off loopback.
  assert.ok(bound.some((b) => b === `tcp 127.0.0.1:${m[1]}`), bound.join(', '));
  assert.ok(bound.some((b) => b === `udp 127.0.0.1:${m[2]}`), bound.join(', '));
  for (const b of bound) assert.match(b, /^(tcp|udp)6? (127\.\d+\.\d+\.\d+|::1):\d+$/, b);

  // One line per event, each stamped.
  for (const line of p.stderr().trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z \S/);

  const closed = once(tunnel, 'close');
  p.child.kill('SIGTERM');
  const [code] = await p.exit;
  assert.equal(code, 0);
  assert.match(p.stderr(), /stopping: SIGTERM/);
  await closed;
});

test('shadow: exits 0 by itself after KT_IDLE_EXIT_SECONDS without a client', async (t) => {
  const key = makeSessionKey();
  const p = startProxy({ [ENV.role]: 'shadow', [ENV.authorizedKeys]: key.publicKey, [ENV.idleExitSeconds]: '1' });
  t.after(() => stopProxy(p));
  const [code] = await p.exit;
  assert.equal(code, 0);
  assert.match(p.stderr(), /stopping: no SSH client for 1 s/);
});

test('shadow without authorized keys refuses to start, naming the variable', async (t) => {
  const p = startProxy({ [ENV.role]: 'shadow' });
  t.after(() => stopProxy(p));
  const [code] = await p.exit;
  assert.equal(code, 2);
  assert.match(p.stderr(), new RegExp(`${ENV.authorizedKeys} is empty`));
});

test('router without authorized keys refuses to start, naming the variable', async (t) => {
  const p = startProxy({ [ENV.role]: 'router' });
  t.after(() => stopProxy(p));
  const [code] = await p.exit;
  assert.equal(code, 2);
  assert.match(p.stderr(), new RegExp(`${ENV.authorizedKeys} is empty`));
});

test('an unknown role exits 2 and lists the roles', async (t) => {
  const p = startProxy({ [ENV.role]: 'nope' });
  t.after(() => stopProxy(p));
  const [code] = await p.exit;
  assert.equal(code, 2);
  assert.match(p.stderr(), /unknown role "nope"; set KT_ROLE to one of shadow, router/);
});
