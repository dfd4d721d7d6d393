// The laptop's DNS server for `connect --mode route`: cluster names go through
// the tunnel to the proxy's DNS forwarder (which expands them with the pod's
// search list), everything else to the resolver this machine had before.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Duplex } from 'node:stream';
import { decode } from 'dns-packet';
import { FrameReader, frame } from '../../../contract/dns/framing.ts';

export interface LocalDnsOptions {
  host: string;
  port: number;
  /** A stream to the proxy's DNS forwarder (TCP framing, RFC 1035 §4.2.2). */
  dialCluster: () => Promise<Duplex>;
  /** Nameservers this machine used before (resolv.conf), UDP port 53. */
  upstreams: string[];
  /** Decides whether a query name belongs to the cluster. */
  isClusterName: (name: string) => boolean;
  debug?: (m: string) => void;
  timeoutMs?: number;
}

export interface LocalDns {
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Which names are the cluster's: anything under the cluster domain, `svc` or
 * `svc.NS` forms for the namespaces in scope, and single labels (Service
 * names; the OS resolver sends them bare only when its search list did not
 * already turn them into FQDNs).
 */
export function clusterNameMatcher(opts: { domain: string; namespaces: readonly string[] | 'all' }): (name: string) => boolean {
  const domain = opts.domain.toLowerCase().replace(/\.$/, '');
  return (raw) => {
    const name = raw.toLowerCase().replace(/\.$/, '');
    if (name === domain || name.endsWith(`.${domain}`)) return true;
    const labels = name.split('.');
    if (labels.length === 1) return labels[0] !== '' && labels[0] !== 'localhost';
    const last = labels[labels.length - 1];
    if (last === 'svc' && labels.length >= 3) return opts.namespaces === 'all' || opts.namespaces.includes(labels[labels.length - 2]);
    if (labels.length === 2) return opts.namespaces === 'all' ? false : opts.namespaces.includes(last);
    return false;
  };
}

function servfail(query: Buffer): Buffer | undefined {
  if (query.length < 12) return undefined;
  const out = Buffer.from(query);
  // QR=1, keep opcode and RD; RA=1, RCODE=2 (SERVFAIL).
  out[2] = (query[2] & 0x79) | 0x80;
  out[3] = 0x80 | 0x02;
  return out;
}

export async function startLocalDns(opts: LocalDnsOptions): Promise<LocalDns> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const log = opts.debug ?? (() => undefined);
  const server = createSocket('udp4');
  const upstream = createSocket('udp4');
  // Upstream answers are matched back by the (rewritten) message id.
  const pending = new Map<number, { rinfo: { address: string; port: number }; id: number; timer: NodeJS.Timeout }>();
  let nextId = Math.floor(Math.random() * 0xffff);

  upstream.on('message', (msg) => {
    if (msg.length < 12) return;
    const p = pending.get(msg.readUInt16BE(0));
    if (!p) return;
    pending.delete(msg.readUInt16BE(0));
    clearTimeout(p.timer);
    const out = Buffer.from(msg);
    out.writeUInt16BE(p.id, 0);
    server.send(out, p.rinfo.port, p.rinfo.address);
  });

  const toUpstream = (msg: Buffer, rinfo: { address: string; port: number }): void => {
    const host = opts.upstreams[0];
    if (!host) {
      const f = servfail(msg);
      if (f) server.send(f, rinfo.port, rinfo.address);
      return;
    }
    const id = msg.readUInt16BE(0);
    let wire = (nextId = (nextId + 1) & 0xffff);
    while (pending.has(wire)) wire = (nextId = (nextId + 1) & 0xffff);
    const out = Buffer.from(msg);
    out.writeUInt16BE(wire, 0);
    const timer = setTimeout(() => pending.delete(wire), timeoutMs);
    pending.set(wire, { rinfo, id, timer });
    upstream.send(out, 53, host);
  };

  const cluster = new ClusterLink(opts.dialCluster, timeoutMs, log, (answer, rinfo) => server.send(answer, rinfo.port, rinfo.address));
  const toCluster = (msg: Buffer, rinfo: { address: string; port: number }): void => cluster.query(msg, rinfo);

