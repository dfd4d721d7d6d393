// Queries to the upstream name servers: UDP through one socket per address
// family, TCP through one pipelined connection per server (RFC 7766 §6.2.1),
// each query with its own ID, a timeout, and failover to the next server.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket } from 'node:net';
import type { Upstream } from './resolvconf.ts';
import { HEADER_LEN, questionEndOffset } from './wire.ts';
import { FrameReader, frame } from '../../../contract/dns/framing.ts';

export interface UpstreamOptions {
  upstreams: readonly Upstream[];
  /** Per try; the next server is asked when it passes. */
  timeoutMs: number;
  /** How many tries in all (each on the next server). */
  attempts: number;
  /** Start each query at the next server in turn (resolv.conf `options rotate`). */
  rotate: boolean;
  /** Queries waiting for an answer at once; more are refused at once. */
  maxPending: number;
  debug: (m: string) => void;
}

/** One query across its tries. */
interface QueryState {
  msg: Buffer;
  questionEnd: number;
  transport: 'udp' | 'tcp';
  /** The server index of the first try. */
  start: number;
  /** Tries made so far. */
  attempt: number;
  done(resp: Buffer | undefined): void;
}

/** One UDP try waiting for its answer. */
interface Pending {
  query: QueryState;
  /** The query as sent: its question is what the answer must repeat. */
  sent: Buffer;
  index: number;
  /** performance.now() after which the try has failed. */
  deadline: number;
}

/** UDP tries time out this much after their deadline at most: one timer serves all the tries due in that span. */
const SWEEP_SLACK_MS = 50;

export class UpstreamPool {
  private readonly opts: UpstreamOptions;
  private readonly udp = new Map<number, Promise<UdpSocket | undefined>>();
  /** The connected socket per server, once its connect has finished. */
  private readonly udpReady = new Map<number, UdpSocket>();
  private readonly tcp = new Map<number, TcpUpstream>();
  /**
   * Key: server index × 0x10000 + ID. In insertion order, which is
   * deadline order (every try waits timeoutMs), so the sweep stops at the
   * first try not yet due. One timer for all tries rather than one per
   * query: at tens of thousands of queries a second a timer each shows.
   */
  private readonly pendingUdp = new Map<number, Pending>();
  private sweep: NodeJS.Timeout | undefined;
  private pendingCount = 0;
  /** The server to start at: stays on one that answers, moves past one that times out (glibc without rotate). */
  private current = 0;
  private closed = false;

  constructor(opts: UpstreamOptions) {
    if (opts.upstreams.length === 0) throw new Error('no upstream name servers');
    this.opts = opts;
  }

  /**
   * Send a query (its ID is replaced) and resolve with the raw response (its
   * ID is the one we chose; the caller puts the client's back), or undefined
   * when no server answered in time or too many queries are in flight.
   */
  query(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    return new Promise((resolve) => this.ask(msg, transport, resolve));
  }

  /** query() with a callback, called once: no promise per try on the forwarder's hot path. */
  ask(msg: Buffer, transport: 'udp' | 'tcp', done: (resp: Buffer | undefined) => void): void {
    const questionEnd = this.closed || this.pendingCount >= this.opts.maxPending ? -1 : questionEndOffset(msg);
    if (questionEnd < 0) {
      done(undefined);
      return;
    }
    const start = this.current;
    if (this.opts.rotate) this.current = (this.current + 1) % this.opts.upstreams.length;
    this.pendingCount++;
    this.attempt({ msg, questionEnd, transport, start, attempt: 0, done }, undefined);
  }

