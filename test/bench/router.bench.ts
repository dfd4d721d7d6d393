// The router's HTTP/1.1 keep-alive hot path: requests/s and latency through
// the router (a kt-proxy process in the router role) on the default route to
// an origin, vs the same load sent to the origin directly; the tagged path to
// a developer over SSH; the router's RSS idle and under load. The load
// generator is our own (below): CONNS keep-alive connections, each sending
// one GET and waiting for its answer, for DURATION_MS (wrk is not installed
// on the build machines). Origin and laptop are the smallest node:http
// servers, each its own process, so the router is what is measured.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, PROTOCOL_VERSION, ROUTER_ENV } from '../../proxy-image/src/protocol/index.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import type { BenchRow } from './run.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proxy-image', 'src', 'main.ts');
const CONNS = 50;
const DURATION_MS = 4000;

const ORIGIN = `
const http = require('node:http');
const body = Buffer.from('{"pod":"' + process.env.NAME + '"}\\n');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on ' + server.address().port + '\\n'));
`;

const H2_ORIGIN = `
const http2 = require('node:http2');
const body = Buffer.from('{"pod":"' + process.env.NAME + '"}\\n');
const server = http2.createServer();
server.on('stream', (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': body.length });
  stream.end(body);
});
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on ' + server.address().port + '\\n'));
`;
const H2_SESSIONS = 4;
const H2_STREAMS = 25;

/** H2_SESSIONS h2c connections with H2_STREAMS streams in flight each, for DURATION_MS. */
async function loadH2(port: number, duration = DURATION_MS): Promise<Load> {
  const lat: number[] = [];
  let errors = 0;
  const deadline = performance.now() + duration;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: H2_SESSIONS }, async () => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => errors++);
      const stream = () =>
        new Promise<void>((resolve) => {
          const started = performance.now();
          const req = session.request({ ':path': '/bench' });
          req.on('response', (h) => {
            if (h[':status'] !== 200) errors++;
          });
          req.resume();
          req.on('end', () => {
            lat.push(performance.now() - started);
            resolve();
          });
          req.on('error', () => {
            errors++;
            resolve();
          });
          req.end();
        });
      await Promise.all(
        Array.from({ length: H2_STREAMS }, async () => {
          while (performance.now() < deadline) await stream();
        }),
      );
      session.close();
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / secs, p50: lat[Math.floor(lat.length / 2)] ?? NaN, p99: lat[Math.floor(lat.length * 0.99)] ?? NaN, errors };
}

interface Proc {
  child: ChildProcess;
  match: RegExpExecArray;
}

