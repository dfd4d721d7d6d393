// The laptop's DNS server for `connect --mode route`: cluster names go through
// the tunnel to the proxy's DNS forwarder (which expands them with the pod's
// search list), everything else to the resolver this machine had before.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Duplex } from 'node:stream';
import { decode } from 'dns-packet';

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

/** Reads one length-prefixed DNS message from a stream. */
export function readFramed(stream: Duplex, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error('DNS over the tunnel timed out')), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length >= 2 + len) finish(undefined, buf.subarray(2, 2 + len));
      }
    };
    const onEnd = (): void => finish(new Error('the DNS stream closed before an answer'));
    function finish(err: Error | undefined, msg?: Buffer): void {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      if (err) reject(err);
      else resolve(msg as Buffer);
    }
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onEnd);
  });
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

  const toCluster = async (msg: Buffer, rinfo: { address: string; port: number }): Promise<void> => {
    let stream: Duplex | undefined;
    try {
      stream = await opts.dialCluster();
      const framed = Buffer.alloc(2 + msg.length);
      framed.writeUInt16BE(msg.length, 0);
      msg.copy(framed, 2);
      stream.write(framed);
      const answer = await readFramed(stream, timeoutMs);
      server.send(answer, rinfo.port, rinfo.address);
    } catch (err) {
      log(`cluster DNS query failed: ${(err as Error).message}`);
      const f = servfail(msg);
      if (f) server.send(f, rinfo.port, rinfo.address);
    } finally {
      stream?.destroy();
    }
  };

  server.on('message', (msg, rinfo) => {
    let name: string | undefined;
    try {
      name = decode(msg).questions?.[0]?.name;
    } catch {
      return; // not DNS: no answer
    }
    if (name !== undefined && opts.isClusterName(name)) {
      log(`dns ${name} -> cluster`);
      void toCluster(msg, rinfo);
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
      await Promise.all([closeUdp(server), closeUdp(upstream)]);
    },
  };
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