  /** Called with the previous try's response (undefined: none yet, or it failed): finish, or try the next server. */
  private attempt(q: QueryState, resp: Buffer | undefined): void {
    const n = this.opts.upstreams.length;
    if (resp) {
      if (!this.opts.rotate) this.current = (q.start + q.attempt - 1) % n;
      this.pendingCount--;
      q.done(resp);
      return;
    }
    if (q.attempt > 0) {
      const index = (q.start + q.attempt - 1) % n;
      const up = this.opts.upstreams[index];
      this.opts.debug(`upstream ${up.host}:${up.port} (${q.transport}) gave no answer, trying the next`);
      if (!this.opts.rotate && this.current === index) this.current = (index + 1) % n;
    }
    if (q.attempt >= Math.max(this.opts.attempts, n) || this.closed) {
      this.pendingCount--;
      q.done(undefined);
      return;
    }
    const index = (q.start + q.attempt) % n;
    q.attempt++;
    if (q.transport === 'tcp') {
      this.tryTcp(index, q.msg).then((r) => this.attempt(q, r), () => this.attempt(q, undefined));
      return;
    }
    const ready = this.udpReady.get(index);
    if (ready) this.sendUdp(index, ready, q);
    else void this.udpSocket(index).then((sock) => (sock && !this.closed ? this.sendUdp(index, sock, q) : this.attempt(q, undefined)));
  }

  private sendUdp(index: number, sock: UdpSocket, q: QueryState): void {
    const base = index * 0x10000;
    // A random ID not in use (RFC 5452 §4.3: IDs must not be guessable).
    let id = -1;
    for (let i = 0; i < 32 && id < 0; i++) {
      const pick = (Math.random() * 0x10000) | 0;
      if (!this.pendingUdp.has(base + pick)) id = pick;
    }
    if (id < 0) {
      this.attempt(q, undefined);
      return;
    }
    const out = Buffer.from(q.msg);
    out.writeUInt16BE(id, 0);
    this.pendingUdp.set(base + id, { query: q, sent: out, index, deadline: performance.now() + this.opts.timeoutMs });
    this.armSweep();
    // No send callback (it costs a tick per query): a failed send on a
    // connected socket is an 'error' event, which fails this server's tries.
    sock.send(out);
  }

  /** Runs the sweep when the oldest try is due (plus the slack), while tries are waiting. */
  private armSweep(): void {
    if (this.sweep || this.closed) return;
    const oldest = this.pendingUdp.values().next();
    if (oldest.done) return;
    this.sweep = setTimeout(() => this.expire(), Math.max(0, oldest.value.deadline - performance.now()) + SWEEP_SLACK_MS);
  }

  private expire(): void {
    this.sweep = undefined;
    const now = performance.now();
    // Collected first: a failed try's retry joins the map, and must not be swept in the same pass.
    const due: Pending[] = [];
    for (const [key, p] of this.pendingUdp) {
      if (p.deadline > now) break;
      this.pendingUdp.delete(key);
      due.push(p);
    }
    for (const p of due) this.attempt(p.query, undefined);
    this.armSweep();
  }

  /**
   * One UDP socket per server, connected to it: the kernel then drops
   * datagrams from any other address (RFC 5452 §9.1 wants the source
   * checked) and sends skip the per-datagram address lookup.
   */
  private udpSocket(index: number): Promise<UdpSocket | undefined> {
    let sock = this.udp.get(index);
    if (!sock) {
      const up = this.opts.upstreams[index];
      const s = createSocket(isIPv6(up.host) ? 'udp6' : 'udp4');
      s.on('message', (buf) => this.onUdpResponse(index, buf));
      s.on('error', (err: NodeJS.ErrnoException) => {
        this.opts.debug(`upstream ${up.host}:${up.port} udp: ${err.message}`);
        // ICMP port unreachable on a connected socket (nobody listens
        // there), or a send that failed: fail over now instead of waiting
        // for the timeout.
        this.failUdp(index);
      });
      // dgram's send(msg, cb) form is only valid once connected, so every
      // query waits for the connect.
      sock = new Promise((resolve) => {
        const failed = (): void => {
          this.udp.delete(index);
          this.udpReady.delete(index);
          s.close();
          resolve(undefined);
        };
        s.once('error', failed);
        s.connect(up.port, up.host, () => {
          s.off('error', failed);
          // Every answer to the queries in flight arrives here; the default
          // buffer (about 200 KiB) drops some once a few hundred wait.
          try {
            s.setRecvBufferSize(1 << 20);
          } catch {
            // Keep the system default.
          }
          this.udpReady.set(index, s);
          resolve(s);
        });
      });
      this.udp.set(index, sock);
    }
    return sock;
  }

