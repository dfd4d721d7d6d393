// The built proxy (dist/kt-proxy.cjs) in the router role as a process, with
// what the hostile-client tests watch from outside: its RSS, CPU
// time and open descriptors from /proc, its log lines, and the latency of
// normal requests sent through it while a flood runs. Also raw HTTP/2
// frames, for clients node:http2 would not play (floods, resets, FIN
// without GOAWAY).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENV, PROTOCOL_VERSION, ROUTER_ENV } from '../../contract/protocol.ts';
import type { HeaderMatch } from '../../contract/protocol.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import type { Tunnel } from '../../plugin/src/tunnel/index.ts';
import { quantile } from '../bench/stats.ts';
import { echo } from '../unit/router-fixtures.ts';

export const DIST_PROXY = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'kt-proxy.cjs');

export interface ProxyProc {
  pid: number;
  ssh: number;
  health: number;
  /** The router's listener for Service port 80. */
  port: number;
  originPort: number;
  log(): string;
  /** Log lines written so far. */
  lines(): number;
  alive(): boolean;
  rssMb(): number;
  /** User + system CPU time of the process, in ms. */
  cpuMs(): number;
  fds(): number;
  /** An SSH tunnel to the router, closed after the test. */
  tunnel(): Promise<Tunnel>;
  /** A mesh route to a fresh echo "laptop" named `name`. */
  mesh(name: string, headers: HeaderMatch[]): Promise<void>;
}

/** Starts the router with an echo origin; `nofile` runs it under `prlimit --nofile`. */
export async function startProxy(t: TestContext, opts: { nofile?: number; env?: Record<string, string> } = {}): Promise<ProxyProc> {
  const origin = await echo('origin-pod');
  const key = makeSessionKey();
  const cmd = opts.nofile ? ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--', process.execPath, DIST_PROXY] : [process.execPath, DIST_PROXY];
  const child = spawn(cmd[0], cmd.slice(1), {
    env: {
      PATH: process.env.PATH ?? '',
      [ENV.role]: 'router',
      [ENV.sshPort]: '0',
      [ENV.authorizedKeys]: key.publicKey,
      [ROUTER_ENV.healthPort]: '0',
      [ROUTER_ENV.origin]: '127.0.0.1',
      [ROUTER_ENV.ports]: JSON.stringify([{ name: 'http', servicePort: 80, listenPort: 0, originPort: origin.port }]),
      ...opts.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let lines = 0;
  let exited = false;
  const exit = once(child, 'exit');
  void exit.then(() => (exited = true));
  const closers: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    await origin.close();
  });
  const started = await new Promise<{ ssh: number; health: number; port: number }>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      log += s;
      for (const c of s) if (c === '\n') lines++;
      const m = /router: ssh on 127\.0\.0\.1:(\d+), health on :(\d+), ports 80→(\d+)/.exec(log);
      if (m) resolve({ ssh: Number(m[1]), health: Number(m[2]), port: Number(m[3]) });
    });
    void exit.then(([code]) => reject(new Error(`exited ${String(code)} before starting:\n${log}`)));
  });
  const pid = child.pid as number;
  const proc: ProxyProc = {
    pid,
    ...started,
    originPort: origin.port,
    log: () => log,
    lines: () => lines,
    alive: () => !exited,
    rssMb() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    cpuMs() {
      // Fields 14 and 15 (utime, stime) in clock ticks, after the ")" that ends the command name.
      const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    },
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    async tunnel() {
      const tunnel = await openTunnel({ stream: net.connect(started.ssh, '127.0.0.1'), privateKey: key.privateKey });
      closers.push(() => tunnel.close());
      return tunnel;
    },
    async mesh(name, headers) {
      const laptop = await echo(name);
      closers.push(() => laptop.close());
      const tunnel = await proc.tunnel();
      await requestRoute(tunnel, { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers, owner: `${name}@laptop`, session: `s-${name}` }, { host: '127.0.0.1', port: laptop.port });
    },
  };
  return proc;
}

/** One GET through the router on a fresh connection: status and ms, or an error status 0. */
export async function timedGet(port: number, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; ms: number; pod?: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
    const body = await res.text();
    let pod: string | undefined;
    try {
      pod = (JSON.parse(body) as { pod?: string }).pod;
    } catch {
      pod = undefined;
    }
    return { status: res.status, ms: performance.now() - t0, ...(pod ? { pod } : {}) };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

export interface Probe {
  stop(): Promise<{ n: number; failed: number; p50: number; p99: number }>;
}

/** Normal requests one after another until stopped: the router's answer under a flood. */
export function probe(port: number): Probe {
  const lat: number[] = [];
  let failed = 0;
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const r = await timedGet(port, '/');
      if (r.status === 200) lat.push(r.ms);
      else failed++;
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      const sorted = [...lat].sort((a, b) => a - b);
      return { n: lat.length, failed, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
    },
  };
}

/** Baseline probe: `n` sequential requests. */
export async function baseline(port: number, n = 50): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) lat.push((await timedGet(port)).ms);
  lat.sort((a, b) => a - b);
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) };
}

/** Polls until `ok()` or the deadline; returns whether it held. */
export async function until(ok: () => boolean | Promise<boolean>, deadlineMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await ok()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// --- HTTP/2 frames (RFC 9113 §4.1) -------------------------------------------

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** GET / as an HPACK block: indexed :method GET, :scheme http, :path /, then :authority "x" (RFC 7541 Appendix A). */
export const GET_BLOCK = Buffer.from([0x82, 0x86, 0x84, 0x01, 0x01, 0x78]);

export function rst(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

export interface RawH2 {
  sock: net.Socket;
  /** Frames received so far by type. */
  count: Map<number, number>;
  /** Error codes of RST_STREAM frames received. */
  rstCodes: number[];
  goaway?: number;
  /** Resolves once the server's SETTINGS came and was acknowledged. */
  ready: Promise<void>;
  closed: Promise<void>;
}

/** A raw HTTP/2 connection: preface, empty SETTINGS, ACKs the server's SETTINGS, counts what comes back. */
export function rawH2(port: number): RawH2 {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  let buf = Buffer.alloc(0);
  let readyFn: () => void = () => {};
  const r: RawH2 = {
    sock,
    count: new Map(),
    rstCodes: [],
    ready: new Promise<void>((res) => (readyFn = res)),
    // Not events.once: it rejects on 'error', and a reset is an expected end here.
    closed: new Promise<void>((res) => sock.once('close', () => res())),
  };
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3];
      const flags = buf[4];
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      r.count.set(type, (r.count.get(type) ?? 0) + 1);
      if (type === FRAME.SETTINGS && (flags & 1) === 0) {
        sock.write(frame(FRAME.SETTINGS, 1, 0));
        readyFn();
      }
      if (type === FRAME.RST_STREAM) r.rstCodes.push(payload.readUInt32BE(0));
      if (type === FRAME.GOAWAY) r.goaway = payload.readUInt32BE(4);
    }
  });
  return r;
}