  server.on('message', (msg, rinfo) => {
    let name: string | undefined;
    try {
      name = decode(msg).questions?.[0]?.name;
    } catch {
      return; // not DNS: no answer
    }
    if (name !== undefined && opts.isClusterName(name)) {
      log(`dns ${name} -> cluster`);
      toCluster(msg, rinfo);
    } else {
      toUpstream(msg, rinfo);
    }
  });
  server.on('error', (err) => log(`local DNS error: ${err.message}`));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.bind(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await new Promise<void>((resolve) => upstream.bind(0, resolve));
  return {
    host: opts.host,
    port: server.address().port,
    close: async () => {
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
      cluster.close();
      await Promise.all([closeUdp(server), closeUdp(upstream)]);
    },
  };
}

interface ClusterQuery {
  rinfo: { address: string; port: number };
  id: number;
  query: Buffer;
  timer: NodeJS.Timeout;
}

/**
 * One TCP stream through the tunnel to the proxy's DNS forwarder, carrying
 * every cluster query (RFC 7766 pipelining, answers matched by message id),
 * so a lookup costs one round trip instead of a new SSH channel each. A
 * stream that ends or fails is dialled again on the next query; the queries
 * it carried get SERVFAIL, and the client's resolver asks again.
 */
class ClusterLink {
  #stream: Duplex | undefined;
  #dialing: Promise<Duplex> | undefined;
  readonly #pending = new Map<number, ClusterQuery>();
  #nextId = Math.floor(Math.random() * 0xffff);
  #closed = false;
  private readonly dial: () => Promise<Duplex>;
  private readonly timeoutMs: number;
  private readonly log: (m: string) => void;
  private readonly answer: (msg: Buffer, rinfo: { address: string; port: number }) => void;

  constructor(dial: () => Promise<Duplex>, timeoutMs: number, log: (m: string) => void, answer: (msg: Buffer, rinfo: { address: string; port: number }) => void) {
    this.dial = dial;
    this.timeoutMs = timeoutMs;
    this.log = log;
    this.answer = answer;
  }

  query(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed || msg.length < 12 || this.#pending.size >= 0xffff) return this.fail(msg, rinfo);
    let wire = (this.#nextId = (this.#nextId + 1) & 0xffff);
    while (this.#pending.has(wire)) wire = (this.#nextId = (this.#nextId + 1) & 0xffff);
    const framed = frame(msg);
    framed.writeUInt16BE(wire, 2);
    const timer = setTimeout(() => {
      if (!this.#pending.delete(wire)) return;
      // A forwarder that stopped answering: start over on a new stream.
      this.log(`cluster DNS query timed out after ${this.timeoutMs} ms; reconnecting`);
      this.#drop(this.#stream);
      this.fail(msg, rinfo);
    }, this.timeoutMs);
    this.#pending.set(wire, { rinfo, id: msg.readUInt16BE(0), query: msg, timer });
    this.#connected().then(
      (s) => {
        if (this.#pending.has(wire)) s.write(framed);
      },
      (err: unknown) => {
        const q = this.#pending.get(wire);
        if (!q) return;
        this.#pending.delete(wire);
        clearTimeout(q.timer);
        this.log(`cluster DNS: cannot reach the proxy's DNS forwarder: ${(err as Error).message}`);
        this.fail(msg, rinfo);
      },
    );
  }

  close(): void {
    this.#closed = true;
    this.#drop(this.#stream);
    for (const q of this.#pending.values()) clearTimeout(q.timer);
    this.#pending.clear();
  }

  private fail(msg: Buffer, rinfo: { address: string; port: number }): void {
    const f = servfail(msg);
    if (f) this.answer(f, rinfo);
  }

  #connected(): Promise<Duplex> {
    if (this.#stream) return Promise.resolve(this.#stream);
    this.#dialing ??= this.dial().then(
      (s) => {
        this.#dialing = undefined;
        if (this.#closed) {
          s.destroy();
          throw new Error('closed');
        }
        this.#stream = s;
        const reader = new FrameReader((m) => this.#onAnswer(s, m));
        s.on('data', (d: Buffer) => reader.push(d));
        const gone = (): void => this.#drop(s);
        s.on('end', gone).on('close', gone).on('error', (err: Error) => {
          this.log(`cluster DNS stream: ${err.message}`);
          gone();
        });
        return s;
      },
      (err: unknown) => {
        this.#dialing = undefined;
        throw err;
      },
    );
    return this.#dialing;
  }

  #onAnswer(s: Duplex, m: Buffer): void {
    if (s !== this.#stream || m.length < 12) return;
    const q = this.#pending.get(m.readUInt16BE(0));
    if (!q) return; // timed out meanwhile
    this.#pending.delete(m.readUInt16BE(0));
    clearTimeout(q.timer);
    const msg = Buffer.from(m);
    msg.writeUInt16BE(q.id, 0);
    this.answer(msg, q.rinfo);
  }

  /** The stream is gone: what it carried will not be answered. */
  #drop(s: Duplex | undefined): void {
    if (!s || s !== this.#stream) {
      s?.destroy();
      return;
    }
    this.#stream = undefined;
    s.destroy();
    for (const [wire, q] of this.#pending) {
      this.#pending.delete(wire);
      clearTimeout(q.timer);
      this.fail(q.query, q.rinfo);
    }
  }
}

function closeUdp(s: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
