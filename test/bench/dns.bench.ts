// DNS forwarder throughput: UDP queries answered per second through the
// proxy's forwarder, against the same load sent straight to the upstream.
// The upstream is a byte-level responder (one A record for any question) in
// its own process, the forwarder runs in another, the load generator here
// keeps many queries in flight on one socket, for a bounded count and time.
//
// Like with like: the short name's row asks the forwarder for `web`, which
// its search list turns into `web.shop.svc.cluster.local` (the first suffix
// answers: the responder knows every name), so each client query costs one
// upstream query for the same name the direct reference asks. A forwarded
// query is two datagrams in and two out where the direct one is one and
// one, and on two cores three processes share what two had; so the raw row
// is also judged against a bare relay (datagrams passed on by ID, no DNS
// logic: the least a Node forwarder can do), and the notes give each
// process's CPU time per query, read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import * as packet from 'dns-packet';
import type { BenchRow } from './run.ts';
import { median } from './stats.ts';

const HOST = '127.0.0.1';
const IN_FLIGHT = 256;
const WARMUP = 2_000;
const MAX_QUERIES = 50_000;
const MAX_MS = 2_000;
const ROUNDS = 3;
/** A query not answered in this time counts as lost and frees its slot. */
const LOST_AFTER_MS = 1_000;

// Answers any query with `<qname> 5 IN A 10.0.0.5`, copying ID, question and RD.
const RESPONDER = `
import { createSocket } from 'node:dgram';
const s = createSocket('udp4');
s.on('message', (m, r) => {
  if (m.length < 12) return;
  let o = 12;
  while (o < m.length && m[o] !== 0) o += m[o] + 1;
  o += 5;
  if (o > m.length) return;
  const out = Buffer.allocUnsafe(o + 16);
  m.copy(out, 0, 0, o);
  out[2] = 0x80 | (m[2] & 0x79);
  out[3] = 0x80;
  out.writeUInt16BE(1, 6); out.writeUInt16BE(0, 8); out.writeUInt16BE(0, 10);
  out.writeUInt16BE(0xc00c, o); out.writeUInt16BE(1, o + 2); out.writeUInt16BE(1, o + 4);
  out.writeUInt32BE(5, o + 6); out.writeUInt16BE(4, o + 10); out.writeUInt32BE(0x0a000005, o + 12);
  s.send(out, r.port, r.address);
});
s.bind(0, '${HOST}', () => { s.setRecvBufferSize(1 << 22); console.log(s.address().port); });
`;

// Passes each datagram on with a sequential ID and back with the client's:
// what any UDP forwarder in Node must do, and nothing more.
const RELAY = `
import { createSocket } from 'node:dgram';
const down = createSocket('udp4');
const up = createSocket('udp4');
const waiting = new Map();
let next = 0;
up.on('message', (m) => {
  const w = waiting.get(m.readUInt16BE(0));
  if (!w) return;
  waiting.delete(m.readUInt16BE(0));
  m.writeUInt16BE(w.id, 0);
  down.send(m, w.port, w.address);
});
down.on('message', (m, r) => {
  next = (next + 1) & 0xffff;
  waiting.set(next, { id: m.readUInt16BE(0), port: r.port, address: r.address });
  m.writeUInt16BE(next, 0);
  up.send(m);
});
up.connect(Number(process.argv[1]), '${HOST}', () => down.bind(0, '${HOST}', () => {
  up.setRecvBufferSize(1 << 20);
  down.setRecvBufferSize(1 << 20);
  console.log(down.address().port);
}));
`;

const FORWARDER = `
import { startDnsForwarder } from ${JSON.stringify(pathToFileURL(new URL('../../proxy-image/src/dns/index.ts', import.meta.url).pathname).href)};
const [upstreamPort, search] = process.argv.slice(1);
const fw = await startDnsForwarder({ host: '${HOST}', port: 0, upstreams: [{ host: '${HOST}', port: Number(upstreamPort) }], search: JSON.parse(search), ndots: 5 });
console.log(fw.port);
`;

/** Start `node -e code args`, resolve with it and the port it prints. */
async function child(code: string, args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const [line] = (await Promise.race([once(lines, 'line'), once(proc, 'exit').then(() => [''])])) as [string];
  const port = Number(line);
  if (!Number.isInteger(port) || port <= 0) {
    proc.kill();
    throw new Error(`bench child did not start (printed ${JSON.stringify(line)})`);
  }
  return { proc, port };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  await exited;
}

interface LoadResult {
  qps: number;
  answered: number;
  lost: number;
  /** CPU time (user + system) of each watched process per answered query, µs; NaN without /proc. */
  cpuUs: number[];
}

/** User + system CPU time of a process so far, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** Clock ticks per second (USER_HZ): 100 on Linux. */
const TICK_US = 10_000;

