// The laptop 20–80 ms away from the cluster (test/cluster/net/link.ts):
//  1. the link emulator checked against its own settings — round trips and a
//     plain TCP transfer each way through it, to a server on a unix socket;
//  2. 256 MiB (or what the link moves in about 8 s) from a pod to the laptop
//     through `kt connect`, against OpenSSH `ssh -D` over `kubectl
//     port-forward` to the same proxy image over the same link, and against
//     the link's rate;
//  3. a pod's request loop through exchange and mesh to the laptop, against a
//     request to an original pod plus one round trip of the link;
//  4. `kubectl kt status` against `kubectl get pods,svc` over the link.
// Settings: 20 ms / 100 Mbit/s (a developer near the cluster's region) and
// 80 ms / 1 Gbit/s (across a continent, where windows limit, not bandwidth).
// Nothing here asserts on time; every wait is on an event.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE26, ROOT, startCluster, type Cluster } from '../cluster/cluster.ts';
import { startLink, type LinkSettings } from '../cluster/net/link.ts';
import { PORTS } from '../../contract/protocol.ts';
import type { BenchRow } from './run.ts';
import { median } from './stats.ts';
import {
  CURL, download, GUARD_MS, json, laptopSpawner, LATENCY_SCRIPT, Lines, openSshArgs, openSshProxyPod, podIp, portForwardPort, serviceOnRouter, setUpBenchNamespace, stop,
} from './session-kit.ts';

const NS = 'link';
const ALL_SETTINGS: LinkSettings[] = [{ rttMs: 20, rateMbit: 100 }, { rttMs: 80, rateMbit: 1000 }];
/** KT_LINK_RTTS=80 runs only the 80 ms setting (for a quick look at one of them). */
const SETTINGS = ALL_SETTINGS.filter((s) => !process.env.KT_LINK_RTTS || process.env.KT_LINK_RTTS.split(',').map(Number).includes(s.rttMs));
const MIB = 1024 * 1024;
const SOCKS_PORT = 23080;
const HTTP_PORT = 23081;
const SSH_D_PORT = 23082;
const LOCAL = 23090;
const REQUESTS = 200;
const PINGS = 30;

/** Bytes a transfer moves: about `seconds` at the link's rate, within [16, 256] MiB. */
function transferBytes(rateMbit: number, seconds: number): number {
  return Math.min(256 * MIB, Math.max(16 * MIB, Math.round((rateMbit * 1e6 / 8) * seconds / MIB) * MIB));
}

function label(s: LinkSettings): string {
  return `${s.rttMs} ms, ${s.rateMbit >= 1000 ? `${s.rateMbit / 1000} Gbit/s` : `${s.rateMbit} Mbit/s`}`;
}

// ---- 1. the emulator's own check ------------------------------------------------------

/**
 * The far end of the check, on a unix socket in this process. The first byte
 * says what to do: `p` echo every byte back, `u` count bytes until the end
 * and answer the count (8 bytes), `d` + 8-byte N: send N bytes and end.
 */