  private failUdp(index: number): void {
    const failed: Pending[] = [];
    for (const [key, p] of this.pendingUdp) {
      if (p.index !== index) continue;
      this.pendingUdp.delete(key);
      failed.push(p);
    }
    for (const p of failed) this.attempt(p.query, undefined);
  }

  /**
   * Accept a datagram only from the server we asked, with an ID we are
   * waiting for and the question we sent (RFC 5452 §9.1): anything else is
   * late, stray or forged and is dropped.
   */
  private onUdpResponse(index: number, buf: Buffer): void {
    if (buf.length < HEADER_LEN || (buf[2] & 0x80) === 0) return;
    const key = index * 0x10000 + buf.readUInt16BE(0);
    const p = this.pendingUdp.get(key);
    if (!p) return;
    const qEnd = questionEndOffset(buf);
    if (qEnd < 0 || !sameQuestion(buf, qEnd, p.sent, p.query.questionEnd)) return;
    this.pendingUdp.delete(key);
    this.attempt(p.query, buf);
  }

  private tryTcp(index: number, msg: Buffer): Promise<Buffer | undefined> {
    let conn = this.tcp.get(index);
    if (!conn || conn.dead) {
      conn = new TcpUpstream(this.opts.upstreams[index], this.opts.debug);
      this.tcp.set(index, conn);
    }
    for (let i = 0; i < 32; i++) {
      const id = (Math.random() * 0x10000) | 0;
      if (!conn.has(id)) return conn.send(msg, id, this.opts.timeoutMs);
    }
    return Promise.resolve(undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweep);
    this.sweep = undefined;
    const waiting = [...this.pendingUdp.values()];
    this.pendingUdp.clear();
    for (const p of waiting) this.attempt(p.query, undefined);
    for (const c of this.tcp.values()) c.destroy();
    this.tcp.clear();
    const socks = await Promise.all(this.udp.values());
    await Promise.all(socks.map((s) => s && new Promise<void>((r) => s.close(() => r()))));
    this.udp.clear();
    this.udpReady.clear();
  }
}

/** One TCP connection to one server, many queries on it at once, answers matched by ID. */
class TcpUpstream {
  private readonly sock: Socket;
  private readonly waiting = new Map<number, { resolve(r: Buffer | undefined): void; timer: NodeJS.Timeout }>();
  dead = false;

  constructor(up: Upstream, debug: (m: string) => void) {
    this.sock = connect({ host: up.host, port: up.port });
    this.sock.setNoDelay(true);
    const reader = new FrameReader((m) => this.onMessage(m));
    this.sock.on('data', (d: Buffer) => reader.push(d));
    this.sock.on('error', (err) => debug(`upstream tcp ${up.host}:${up.port}: ${err.message}`));
    this.sock.on('close', () => this.fail());
  }

  has(id: number): boolean {
    return this.waiting.has(id);
  }

  send(msg: Buffer, id: number, timeoutMs: number): Promise<Buffer | undefined> {
    if (this.dead) return Promise.resolve(undefined);
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
      this.sock.write(frame(out));
    });
  }

  private onMessage(m: Buffer): void {
    if (m.length < HEADER_LEN) return;
    const w = this.waiting.get(m.readUInt16BE(0));
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(m.readUInt16BE(0));
    w.resolve(m);
  }

  /** The server closed (idle timeout, restart): every query on it fails over. */
  private fail(): void {
    this.dead = true;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.waiting.clear();
  }

  destroy(): void {
    this.sock.destroy();
    this.fail();
  }
}

/**
 * The question sections (from the header to aEnd / bEnd) are the same but
 * for ASCII case: servers may echo a name in another case (DNS 0x20,
 * draft-vixie-dnsext-dns0x20), and names compare without case (RFC 4343).
 */
function sameQuestion(a: Buffer, aEnd: number, b: Buffer, bEnd: number): boolean {
  if (aEnd !== bEnd) return false;
  for (let i = HEADER_LEN; i < aEnd; i++) {
    const x = a[i];
    const y = b[i];
    if (x !== y && ((x | 0x20) !== (y | 0x20) || (x | 0x20) < 0x61 || (x | 0x20) > 0x7a)) return false;
  }
  return true;
}
