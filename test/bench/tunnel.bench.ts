// Throughput of one tunnelled TCP stream: 256 MiB from a client to a byte
// sink, through (a) our ssh2 client → our SSH server (the kt-proxy process),
// (b) OpenSSH `ssh -L` → OpenSSH sshd, (c) OpenSSH `ssh -L` → our server, and
// (d) plain loopback TCP. (The plugin's cold start is startup.bench.ts's.)
// Both of our ends run as they ship: the proxy as dist/kt-proxy.cjs, the
// client as the plugin's bundle has it (test/unit/ssh-bundles.ts), since the
// build sets ssh2's channel packet size and window (scripts/ssh2-constants.ts);
// `make bench` builds first, `node test/bench/run.ts tunnel` needs `make build`.
// ssh2's optional native crypto add-on does not load on Node 26 (nor can the
// bundles carry it), so these are the node:crypto numbers that ship.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { distProxy, shippedTunnel } from '../unit/ssh-bundles.ts';
import { PORT_LISTENER_READY, freePort, stderrMatch, terminate } from '../unit/ssh-fixtures.ts';
import type { BenchRow } from './run.ts';
import { median } from './stats.ts';

const MIB = 1024 * 1024;
const TOTAL = 256 * MIB;
const ROUNDS = 5;

/**
 * A sink that counts bytes and, at EOF, answers with the count (8 bytes).
 * It runs as its own process so that, in every variant, the bench process
 * only writes (and, for our client, encrypts) — as the plugin would.
 */
const SINK = `
const net = require('node:net');
const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
  let n = 0;
  sock.on('data', (d) => (n += d.length));
  sock.on('end', () => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); sock.end(b); });
  sock.on('error', () => sock.destroy());
});
server.listen(0, '127.0.0.1', () => process.stderr.write('sink on ' + server.address().port + '\\n'));
`;

async function sink(): Promise<{ port: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', SINK], { stdio: ['ignore', 'ignore', 'pipe'] });
  const m = await stderrMatch(child, /sink on (\d+)/, 'sink');
  return { port: Number(m[1]), close: () => terminate(child) };
}

/** Writes TOTAL bytes, half-closes, waits for the sink's count; returns MiB/s. */
async function push(stream: Duplex): Promise<number> {
  const chunk = randomBytes(MIB);
  const reply: Buffer[] = [];
  stream.on('data', (d: Buffer) => reply.push(d));
  const ended = once(stream, 'end');
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < TOTAL; sent += chunk.length) {
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  await ended;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const got = Number(Buffer.concat(reply).readBigUInt64BE(0));
  if (got !== TOTAL) throw new Error(`sink counted ${got} bytes, sent ${TOTAL}`);
  stream.destroy();
  return TOTAL / MIB / secs;
}

/**
 * Runs every variant once per round, ROUNDS rounds, and gives each one's
 * median: on a shared machine the load changes within a run, and rounds
 * that alternate see it alike (a best-of per variant measured the variants
 * at different times).
 */
async function alternate(variants: Array<{ name: string; open: () => Promise<Duplex>; logs?: Array<() => string> }>): Promise<number[]> {
  const results = variants.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, v] of variants.entries()) results[i].push(await step(v.name, v.open().then(push), ...(v.logs ?? [])));
  }
  return results.map(median);
}

function tcp(port: number): Promise<Duplex> {
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true, allowHalfOpen: true });
  return once(s, 'connect').then(() => s);
}

export interface OpenSsh {
  dir: string;
  keyFile: string;
  sshdPort: number;
  sshd: ChildProcess;
}

export async function startSshd(dir: string): Promise<OpenSsh> {
  const gen = (file: string) => {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  };
  gen(join(dir, 'host'));
  gen(join(dir, 'user'));
  copyFileSync(join(dir, 'user.pub'), join(dir, 'authorized_keys'));
  const sshdPort = await freePort();
  const cfg = join(dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${sshdPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'Ciphers aes128-gcm@openssh.com',
      '',
    ].join('\n'),
  );
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  await stderrMatch(sshd, /Server listening on 127\.0\.0\.1/, 'sshd');
  return { dir, keyFile: join(dir, 'user'), sshdPort, sshd };
}

/** OpenSSH client arguments for a forward (`-L …` or `-R …`) through a server on 127.0.0.1:port. */
export function opensshArgs(o: { dir: string; keyFile: string; user: string; port: number }, forward: string[]): string[] {
  return [
    '-F', '/dev/null', '-v', '-N',
    '-i', o.keyFile,
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', `UserKnownHostsFile=${join(o.dir, 'known_hosts')}`,
    '-o', 'Ciphers=aes128-gcm@openssh.com', '-o', 'ExitOnForwardFailure=yes',
    '-p', String(o.port),
    ...forward,
    `${o.user}@127.0.0.1`,
  ];
}