async function start(args: string[], env: Record<string, string>, re: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      const m = re.exec(log);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}:\n${log}`)));
  });
  child.stderr?.resume();
  return { child, match };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  await exited;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** CONNS keep-alive connections, one request in flight each, for DURATION_MS. */
async function load(port: number, headers: string, duration = DURATION_MS): Promise<Load> {
  const req = Buffer.from(`GET /bench HTTP/1.1\r\nHost: svc\r\n${headers}\r\n`, 'latin1');
  const lat: number[] = [];
  let errors = 0;
  const deadline = performance.now() + duration;
  const one = () =>
    new Promise<void>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      let sent = 0;
      const send = () => {
        if (performance.now() >= deadline) {
          sock.destroy();
          resolve();
          return;
        }
        sent = performance.now();
        sock.write(req);
      };
      sock.on('connect', send);
      sock.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.toString('latin1', 0, end);
          const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? '0');
          if (buf.length < end + 4 + len) return;
          if (!head.startsWith('HTTP/1.1 200')) errors++;
          buf = buf.subarray(end + 4 + len);
          lat.push(performance.now() - sent);
          send();
        }
      });
      sock.on('error', () => {
        errors++;
        resolve();
      });
      sock.on('close', () => resolve());
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNS }, one));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
  return { rps: lat.length / secs, p50: q(0.5), p99: q(0.99), errors };
}

export async function run(): Promise<BenchRow[]> {
  const procs: Proc[] = [];
  try {
    const origin = await start(['-e', ORIGIN], { NAME: 'origin' }, /listening on (\d+)/);
    procs.push(origin);
    const laptop = await start(['-e', ORIGIN], { NAME: 'laptop' }, /listening on (\d+)/);
    procs.push(laptop);
    const originPort = Number(origin.match[1]);
    const key = makeSessionKey();
    const router = await start(
      [MAIN],
      {
        [ENV.role]: 'router',
        [ENV.sshPort]: '0',
        [ENV.authorizedKeys]: key.publicKey,
        [ROUTER_ENV.healthPort]: '0',
        [ROUTER_ENV.origin]: '127.0.0.1',
        [ROUTER_ENV.ports]: JSON.stringify([{ servicePort: 80, listenPort: 0, originPort }]),
      },
      /router: ssh on 127\.0\.0\.1:(\d+), health on :(\d+), ports 80→(\d+)/,
    );
    procs.push(router);
    const routerPort = Number(router.match[3]);
    const pid = router.child.pid as number;

    // Warm up both paths (JIT, pools), then measure.
    await load(originPort, '', 1000);
    await load(routerPort, '', 1000);
    const rssIdle = rssMiB(pid);
    // Other work on the machine moves these numbers by 2×: measure both
    // paths alternately, twice, and keep the better run of each.
    let rssPeak = 0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 200);
    const best = (a: Load, b: Load) => (a.rps >= b.rps ? a : b);
    let direct = await load(originPort, '');
    let routed = await load(routerPort, '');
    direct = best(direct, await load(originPort, ''));
    routed = best(routed, await load(routerPort, ''));
    clearInterval(sampler);

    const tunnel = await openTunnel({ stream: net.connect(Number(router.match[1]), '127.0.0.1'), privateKey: key.privateKey });
    await requestRoute(
      tunnel,
      { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: [{ name: 'x-kt-version', value: 'bench' }], owner: 'bench', session: 'bench' },
      { host: '127.0.0.1', port: Number(laptop.match[1]) },
    );
    await load(routerPort, 'x-kt-version: bench\r\n', 1000);
    const tagged = await load(routerPort, 'x-kt-version: bench\r\n');
    // Untagged traffic with a mesh route present: every head is matched.
    const withRoute = await load(routerPort, '');
    await tunnel.close();

    // HTTP/2 cleartext: a second router whose origin speaks h2c.
    const h2origin = await start(['-e', H2_ORIGIN], { NAME: 'h2origin' }, /listening on (\d+)/);
    procs.push(h2origin);
    const h2router = await start(
      [MAIN],
      {
        [ENV.role]: 'router',
        [ENV.sshPort]: '0',
        [ENV.authorizedKeys]: key.publicKey,
        [ROUTER_ENV.healthPort]: '0',
        [ROUTER_ENV.origin]: '127.0.0.1',
        [ROUTER_ENV.ports]: JSON.stringify([{ servicePort: 80, listenPort: 0, originPort: Number(h2origin.match[1]) }]),
      },
      /router: ssh on 127\.0\.0\.1:(\d+), health on :(\d+), ports 80→(\d+)/,
    );
    procs.push(h2router);
    await loadH2(Number(h2origin.match[1]), 1000);
    await loadH2(Number(h2router.match[3]), 1000);
    const h2direct = await loadH2(Number(h2origin.match[1]));
    const h2routed = await loadH2(Number(h2router.match[3]));

    const errs = direct.errors + routed.errors + tagged.errors + withRoute.errors + h2direct.errors + h2routed.errors;
    const note = `${CONNS} keep-alive connections, ${DURATION_MS / 1000} s per run, better of 2 alternating runs, own load generator (no wrk); errors ${errs}`;
    return [
      { name: 'router h1 keep-alive → origin', value: routed.rps, unit: 'req/s', reference: 'direct to origin', refValue: direct.rps, note },
      { name: 'router h1 → origin, mesh route present', value: withRoute.rps, unit: 'req/s', reference: 'direct to origin', refValue: direct.rps },
      { name: 'router h1 tagged → laptop (SSH)', value: tagged.rps, unit: 'req/s', reference: 'direct to origin', refValue: direct.rps },
      { name: 'router h1 p50 latency', value: routed.p50, unit: 'ms', reference: 'direct p50', refValue: direct.p50 },
      { name: 'router h1 p99 latency', value: routed.p99, unit: 'ms', reference: 'direct p99', refValue: direct.p99 },
      { name: 'router h2c streams → origin', value: h2routed.rps, unit: 'req/s', reference: 'h2c direct to origin', refValue: h2direct.rps, note: `${H2_SESSIONS} connections × ${H2_STREAMS} streams in flight` },
      { name: 'router h2c p99 latency', value: h2routed.p99, unit: 'ms', reference: 'h2c direct p99', refValue: h2direct.p99 },
      { name: 'router RSS under load', value: rssPeak, unit: 'MiB', reference: 'router RSS idle', refValue: rssIdle },
    ];
  } finally {
    for (const p of procs.reverse()) await stop(p);
  }
}
