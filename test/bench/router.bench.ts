// The router's HTTP/1.1 keep-alive hot path: requests/s and latency through
// the router (a kt-proxy process in the router role) on the default route to
// an origin, vs the same load sent to the origin directly and through nginx
// proxy_pass configured the same way (one worker, upstream keep-alive: KT
// Connect's router was nginx, so it is the anchor); untagged requests with a
// mesh route present (a second router) vs none; the tagged path to a
// developer over SSH vs the same requests through OpenSSH's `ssh -R`; h2c
// streams; the router's RSS idle and under load. The load
// generator is wrk (apt) with CONNS keep-alive connections for DURATION_MS,
// or, without wrk, our own below. Origin and laptop are the smallest
// node:http servers, each its own process, so the router is what is measured.
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http2 from 'node:http2';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, PROTOCOL_VERSION, ROUTER_ENV } from '../../contract/protocol.ts';
import { makeSessionKey, openTunnel, requestRoute } from '../../plugin/src/tunnel/index.ts';
import { stderrMatch, terminate } from '../unit/ssh-fixtures.ts';
import type { BenchRow } from './run.ts';
import { opensshArgs, startSshd, stderrTail } from './tunnel.bench.ts';
import { quantile } from './stats.ts';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proxy-image', 'src', 'main.ts');
const CONNS = 50;
const DURATION_MS = 4000;
/** Alternating rounds of the h1 paths; the better run of each is kept. */
const ROUNDS = 3;

export const ORIGIN = `
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

export interface Proc {
  child: ChildProcess;
  match: RegExpExecArray;
}

export async function start(args: string[], env: Record<string, string>, re: RegExp): Promise<Proc> {
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

export async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  await exited;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const WRK = has('wrk');
const NGINX = has('nginx') ? 'nginx' : undefined;

/** wrk's duration: "1.23ms", "850.00us", "1.02s" → ms. */
function wrkMs(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? '');
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

/** CONNS keep-alive connections for DURATION_MS: wrk when installed, else our own generator. */
async function load(port: number, headers: string, duration = DURATION_MS, script?: string): Promise<Load> {
  if (!WRK) return loadOwn(port, headers, duration);
  const args = ['-t1', `-c${CONNS}`, `-d${Math.max(1, Math.round(duration / 1000))}s`, '--latency', ...(script ? ['-s', script] : [])];
  for (const h of headers.split('\r\n').filter(Boolean)) args.push('-H', h);
  // Async: the tagged path's far end (the plugin's tunnel client) runs in this process.
  const out = await new Promise<string>((resolve, reject) => {
    execFile('wrk', [...args, `http://127.0.0.1:${port}/bench`], { encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErrs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErrs ? sockErrs.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: wrkMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
    p99: wrkMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    errors: Number.isFinite(total) ? errors : NaN,
  };
}

/** nginx as a reverse proxy to the origin, configured like the router: one worker, upstream keep-alive. */