/** Keep IN_FLIGHT queries for `name` outstanding until `count` are answered or `maxMs` passes; `watch`: processes whose CPU time to count. */
async function load(port: number, name: string, count: number, maxMs: number, watch: ChildProcess[]): Promise<LoadResult> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, HOST, r));
  sock.setRecvBufferSize(1 << 22);
  const query = packet.encode({ type: 'query', id: 0, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A' }] });
  const sentAt = new Map<number, number>();
  let nextId = 0;
  let answered = 0;
  let lost = 0;
  let sent = 0;
  const ticks = watch.map((p) => cpuTicks(p.pid));
  const start = performance.now();
  const deadline = start + maxMs;
  return new Promise((resolve) => {
    const send = (): void => {
      while (sentAt.size < IN_FLIGHT && sent < count + IN_FLIGHT && performance.now() < deadline) {
        do nextId = (nextId + 1) & 0xffff;
        while (sentAt.has(nextId));
        // A buffer per datagram: dgram sends asynchronously and keeps a reference.
        const msg = Buffer.from(query);
        msg.writeUInt16BE(nextId, 0);
        sentAt.set(nextId, performance.now());
        sent++;
        sock.send(msg, port, HOST);
      }
    };
    const finish = (): void => {
      clearInterval(sweep);
      sock.close();
      const secs = (performance.now() - start) / 1000;
      const cpuUs = watch.map((p, i) => ((cpuTicks(p.pid) - ticks[i]) * TICK_US) / answered);
      resolve({ qps: answered / secs, answered, lost, cpuUs });
    };
    // Reclaim the slots of lost datagrams so the window does not shrink to nothing.
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [id, t] of sentAt) {
        if (now - t > LOST_AFTER_MS) {
          sentAt.delete(id);
          lost++;
        }
      }
      if (now >= deadline) finish();
      else send();
    }, 100);
    sock.on('message', (m) => {
      if (m.length < 12 || !sentAt.delete(m.readUInt16BE(0))) return;
      if (++answered >= count || performance.now() >= deadline) finish();
      else send();
    });
    send();
  });
}

/** Per load: warm up, then one measured run. */
async function measure(port: number, name: string, watch: ChildProcess[]): Promise<LoadResult> {
  await load(port, name, WARMUP, MAX_MS, []);
  return load(port, name, MAX_QUERIES, MAX_MS, watch);
}

const lost = (rs: LoadResult[]): number => rs.reduce((n, r) => n + r.lost, 0);
const cpu = (rs: LoadResult[], i: number): string => median(rs.map((r) => r.cpuUs[i])).toFixed(0);
const common = `median of ${ROUNDS} alternating runs of up to ${MAX_MS / 1000} s; ${IN_FLIGHT} in flight on one UDP socket; load generator, forwarder and upstream are three processes on this machine`;

export async function run(): Promise<BenchRow[]> {
  const upstream = await child(RESPONDER, []);
  const relay = await child(RELAY, [String(upstream.port)]);
  const rows: BenchRow[] = [];
  try {
    const cases: [string, string, string[]][] = [
      ['dns forwarder: UDP queries/s, forwarded as raw bytes', 'web.shop.svc.cluster.local', []],
      ['dns forwarder: UDP queries/s, short name via search list', 'web', ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local']],
    ];
    for (const [label, name, search] of cases) {
      const fw = await child(FORWARDER, [String(upstream.port), JSON.stringify(search)]);
      const raw = search.length === 0;
      try {
        // Direct and forwarded runs (and the relay's) alternate, so a busy machine slows them alike.
        const direct: LoadResult[] = [];
        const via: LoadResult[] = [];
        const relayed: LoadResult[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          direct.push(await measure(upstream.port, 'web.shop.svc.cluster.local', [upstream.proc]));
          via.push(await measure(fw.port, name, [fw.proc, upstream.proc]));
          if (raw) relayed.push(await measure(relay.port, name, [relay.proc, upstream.proc]));
        }
        const value = median(via.map((r) => r.qps));
        rows.push({
          name: label,
          value,
          unit: 'queries/s',
          reference: 'same load straight to the upstream',
          refValue: median(direct.map((r) => r.qps)),
          note: `${common}; ${lost(via)} lost through the forwarder, ${lost(direct)} direct; CPU per query: forwarder ${cpu(via, 0)} µs, upstream ${cpu(direct, 0)} µs`,
        });
        if (raw) {
          rows.push({
            name: '… the same, against a bare UDP relay',
            value,
            unit: 'queries/s',
            reference: 'a Node relay passing datagrams on by ID',
            refValue: median(relayed.map((r) => r.qps)),
            note: `${common}; ${lost(relayed)} lost through the relay; CPU per query: relay ${cpu(relayed, 0)} µs`,
          });
        }
      } finally {
        await stop(fw.proc);
      }
    }
  } finally {
    await stop(relay.proc);
    await stop(upstream.proc);
  }
  return rows;
}
