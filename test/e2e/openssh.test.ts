// The real OpenSSH client against our SSH server: what works (-D, -L, -R)
// and what is refused (other keys, passwords, sessions, other channel types).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ssh2 from 'ssh2';
import type { Client as SshClient } from 'ssh2';
import { SSH_REQUESTS, SSH_USER } from '../../contract/protocol.ts';
import { clientGlobalRequest, clientOpenRawChannel, sshString } from '../../contract/ssh/internals.ts';
import { generateEd25519 } from '../../contract/ssh/keys.ts';
import { startSshServer } from '../../proxy-image/src/ssh/index.ts';
import { PORT_LISTENER_READY, closeAfter, freePort, sshServer, stderrMatch, terminate } from '../unit/ssh-fixtures.ts';
import type { ServerUnderTest } from '../unit/ssh-fixtures.ts';

const SSH = '/usr/bin/ssh';
let dir: string;
let s: ServerUnderTest;
let web: http.Server;
let webPort: number;
let keyFile: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kt-openssh-'));
  s = await sshServer();
  keyFile = writeKey('session', s.key.privateKey);
  writeFileSync(join(dir, 'ssh_config'), '');
  web = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  webPort = (web.address() as net.AddressInfo).port;
});

after(async () => {
  await s.server.close();
  web.closeAllConnections();
  await new Promise((r) => web.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function writeKey(name: string, privateKey: string): string {
  const file = join(dir, name);
  writeFileSync(file, privateKey);
  chmodSync(file, 0o600);
  return file;
}

function sshArgs(extra: string[], opts: { key?: string; user?: string; command?: string[] } = {}): string[] {
  return [
    // An empty config of our own: no user or system ssh_config applies.
    '-F', join(dir, 'ssh_config'),
    '-i', opts.key ?? keyFile,
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'ExitOnForwardFailure=yes', '-o', 'ConnectTimeout=10',
    '-p', String(s.server.port),
    ...extra,
    `${opts.user ?? SSH_USER}@127.0.0.1`,
    ...(opts.command ?? []),
  ];
}

/** Starts `ssh -v -N …` and resolves once its stderr matches ready (with the match). */
async function sshUntil(extra: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(SSH, sshArgs(['-v', '-N', ...extra]), { stdio: ['ignore', 'ignore', 'pipe'] });
  return { child, match: await stderrMatch(child, ready, 'ssh') };
}

/** curl, asynchronously: the server under test runs in this process and must keep serving. */
async function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('curl', ['-sS', '--max-time', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** Runs ssh to completion (it must fail here) and returns its exit code and stderr. */
async function sshRun(extra: string[], opts: { key?: string; user?: string; command?: string[] } = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(SSH, sshArgs(extra, opts), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

test('ssh -D: curl through the SOCKS proxy reaches a server by name, resolved on the proxy side', async (t) => {
  const port = await freePort();
  const { child } = await sshUntil(['-D', `127.0.0.1:${port}`], PORT_LISTENER_READY);
  t.after(() => terminate(child));
  const r = await curl(['--socks5-hostname', `127.0.0.1:${port}`, `http://localhost:${webPort}/via-socks`]);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'hello from /via-socks');
  assert.match(await s.waitLog(/direct-tcpip localhost:\d+ open/), new RegExp(`localhost:${webPort}`));
});

test('ssh -L: curl to the local port reaches the server behind the proxy', async (t) => {
  const port = await freePort();
  const { child } = await sshUntil(['-L', `127.0.0.1:${port}:127.0.0.1:${webPort}`], PORT_LISTENER_READY);
  t.after(() => terminate(child));
  const r = await curl([`http://127.0.0.1:${port}/via-L`]);
  assert.equal(r.stdout, 'hello from /via-L');
});

test('ssh -R 0: the proxy allocates a port and curl to it comes back to the laptop', async (t) => {
  const { child, match } = await sshUntil(['-R', `0:127.0.0.1:${webPort}`], /Allocated port (\d+) for remote forward/);
  t.after(() => terminate(child));
  const port = Number(match[1]);
  const r = await curl([`http://127.0.0.1:${port}/via-R`]);
  assert.equal(r.stdout, 'hello from /via-R');
});

test('ssh -W to a closed port: the channel open fails and ssh shows the cause', async () => {
  const port = await freePort();
  const r = await sshRun(['-W', `127.0.0.1:${port}`]);
  assert.equal(r.code, 255);
  assert.match(r.stderr, new RegExp(`open failed: connect failed: ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
});

test('a key that is not authorized is refused', async () => {
  const other = writeKey('other', generateEd25519('other').privateKey);
  const r = await sshRun([], { key: other, command: ['true'] });
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
});

test('another user name is refused, even with the right key', async () => {
  const r = await sshRun(['-N'], { user: 'root' });
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
});

test('password and keyboard-interactive authentication are not offered', async () => {
  for (const method of ['password', 'keyboard-interactive']) {
    const r = await sshRun(['-o', `PreferredAuthentications=${method}`], { command: ['true'] });
    assert.equal(r.code, 255, method);
    assert.match(r.stderr, /Permission denied \(publickey\)/, method);
  }
});

test('a command (session channel) is refused: no shell, no exec', async () => {
  const r = await sshRun([], { command: ['true'] });
  assert.equal(r.code, 255);
  assert.match(r.stderr, /open failed: administratively prohibited/);
});

async function ssh2Client(t: { after(fn: () => void): void }, key: string | ssh2.ParsedKey): Promise<SshClient> {
  const client = new ssh2.Client();
  let tried = false;
  // A ParsedKey object (not text) only gets through ssh2's authHandler.
  const auth =
    typeof key === 'string'
      ? { privateKey: key }
      : {
          authHandler: (_methods: unknown, _partial: unknown, next: (a: unknown) => void) => {
            next(tried ? false : { type: 'publickey', username: SSH_USER, key });
            tried = true;
          },
        };
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
  client.connect({ sock: net.connect(s.server.port, '127.0.0.1'), username: SSH_USER, ...(auth as object) });
  t.after(() => client.end());
  await ready;
  return client;
}

test('a listed public key with a signature made by another key is refused', async (t) => {
  const forged = ssh2.utils.parseKey(s.key.privateKey) as ssh2.ParsedKey;
  const other = ssh2.utils.parseKey(generateEd25519().privateKey) as ssh2.ParsedKey;
  forged.sign = (data, algo) => other.sign(data, algo);
  await assert.rejects(ssh2Client(t, forged), /All configured authentication methods failed/);
  assert.match(await s.waitLog(/auth refused: signature does not verify/), /signature/);
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

test('only direct-tcpip channels open; every other type is refused with its RFC 4254 reason', async (t) => {
  const client = await ssh2Client(t, s.key.privateKey);
  const ADMINISTRATIVELY_PROHIBITED = 1;
  const UNKNOWN_CHANNEL_TYPE = 3;
  const addrPort = (addr: string, port: number) => Buffer.concat([sshString(addr), u32(port)]);
  // [type, RFC 4254 §6.3.2/§7.2 type-specific data, expected reason]
  const cases: Array<[string, Buffer, number]> = [
    ['session', Buffer.alloc(0), ADMINISTRATIVELY_PROHIBITED],
    ['direct-streamlocal@openssh.com', Buffer.concat([sshString('/run/x.sock'), sshString(''), u32(0)]), ADMINISTRATIVELY_PROHIBITED],
    ['x11', addrPort('127.0.0.1', 6000), UNKNOWN_CHANNEL_TYPE],
    ['forwarded-tcpip', Buffer.concat([addrPort('127.0.0.1', 80), addrPort('127.0.0.1', 1)]), UNKNOWN_CHANNEL_TYPE],
    ['auth-agent@openssh.com', Buffer.alloc(0), UNKNOWN_CHANNEL_TYPE],
    ['kt-bogus@kt.dev', Buffer.alloc(0), UNKNOWN_CHANNEL_TYPE],
  ];
  for (const [type, data, reason] of cases) {
    const r = await clientOpenRawChannel(client, type, data);
    assert.equal(r.reason, reason, `${type}: ${r.description}`);
  }
  // The control: the one type that is served does open.
  const opened = await new Promise<boolean>((resolve) =>
    client.forwardOut('127.0.0.1', 0, '127.0.0.1', webPort, (err, ch) => {
      if (!err) ch.close();
      resolve(!err);
    }),
  );
  assert.equal(opened, true);
});

test('global requests other than tcpip-forward, cancel-tcpip-forward and hello are refused', async (t) => {
  const client = await ssh2Client(t, s.key.privateKey);
  const cases: Array<[string, Buffer]> = [
    ['streamlocal-forward@openssh.com', sshString('/tmp/kt.sock')],
    ['no-more-sessions@openssh.com', Buffer.alloc(0)],
    [SSH_REQUESTS.route, sshString('{}')],
    ['kt-bogus@kt.dev', Buffer.alloc(0)],
    ['__proto__', Buffer.alloc(0)],
  ];
  for (const [name, data] of cases) {
    await assert.rejects(clientGlobalRequest(client, name, data), /refused/, name);
  }
  assert.ok(await clientGlobalRequest(client, SSH_REQUESTS.hello, Buffer.alloc(0)));
});

test('the server listens on loopback only and refuses any other address', async (t) => {
  const srv = await sshServer();
  closeAfter(t, srv.server);
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
    await assert.rejects(startSshServer({ host, port: 0, authorizedKeys: [s.key.publicKey] }), /loopback only/, host);
  }
  // The server on 127.0.0.1 answers there, and nowhere else on this machine.
  const local = net.connect(srv.server.port, '127.0.0.1');
  await once(local, 'connect');
  local.destroy();
  const addrs = spawnSync('hostname', ['-I'], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter((a) => a && !a.includes(':'));
  for (const addr of addrs) {
    const sock = net.connect(srv.server.port, addr);
    const [err] = (await once(sock, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED', addr);
  }
});