function checkServer(path: string): Promise<Server> {
  const chunk = Buffer.alloc(1 << 16, 7);
  const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    let mode = '';
    let count = 0;
    let head = Buffer.alloc(0);
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: Buffer) => {
      if (mode === 'p') return void sock.write(d);
      if (mode === 'u') return void (count += d.length);
      head = Buffer.concat([head, d]);
      mode = String.fromCharCode(head[0]);
      if (mode === 'p' && head.length > 1) sock.write(head.subarray(1));
      if (mode === 'u') count = head.length - 1;
      if (mode === 'd' && head.length >= 9) {
        let left = Number(head.readBigUInt64BE(1));
        const pump = (): void => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void sock.once('drain', pump);
          }
          sock.end();
        };
        pump();
      }
    });
    sock.on('end', () => {
      if (mode !== 'u') return;
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(count));
      sock.end(b);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

// Round trips of one byte on one connection, then N bytes each way; prints
// {"rttMs","upMbit","downMbit"}. argv: port, pings, bytes.
const CHECK_CLIENT = `
const net = require('node:net');
const { once } = require('node:events');
const [port, pings, bytes] = process.argv.slice(1).map(Number);
const open = () => new Promise((resolve, reject) => {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
  s.once('error', reject);
});
(async () => {
  const p = await open();
  p.write('p');
  const rtts = [];
  for (let i = 0; i < pings + 3; i++) {
    const t0 = performance.now();
    p.write('x');
    await once(p, 'data');
    if (i >= 3) rtts.push(performance.now() - t0);
  }
  p.destroy();
  rtts.sort((a, b) => a - b);

  const u = await open();
  const chunk = Buffer.alloc(1 << 16, 9);
  const reply = once(u, 'data');
  const t1 = performance.now();
  u.write('u');
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!u.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await once(u, 'drain');
  }
  u.end();
  const [count] = await reply;
  const upSecs = (performance.now() - t1) / 1000;
  if (Number(count.readBigUInt64BE(0)) !== bytes) throw new Error('upload: the far end counted ' + count.readBigUInt64BE(0));
  u.destroy();

  const d = await open();
  const req = Buffer.alloc(9);
  req.write('d');
  req.writeBigUInt64BE(BigInt(bytes), 1);
  let got = 0;
  const t2 = performance.now();
  d.write(req);
  d.on('data', (b) => (got += b.length));
  await once(d, 'end');
  const downSecs = (performance.now() - t2) / 1000;
  if (got !== bytes) throw new Error('download: got ' + got);
  d.destroy();
  process.stdout.write(JSON.stringify({ rttMs: rtts[Math.floor(rtts.length / 2)], upMbit: bytes * 8 / upSecs / 1e6, downMbit: bytes * 8 / downSecs / 1e6 }) + '\\n');
})().catch((e) => { process.stderr.write(e.stack + '\\n'); process.exit(1); });
`;

async function checkEmulator(c: Cluster, dir: string, s: LinkSettings): Promise<BenchRow[]> {
  const sockPath = join(dir, 'check.sock');
  const server = await checkServer(sockPath);
  const link = await startLink(linkHost(c), sockPath, s);
  try {
    const bytes = transferBytes(s.rateMbit, 3);
    const r = json<{ rttMs: number; upMbit: number; downMbit: number }>(
      await c.inLaptop(NODE26, ['-e', CHECK_CLIENT, String(link.port), String(PINGS), String(bytes)], { timeoutMs: GUARD_MS }), 'link check');
    const what = `the link emulator (relay delay ${s.rttMs / 2} ms each way, tbf ${s.rateMbit} Mbit/s on each veth end)`;
    return [
      { name: `link ${label(s)}: emulator round trip p50`, value: r.rttMs, unit: 'ms', reference: 'its setting', refValue: s.rttMs, note: `${PINGS} one-byte round trips on one connection through ${what}` },
      { name: `link ${label(s)}: emulator upload`, value: r.upMbit, unit: 'Mbit/s', reference: 'its setting', refValue: s.rateMbit, note: `${bytes / MIB} MiB laptop → far end, one TCP connection, until the far end's count came back` },
      { name: `link ${label(s)}: emulator download`, value: r.downMbit, unit: 'Mbit/s', reference: 'its setting', refValue: s.rateMbit, note: `${bytes / MIB} MiB far end → laptop` },
    ];
  } finally {
    await link.close();
    server.close();
    rmSync(sockPath, { force: true });
  }
}

function linkHost(c: Cluster): Parameters<typeof startLink>[0] {
  return { name: c.name, laptopNetns: c.laptopNetns, node: NODE26, addNetns: c.addNetns, removeNetns: c.removeNetns };
}

// ---- 2 and 3. sessions over the link ------------------------------------------------------

type Spawn = (cmd: string, args: string[], env?: Record<string, string>) => ChildProcess;

/** `kt connect` in socks mode; resolves once it says it is connected, with the time from spawn to then. */
async function startConnect(spawn: Spawn, what: string): Promise<{ child: ChildProcess; ms: number }> {
  const t0 = performance.now();
  const child = spawn('kubectl', ['kt', 'connect', '-n', NS, '--socks-port', String(SOCKS_PORT), '--http-port', String(HTTP_PORT)]);
  const connected = await new Lines(child, 'stderr', `kt connect ${what}`).wait(/^connected: SOCKS5 proxy/);
  return { child, ms: connected.at - t0 };
}

interface Refs {
  sshd: { pod: string; keyFile: string };
  /** `kt connect`, command → connected, with no link in the way (the same run). */
  connectMs: number;
  sourceIp: string;
  webIp: string;
  webPod: string;
}

async function overLink(c: Cluster, dir: string, s: LinkSettings, refs: Refs, spawnLaptop: Spawn): Promise<BenchRow[]> {
  const link = await startLink(linkHost(c), c.apiSocket, s);
  const children: ChildProcess[] = [];
  const spawn = (cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess => {
    const child = spawnLaptop(cmd, args, { KUBECONFIG: kubeconfig, ...env });
    children.push(child);
    return child;
  };
  // The limited user's kubeconfig, with the API server behind the link.
  const kubeconfig = join(dir, `kubeconfig-link-${s.rttMs}`);
  writeFileSync(kubeconfig, readFileSync(c.devKubeconfig, 'utf8').replaceAll(`https://127.0.0.1:${c.apiPort}`, `https://127.0.0.1:${link.port}`), { mode: 0o600 });
  try {
    const bytes = transferBytes(s.rateMbit, 8);
    const url = `http://${refs.sourceIp}:9000/?bytes=${bytes}`;

    const { child: connect, ms: connectMs } = await startConnect(spawn, 'over the link');
    const pf = spawn('kubectl', ['port-forward', '-n', NS, `pod/${refs.sshd.pod}`, `:${PORTS.ssh}`]);
    const pfPort = await portForwardPort(pf, 'kubectl port-forward (ssh) over the link');
    const ssh = spawn('ssh', openSshArgs(refs.sshd.keyFile, pfPort, ['-D', `127.0.0.1:${SSH_D_PORT}`]));
    const sshErr = new Lines(ssh, 'stderr', 'ssh -D over the link');
    await sshErr.wait(/channel \d+: new port-listener/);
    const cipher = /kex: server->client cipher: (\S+)/.exec(sshErr.text())?.[1] ?? 'unknown';
    // The port-forward alone, no SSH in it: what the API server and kubelet path carries over this link.
    const rawPf = spawn('kubectl', ['port-forward', '-n', NS, 'pod/source', ':9000']);
    const rawPort = await portForwardPort(rawPf, 'kubectl port-forward (source) over the link');
    const mibps = {
      connect: await download(c.inLaptop('curl', [...CURL, '--socks5-hostname', `127.0.0.1:${SOCKS_PORT}`, url]), 'kt connect over the link', bytes),
      sshD: await download(c.inLaptop('curl', [...CURL, '--socks5-hostname', `127.0.0.1:${SSH_D_PORT}`, url]), 'ssh -D over the link', bytes),
      raw: await download(c.inLaptop('curl', [...CURL, `http://127.0.0.1:${rawPort}/?bytes=${bytes}`]), 'kubectl port-forward over the link', bytes),
    };
    await stop(rawPf);
    await stop(ssh);
    await stop(pf);
    await stop(connect, 'SIGINT');
    const mbit = (m: number): number => (m * MIB * 8) / 1e6;

    // Requests from a pod through the router and the link to the laptop.
    const laptop = spawn(NODE26, [join(ROOT, 'test/fixtures/echo/server.ts')], { PORT: String(LOCAL), POD_NAME: 'laptop' });
    await new Lines(laptop, 'stdout', 'laptop echo server').wait(/echo listening/);
    const loop = async (target: string, headers: Record<string, string>, want: string): Promise<{ p50: number; p99: number }> => {
      const r = json<{ p50: number; p99: number; pods: string[] }>(await c.inPod(NS, 'client', NODE26, ['-e', LATENCY_SCRIPT, target, String(REQUESTS), JSON.stringify(headers)], { timeoutMs: GUARD_MS }), `requests to ${target}`);
      if (r.pods.join() !== want) throw new Error(`requests to ${target}: answered by ${r.pods.join(', ')}, expected ${want}`);
      return r;
    };
    const direct = await loop(`http://${refs.webIp}:8080/`, {}, refs.webPod);
    const routed: Record<'exchange' | 'mesh', { p50: number; p99: number }> = { exchange: { p50: NaN, p99: NaN }, mesh: { p50: NaN, p99: NaN } };
    for (const kind of ['exchange', 'mesh'] as const) {
      const args = kind === 'exchange'
        ? ['kt', 'exchange', 'svc/web', '--expose', `${LOCAL}:80`, '-n', NS]
        : ['kt', 'mesh', 'svc/web', '--expose', `${LOCAL}:80`, '--header', 'x-kt-version=link', '-n', NS];
      const session = spawn('kubectl', args);
      await new Lines(session, 'stderr', `kt ${kind} over the link`).wait(kind === 'exchange' ? /^exchanging: / : /^meshing: /);
      await serviceOnRouter(c, NS, 'web');
      routed[kind] = await loop(`http://web.${NS}/`, kind === 'mesh' ? { 'x-kt-version': 'link' } : {}, 'laptop');
      await stop(session, 'SIGINT');
      // Back on the original pods before the next session takes it over.
      await c.waitFor('services', NS, 'web', (o) => JSON.stringify((o?.spec as { selector?: unknown } | undefined)?.selector) === '{"app":"web"}', GUARD_MS);
    }
    await stop(laptop);
    const status = await statusOverLink(spawn, dir);

    const at = `link ${label(s)}`;
    const oneTrip = `client pod → original pod + one link round trip (${s.rttMs} ms)`;
    return [
      {
        name: `${at}: connect, ${bytes / MIB} MiB pod → laptop`, value: mbit(mibps.connect), unit: 'Mbit/s', reference: 'the link\'s rate', refValue: s.rateMbit,
        note: 'curl --socks5-hostname → kt connect → client-node WebSocket port-forward → link → kube-apiserver → kubelet API → proxy pod → source pod',
      },
      {
        name: `${at}: connect vs ssh -D`, value: mbit(mibps.connect), unit: 'Mbit/s', reference: 'OpenSSH ssh -D over kubectl port-forward', refValue: mbit(mibps.sshD),
        note: `the same link, proxy image and server; OpenSSH negotiated ${cipher}`,
      },
      {
        name: `${at}: kubectl port-forward alone`, value: mbit(mibps.raw), unit: 'Mbit/s', reference: 'the link\'s rate', refValue: s.rateMbit,
        note: 'curl → kubectl port-forward pod/source → link → kube-apiserver → kubelet API → source pod: no SSH, no proxy; what the path itself carries',
      },
      {
        name: `${at}: connect, command → connected`, value: connectMs, unit: 'ms', reference: 'the same over loopback', refValue: refs.connectMs,
        note: 'every API call, the watch and the port-forward and SSH handshakes cross the link: the difference is the round trips in the start-up',
      },
      { name: `${at}: request p50 via exchange`, value: routed.exchange.p50, unit: 'ms', reference: oneTrip, refValue: direct.p50 + s.rttMs, note: `${REQUESTS} sequential keep-alive GETs from a pod: router → SSH over the port-forward and the link → plugin → laptop echo server` },
      { name: `${at}: request p99 via exchange`, value: routed.exchange.p99, unit: 'ms', reference: oneTrip.replace('original pod', 'original pod p99'), refValue: direct.p99 + s.rttMs },
      { name: `${at}: tagged request p50 via mesh`, value: routed.mesh.p50, unit: 'ms', reference: oneTrip, refValue: direct.p50 + s.rttMs },
      { name: `${at}: tagged request p99 via mesh`, value: routed.mesh.p99, unit: 'ms', reference: oneTrip.replace('original pod', 'original pod p99'), refValue: direct.p99 + s.rttMs },
      {
        name: `${at}: \`kubectl kt status\` (median of ${STATUS_RUNS})`, value: status.kt, unit: 'ms', reference: '`kubectl get pods,svc`, discovery cached', refValue: status.get,
        note: `goal ≤ 1×; the plugin alone (\`kubectl-kt status\`) ${status.plugin.toFixed(0)} ms: both lists are asked at once`,
      },
    ];
  } finally {
    for (const child of children.reverse()) await stop(child, 'SIGINT');
    await link.close();
  }
}

const STATUS_RUNS = 5;

/** Median wall times of `kubectl kt status`, the plugin alone and `kubectl get pods,svc`, run alternately, after one unmeasured round (caches). */
async function statusOverLink(spawn: Spawn, dir: string): Promise<{ kt: number; plugin: number; get: number }> {
  const cmds = { kt: ['kubectl', 'kt', 'status'], plugin: ['kubectl-kt', 'status'], get: ['kubectl', 'get', 'pods,svc'] };
  const times: Record<keyof typeof cmds, number[]> = { kt: [], plugin: [], get: [] };
  for (let i = 0; i <= STATUS_RUNS; i++) {
    for (const k of Object.keys(cmds) as (keyof typeof cmds)[]) {
      const [cmd, ...args] = cmds[k];
      const t0 = performance.now();
      const child = spawn(cmd, [...args, '-n', NS], { XDG_CACHE_HOME: dir });
      child.stdout?.resume();
      const err = new Lines(child, 'stderr', cmds[k].join(' '));
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`${cmds[k].join(' ')} over the link: exit ${code}: ${err.text()}`);
      if (i > 0) times[k].push(performance.now() - t0);
    }
  }
  return { kt: median(times.kt), plugin: median(times.plugin), get: median(times.get) };
}

export async function run(): Promise<BenchRow[]> {
  const c = await startCluster();
  const dir = mkdtempSync(join(tmpdir(), 'kt-bench-link-'));
  const { spawn: spawnLaptop, stopAll } = laptopSpawner(c);
  try {
    const rows: BenchRow[] = [];
    for (const s of SETTINGS) rows.push(...(await checkEmulator(c, dir, s)));

    const { sourceIp, web } = await setUpBenchNamespace(c, NS);
    const sshd = await openSshProxyPod(c, NS, dir, 'kt-link-sshd');
    const plain = await startConnect(spawnLaptop, 'over loopback');
    await stop(plain.child, 'SIGINT');
    const refs: Refs = { sshd, connectMs: plain.ms, sourceIp, webIp: podIp(web), webPod: web.metadata.name };
    for (const s of SETTINGS) rows.push(...(await overLink(c, dir, s, refs, spawnLaptop)));
    return rows;
  } finally {
    await stopAll();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
