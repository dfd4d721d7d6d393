// The router (dist/kt-proxy.cjs) against hostile clients, the long versions
// of test/e2e/router-hostile.test.ts: origin requests/s with 1,000
// mesh routes registered against none; normal requests/s during a rapid
// reset storm of reconnecting HTTP/2 clients and during a flood of unread
// pipelined requests, each against the quiet router in the same run; the
// router's RSS at the end of each flood is in the notes.
import { execFile } from 'node:child_process';
import type { TestContext } from 'node:test';
import net from 'node:net';
import { promisify } from 'node:util';
import { PROTOCOL_VERSION } from '../../contract/protocol.ts';
import { requestRoute } from '../../plugin/src/tunnel/index.ts';
import { FRAME, frame, GET_BLOCK, rawH2, rst, startProxy } from '../e2e/router-hostile.ts';
import type { ProxyProc } from '../e2e/router-hostile.ts';
import type { BenchRow } from './run.ts';

const LOAD_MS = 5000;
const FLOOD_MS = 60_000;
const CONNS = 16;

/** CONNS keep-alive clients sending untagged GETs for `ms`: requests/s. */
async function reqPerSec(port: number, ms = LOAD_MS): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (performance.now() < end) {
        const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
        if (r?.ok) {
          await r.arrayBuffer();
          n++;
        }
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** wrk (apt; `bash .ci/run` installs it) with CONNS keep-alive connections: requests/s of untagged GETs. */
async function wrkRate(port: number, ms = LOAD_MS, extra: string[] = []): Promise<number> {
  const { stdout } = await promisify(execFile)('wrk', ['-t1', `-c${CONNS}`, `-d${Math.round(ms / 1000)}s`, ...extra, `http://127.0.0.1:${port}/`]);
  return Number(/Requests\/sec:\s+([0-9.]+)/.exec(stdout)?.[1]);
}

/** A stand-in for node:test's context: the bench closes what startProxy opened. */
function context(): { t: TestContext; close(): Promise<void> } {
  const fns: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => fns.push(fn) } as unknown as TestContext;
  return {
    t,
    async close() {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

/** `n` exact mesh routes, 32 per SSH session (the cap). */
async function exactRoutes(p: ProxyProc, n: number): Promise<void> {
  for (let s = 0; s * 32 < n; s++) {
    const tunnel = await p.tunnel();
    for (let i = 0; i < 32 && s * 32 + i < n; i++) {
      await requestRoute(tunnel, { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: [{ name: 'x-kt-version', value: `dev-${s}-${i}` }], owner: `dev${s}@laptop`, session: `s${s}` }, { host: '127.0.0.1', port: 9 });
    }
  }
}

/** Reconnecting rapid-reset clients until `stop` says so. */
async function resetStorm(p: ProxyProc, until: number): Promise<number> {
  const burst = Buffer.concat(Array.from({ length: 1000 }, (_, i) => Buffer.concat([frame(FRAME.HEADERS, 0x5, 2 * i + 1, GET_BLOCK), rst(2 * i + 1, 8)])));
  let conns = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (Date.now() < until && p.alive()) {
        const c = rawH2(p.port);
        conns++;
        await c.ready;
        c.sock.write(burst);
        await Promise.race([c.closed, new Promise((r) => setTimeout(r, 2000))]);
        c.sock.destroy();
      }
    }),
  );
  return conns;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const ctx = context();
  try {
    // The heap cap the proxy pods run with (PROXY_HEAP_MB, plugin/src/kube/shadow.ts).
    const p = await startProxy(ctx.t, { env: { NODE_OPTIONS: '--max-old-space-size=96' } });
    const quietWrk = await wrkRate(p.port);
    const t0 = performance.now();
    // 936 exact + 64 regex-only below = 1,000, the router's cap.
    await exactRoutes(p, 936);
    const regTime = performance.now() - t0;
    const manyWrk = await wrkRate(p.port);
    const many = await reqPerSec(p.port);
    rows.push({
      name: 'router req/s (wrk), 936 exact mesh routes',
      value: manyWrk,
      unit: 'req/s',
      reference: 'same router, no routes',
      refValue: quietWrk,
      note: `RSS ${p.rssMb().toFixed(0)} MB with 936 routes, registered over 32 SSH sessions in ${(regTime / 1000).toFixed(1)} s (before the index and the caps: 20,000 routes, scanned, cut 31,400 to 1,040 req/s)`,
    });
    // 64 regex-only routes (the cap), 32 per session: these are tried on every request that has the header.
    for (let s = 0; s < 2; s++) {
      const tunnel = await p.tunnel();
      for (let i = 0; i < 32; i++) {
        await requestRoute(tunnel, { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: [{ name: 'x-user', regex: `user-${s}-${i}-[a-z]+` }], owner: 'rx@laptop', session: `rx${s}` }, { host: '127.0.0.1', port: 9 });
      }
    }
    const scanWrk = await wrkRate(p.port, LOAD_MS, ['-H', `x-user: ${'a'.repeat(64)}`]);
    rows.push({ name: 'router req/s (wrk), 936 exact + 64 regex-only routes, header present', value: scanWrk, unit: 'req/s', reference: 'same router, no routes', refValue: quietWrk });
    const stormEnd = Date.now() + FLOOD_MS;
    const cpu0 = p.cpuMs();
    const lines0 = p.lines();
    const [stormRate, conns] = await Promise.all([reqPerSec(p.port, FLOOD_MS - 2000), resetStorm(p, stormEnd)]);
    rows.push({
      name: `router req/s during ${FLOOD_MS / 1000} s rapid-reset storm`,
      value: stormRate,
      unit: 'req/s',
      reference: 'same router, quiet',
      refValue: many,
      note: `${conns} reconnecting connections × 1,000 reset streams, router ${((p.cpuMs() - cpu0) / FLOOD_MS).toFixed(2)} cores, ${p.lines() - lines0} log lines, RSS ${p.rssMb().toFixed(0)} MB, alive ${p.alive()}`,
    });

    const req = 'GET /bytes/60000 HTTP/1.1\r\nHost: svc\r\n\r\n'.repeat(3000);
    const socks = Array.from({ length: 20 }, () => {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      s.pause();
      s.write(req);
      return s;
    });
    const pipeRate = await reqPerSec(p.port, 20_000);
    rows.push({
      name: 'router req/s, 20 clients × 3,000 unread pipelined 60 kB requests',
      value: pipeRate,
      unit: 'req/s',
      reference: 'same router, quiet',
      refValue: many,
      note: `RSS ${p.rssMb().toFixed(0)} MB while 60,000 answers (3.6 GB) wait unread, alive ${p.alive()}`,
    });
    for (const s of socks) s.destroy();
  } finally {
    await ctx.close();
  }
  return rows;
}