/** `ssh -N -L` to a server; resolves with the local port once ssh listens on it. */
async function sshL(o: { dir: string; keyFile: string; user: string; port: number; target: number }): Promise<{ port: number; child: ChildProcess; log: () => string }> {
  const port = await freePort();
  const child = spawn('/usr/bin/ssh', opensshArgs(o, ['-L', `127.0.0.1:${port}:127.0.0.1:${o.target}`]), { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = stderrTail(child, `ssh -L → port ${o.port}`);
  await stderrMatch(child, PORT_LISTENER_READY, 'ssh -L');
  return { port, child, log };
}

/** Keeps the last few KiB a child wrote to stderr, for error messages. */
export function stderrTail(child: ChildProcess, what: string): () => string {
  let buf = '';
  child.stderr?.on('data', (d: Buffer) => (buf = (buf + d.toString()).slice(-4096)));
  return () => `--- ${what} (exit ${child.exitCode ?? child.signalCode ?? 'running'}) ---\n${buf}`;
}

/** Names the step in the error (with the logs given), so a failed bench says where and why it stopped. */
async function step<T>(name: string, p: Promise<T>, ...logs: Array<() => string>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error([`${name}: ${(err as Error).message}`, ...logs.map((l) => l())].join('\n'), { cause: err });
  }
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'kt-bench-'));
  // sshd refuses to start without its privilege separation directory.
  const madeRunSshd = !existsSync('/run/sshd');
  if (madeRunSshd) mkdirSync('/run/sshd', { mode: 0o755 });
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
  if (madeRunSshd) cleanups.push(() => rmSync('/run/sshd', { recursive: true, force: true }));
  try {
    const target = await sink();
    cleanups.unshift(() => target.close());


    const { makeSessionKey, openTunnel } = await shippedTunnel(dir);
    const key = makeSessionKey();
    // The proxy runs as its own process, as in the pod (and as sshd does
    // below), so the two ends of the tunnel do not share one event loop.
    const proxy = spawn(process.execPath, [distProxy()], {
      env: { PATH: process.env.PATH ?? '', KT_ROLE: 'shadow', KT_SSH_PORT: '0', KT_DNS_PORT: '0', KT_AUTHORIZED_KEYS: key.publicKey },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cleanups.unshift(() => terminate(proxy));
    const proxyLog = stderrTail(proxy, 'kt-proxy');
    const ours = { port: Number((await step('kt-proxy start', stderrMatch(proxy, /ssh on 127\.0\.0\.1:(\d+)/, 'kt-proxy')))[1]) };
    const tunnel = await step('our tunnel', openTunnel({ stream: net.connect(ours.port, '127.0.0.1'), privateKey: key.privateKey }));
    cleanups.unshift(() => tunnel.close());

    const openssh = await step('sshd start', startSshd(dir));
    cleanups.unshift(() => terminate(openssh.sshd));
    const viaSshd = await step('ssh -L → sshd', sshL({ dir, keyFile: openssh.keyFile, user: process.env.USER ?? 'root', port: openssh.sshdPort, target: target.port }));
    cleanups.unshift(() => terminate(viaSshd.child));

    const ourKeyFile = join(dir, 'kt-key');
    writeFileSync(ourKeyFile, key.privateKey);
    chmodSync(ourKeyFile, 0o600);
    const viaOurs = await step('ssh -L → our server', sshL({ dir, keyFile: ourKeyFile, user: 'kt', port: ours.port, target: target.port }));
    cleanups.unshift(() => terminate(viaOurs.child));
    const [ourTunnel, opensshBoth, opensshToOurs, raw] = await alternate([
      { name: 'our client → our server', open: () => tunnel.connect('127.0.0.1', target.port), logs: [proxyLog] },
      { name: 'OpenSSH → sshd', open: () => tcp(viaSshd.port), logs: [viaSshd.log] },
      { name: 'OpenSSH → our server', open: () => tcp(viaOurs.port), logs: [viaOurs.log, proxyLog] },
      { name: 'raw TCP', open: () => tcp(target.port) },
    ]);

    const ref = 'OpenSSH ssh -L → sshd';
    rows.push(
      { name: 'tunnel: our client → our server', value: ourTunnel, unit: 'MiB/s', reference: ref, refValue: opensshBoth, note: `256 MiB one stream, aes128-gcm, median of ${ROUNDS} rounds, the four variants alternating` },
      { name: 'tunnel: OpenSSH ssh -L → our server', value: opensshToOurs, unit: 'MiB/s', reference: ref, refValue: opensshBoth },
      { name: 'tunnel: our client → our server', value: ourTunnel, unit: 'MiB/s', reference: 'raw loopback TCP', refValue: raw },
      { name: 'tunnel: OpenSSH ssh -L → sshd', value: opensshBoth, unit: 'MiB/s', reference: 'raw loopback TCP', refValue: raw },
    );
  } finally {
    for (const c of cleanups) await c();
  }

  return rows;
}