async function startNginx(dir: string, originPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const tmp = (n: string) => `${n}_temp_path ${join(dir, n)};`;
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  ${tmp('client_body')} ${tmp('proxy')} ${tmp('fastcgi')} ${tmp('uwsgi')} ${tmp('scgi')}
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`);
  const pidFile = join(dir, 'nginx.pid');
  const child = spawn(NGINX as string, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: 'ignore' });
  // nginx writes its pid file after it has opened its listening sockets: that is the ready signal.
  await new Promise<void>((resolve, reject) => {
    const w = watch(dir, () => {
      if (existsSync(pidFile)) done();
    });
    const onExit = (code: number | null) => {
      w.close();
      reject(new Error(`nginx exited with ${code}: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`));
    };
    const done = () => {
      w.close();
      child.off('exit', onExit);
      resolve();
    };
    child.once('exit', onExit);
    if (existsSync(pidFile)) done();
  });
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Our own generator, for machines without wrk: CONNS keep-alive connections
 * for DURATION_MS. Closed loop by default (each connection sends its next
 * request when the answer is in); with `rate`, open loop: each connection
 * sends on its own schedule (rate / CONNS per second) and latency counts
 * from when a request was due, so a stall delays every request behind it
 * (no coordinated omission).
 */
export async function loadOwn(port: number, headers: string, duration = DURATION_MS, rate?: number): Promise<Load> {
  const req = Buffer.from(`GET /bench HTTP/1.1\r\nHost: svc\r\n${headers}\r\n`, 'latin1');
  const interval = rate ? (CONNS / rate) * 1000 : 0;
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now() + (rate ? 50 : 0);
  const deadline = t0 + duration;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      let k = 0;
      let due = 0;
      let timer: NodeJS.Timeout | undefined;
      const next = () => {
        due = rate ? t0 + (i / CONNS) * interval + k++ * interval : performance.now();
        if (due >= deadline) {
          sock.destroy();
          resolve();
          return;
        }
        const wait = due - performance.now();
        if (wait > 0) timer = setTimeout(() => sock.write(req), wait);
        else sock.write(req);
      };
      sock.on('connect', next);
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
          lat.push(performance.now() - due);
          next();
        }
      });
      sock.on('error', () => {
        errors++;
        clearTimeout(timer);
        resolve();
      });
      sock.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNS }, (_, i) => one(i)));
  const secs = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / secs, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), errors };
}

/** A router process (the kt-proxy in the router role; node's arguments `args`) for one Service port, to origin; its SSH and Service ports. */
export async function startRouter(key: { publicKey: string }, originPort: number, args: string[] = [MAIN]): Promise<Proc & { sshPort: number; port: number }> {
  const p = await start(
    args,
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
  return { ...p, sshPort: Number(p.match[1]), port: Number(p.match[3]) };
}

/**
 * OpenSSH's remote forward to the laptop: sshd listens, each connection
 * rides a forwarded-tcpip channel to `ssh -R`, which connects to the laptop
 * — the tagged path's SSH hop, without the router.
 */
async function sshR(dir: string, laptopPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const openssh = await startSshd(dir);
  const port = await freePort();
  const forward = ['-R', `127.0.0.1:${port}:127.0.0.1:${laptopPort}`];
  const child = spawn('/usr/bin/ssh', opensshArgs({ dir, keyFile: openssh.keyFile, user: process.env.USER ?? 'root', port: openssh.sshdPort }, forward), { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = stderrTail(child, 'ssh -R');
  try {
    await stderrMatch(child, /remote forward success/, 'ssh -R');
  } catch (err) {
    await terminate(child);
    await terminate(openssh.sshd);
    throw new Error(`${(err as Error).message}\n${log()}`, { cause: err });
  }
  return {
    port,
    async stop() {
      await terminate(child);
      await terminate(openssh.sshd);
    },
  };
}

export async function run(): Promise<BenchRow[]> {
  const procs: Proc[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'kt-bench-router-'));
  // sshd refuses to start without its privilege separation directory.
  const madeRunSshd = !existsSync('/run/sshd');
  if (madeRunSshd) mkdirSync('/run/sshd', { mode: 0o755 });
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  let openssh: Awaited<ReturnType<typeof sshR>> | undefined;
  let tunnel: Awaited<ReturnType<typeof openTunnel>> | undefined;
  try {
    const origin = await start(['-e', ORIGIN], { NAME: 'origin' }, /listening on (\d+)/);
    procs.push(origin);
    const laptop = await start(['-e', ORIGIN], { NAME: 'laptop' }, /listening on (\d+)/);
    procs.push(laptop);
    const originPort = Number(origin.match[1]);
    const laptopPort = Number(laptop.match[1]);
    const key = makeSessionKey();
    const router = await startRouter(key, originPort);
    procs.push(router);
    const routerPort = router.port;
    const pid = router.child.pid as number;
    // A second router with a developer's mesh route: untagged requests to it
    // are matched against the route and go to origin, tagged ones go to the
    // laptop over SSH; alternating with the first measures what the route costs.
    const meshRouter = await startRouter(key, originPort);
    procs.push(meshRouter);
    tunnel = await openTunnel({ stream: net.connect(meshRouter.sshPort, '127.0.0.1'), privateKey: key.privateKey });
    await requestRoute(
      tunnel,
      { protocol: PROTOCOL_VERSION, kind: 'mesh', servicePort: 80, headers: [{ name: 'x-kt-version', value: 'bench' }], owner: 'bench', session: 'bench' },
      { host: '127.0.0.1', port: laptopPort },
    );

    if (NGINX) nginx = await startNginx(dir, originPort);
    openssh = await sshR(dir, laptopPort);

    // Warm up every path (JIT, pools), then measure.
    await load(originPort, '', 1000);
    await load(routerPort, '', 1000);
    await load(meshRouter.port, '', 1000);
    await load(meshRouter.port, 'x-kt-version: bench\r\n', 1000);
    await load(openssh.port, '', 1000);
    if (nginx) await load(nginx.port, '', 1000);
    const rssIdle = rssMiB(pid);
    // Other work on the machine moves these numbers by 2×: measure the
    // paths alternately, ROUNDS times, and keep the better run of each.
    let rssPeak = 0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 200);
    const best = (a: Load | undefined, b: Load) => (a && a.rps >= b.rps ? a : b);
    let direct: Load | undefined;
    let routed: Load | undefined;
    let withRoute: Load | undefined;
    let viaNginx: Load | undefined;
    for (let i = 0; i < ROUNDS; i++) {
      direct = best(direct, await load(originPort, ''));
      routed = best(routed, await load(routerPort, ''));
      withRoute = best(withRoute, await load(meshRouter.port, ''));
      if (nginx) viaNginx = best(viaNginx, await load(nginx.port, ''));
    }
    if (!direct || !routed || !withRoute) throw new Error('no measurement');
    clearInterval(sampler);

    // Half of what the router sustains, both paths alternately; the lower p99 of two runs each.
    // With wrk: each connection waits between requests (wrk's delay()), set so the router runs at
    // about half its rate; without wrk, our open-loop generator at that rate.
    const half = Math.round(routed.rps / 2);
    const pause = Math.max(1, Math.round((CONNS / half) * 1000 - routed.p50));
    const script = join(dir, 'half.lua');
    writeFileSync(script, `function delay()\n  return ${pause}\nend\n`);
    const atHalf = (port: number) => (WRK ? load(port, '', DURATION_MS, script) : loadOwn(port, '', DURATION_MS, half));
    const lower = (a: Load | undefined, b: Load) => (a && a.p99 <= b.p99 ? a : b);
    let halfDirect: Load | undefined;
    let halfRouted: Load | undefined;
    for (let i = 0; i < 2; i++) {
      halfDirect = lower(halfDirect, await atHalf(originPort));
      halfRouted = lower(halfRouted, await atHalf(routerPort));
    }
    if (!halfDirect || !halfRouted) throw new Error('no measurement');

    // The tagged path to the laptop, the same requests through OpenSSH's
    // `ssh -R`, and through our SSH pair alone (a tcpip-forward on the
    // router's SSH server to the same client: no HTTP routing), alternately.
    const ourR = await tunnel.forwardIn('127.0.0.1', 0, { host: '127.0.0.1', port: laptopPort });
    await load(ourR.port, '', 1000);
    let tagged: Load | undefined;
    let viaSshR: Load | undefined;
    let viaOurR: Load | undefined;
    for (let i = 0; i < ROUNDS; i++) {
      tagged = best(tagged, await load(meshRouter.port, 'x-kt-version: bench\r\n'));
      viaSshR = best(viaSshR, await load(openssh.port, ''));
      viaOurR = best(viaOurR, await load(ourR.port, ''));
    }
    if (!tagged || !viaSshR || !viaOurR) throw new Error('no measurement');

    // HTTP/2 cleartext: a second router whose origin speaks h2c.
    const h2origin = await start(['-e', H2_ORIGIN], { NAME: 'h2origin' }, /listening on (\d+)/);
    procs.push(h2origin);
    const h2router = await startRouter(key, Number(h2origin.match[1]));
    procs.push(h2router);
    await loadH2(Number(h2origin.match[1]), 1000);
    await loadH2(h2router.port, 1000);
    let h2direct: Load | undefined;
    let h2routed: Load | undefined;
    for (let i = 0; i < ROUNDS; i++) {
      h2direct = best(h2direct, await loadH2(Number(h2origin.match[1])));
      h2routed = best(h2routed, await loadH2(h2router.port));
    }
    if (!h2direct || !h2routed) throw new Error('no measurement');

    const errs = halfDirect.errors + halfRouted.errors + direct.errors + routed.errors + tagged.errors + viaSshR.errors + viaOurR.errors + withRoute.errors + h2direct.errors + h2routed.errors + (viaNginx?.errors ?? 0);
    const note = `${CONNS} keep-alive connections, ${DURATION_MS / 1000} s per run, better of ${ROUNDS} alternating runs, ${WRK ? 'wrk' : 'own load generator (no wrk: apt-get install wrk)'}; errors ${errs}`;
    const nginxRows: BenchRow[] = viaNginx
      ? [
        { name: 'router h1 keep-alive → origin', value: routed.rps, unit: 'req/s', reference: 'nginx proxy_pass, 1 worker, keepalive', refValue: viaNginx.rps, note: 'goal ≥ 0.7× nginx' },
        { name: 'router h1 p99 latency', value: routed.p99, unit: 'ms', reference: 'nginx p99', refValue: viaNginx.p99 },
      ]
      : [];
    return [
      ...nginxRows,
      { name: 'router h1 keep-alive → origin', value: routed.rps, unit: 'req/s', reference: 'direct to origin', refValue: direct.rps, note: note + (NGINX ? '' : '; no nginx (apt-get install nginx): no nginx rows') },
      { name: 'router h1 → origin, mesh route present', value: withRoute.rps, unit: 'req/s', reference: 'router h1, no route', refValue: routed.rps, note: 'goal ≥ 0.9× (untagged requests, a second router with one mesh route)' },
      { name: 'router h1 tagged → laptop (SSH)', value: tagged.rps, unit: 'req/s', reference: 'OpenSSH ssh -R → laptop', refValue: viaSshR.rps, note: 'goal ≥ 0.8×; the reference is sshd listening, each connection a forwarded-tcpip channel to ssh -R, which connects to the laptop' },
      { name: 'our SSH remote forward → laptop, no router', value: viaOurR.rps, unit: 'req/s', reference: 'OpenSSH ssh -R → laptop', refValue: viaSshR.rps, note: 'the tagged path\'s SSH hop alone: the router\'s SSH server and the plugin\'s client (ssh2), a tcpip-forward' },
      { name: 'router h1 tagged → laptop (SSH)', value: tagged.rps, unit: 'req/s', reference: 'our SSH remote forward, no router', refValue: viaOurR.rps },
      { name: 'router h1 tagged → laptop (SSH)', value: tagged.rps, unit: 'req/s', reference: 'direct to origin', refValue: direct.rps },
      { name: 'router h1 p50 latency', value: routed.p50, unit: 'ms', reference: 'direct p50', refValue: direct.p50 },
      { name: 'router h1 p99 latency', value: routed.p99, unit: 'ms', reference: 'direct p99', refValue: direct.p99 },
      {
        name: 'router h1 p99 at half load', value: halfRouted.p99, unit: 'ms', reference: 'direct p99, same load', refValue: halfDirect.p99,
        note: `added ${(halfRouted.p99 - halfDirect.p99).toFixed(2)} ms at p99, ${(halfRouted.p50 - halfDirect.p50).toFixed(2)} ms at p50; goal: ≤ 1 ms added at p99; `
          + `${Math.round(halfRouted.rps)} req/s routed, ${Math.round(halfDirect.rps)} direct (${WRK ? `wrk, ${pause} ms between requests per connection` : 'open loop'})`,
      },
      { name: 'router h2c streams → origin', value: h2routed.rps, unit: 'req/s', reference: 'h2c direct to origin', refValue: h2direct.rps, note: `${H2_SESSIONS} connections × ${H2_STREAMS} streams in flight, better of ${ROUNDS} alternating runs; goal ≥ 0.6×` },
      { name: 'router h2c p99 latency', value: h2routed.p99, unit: 'ms', reference: 'h2c direct p99', refValue: h2direct.p99 },
      { name: 'router RSS under load', value: rssPeak, unit: 'MiB', reference: 'router RSS idle', refValue: rssIdle },
    ];
  } finally {
    await tunnel?.close();
    await nginx?.stop();
    await openssh?.stop();
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
    if (madeRunSshd) rmSync('/run/sshd', { recursive: true, force: true });
  }
}
