// A DNS listener on one port, UDP and TCP (RFC 1035 §4.2; RFC 7766: TCP
// connections carry many queries, answered as each is ready, not in order).
// It knows nothing about DNS beyond framing: a handler turns query bytes
// into response bytes (or null: no answer). Shared by the proxy's forwarder
// and the test cluster's DNS.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { lookup, type LookupOneOptions } from 'node:dns';
import { createServer, isIP, isIPv6, type Server, type Socket } from 'node:net';
import { FrameReader, frame } from '../../../contract/dns/framing.ts';

export interface DnsRequestContext {
  readonly transport: 'udp' | 'tcp';
  readonly remote: string;
}

export type DnsHandler = (query: Buffer, ctx: DnsRequestContext) => Promise<Buffer | null>;

export interface ServeOptions {
  host: string;
  /** 0: a free port (the same one for UDP and TCP). */
  port: number;
  handler: DnsHandler;
  /** Queries being answered at once, over all clients; UDP queries beyond it are dropped (the client retries). */
  maxInflight?: number;
  /** Queries being answered at once on one TCP connection; reading pauses beyond it. */
  maxInflightPerConnection?: number;
  maxConnections?: number;
  /** RFC 7766 §6.2.3: close TCP connections idle this long. */
  tcpIdleMs?: number;
  debug?: (m: string) => void;
}

export interface DnsListener {
  port: number;
  close(): Promise<void>;
}

/** Answer a query; `reply` is called once, with the response or null. */
type Run = (query: Buffer, ctx: DnsRequestContext, reply: (resp: Buffer | null) => void) => void;

/** Runs the handler, counting the queries being answered (`inflight`). */
interface Runner {
  run: Run;
  inflight: number;
}

export async function serveDns(opts: ServeOptions): Promise<DnsListener> {
  const debug = opts.debug ?? (() => {});
  const maxInflight = opts.maxInflight ?? 4096;
  const sockets = new Set<Socket>();
  let closed = false;
  const runner = makeRunner(opts.handler, debug);
  const { run } = runner;
  const tcp = createServer((sock) => serveTcp(opts, sockets, run, sock, debug));

  // With port 0 the kernel picks a free TCP port; its UDP twin may be taken,
  // so try a few picks before giving up.
  let udp: UdpSocket | undefined;
  for (let tries = 0; !udp; tries++) {
    try {
      udp = await listenBoth(tcp, opts.host, opts.port);
    } catch (err) {
      if (opts.port !== 0 || tries >= 10 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  const udpSock = udp;
  // Bursts of queries (a browser opening a page) outrun one event-loop turn;
  // a larger receive buffer queues them instead of dropping (capped by net.core.rmem_max).
  try {
    udpSock.setRecvBufferSize(1 << 20);
  } catch {
    // Keep the system default.
  }
  udpSock.on('message', (msg, rinfo) => {
    if (runner.inflight >= maxInflight) return;
    run(msg, new UdpContext(rinfo), (resp) => {
      // Answers still in flight when the listener closes have nowhere to go.
      // No send callback: a failed send is an 'error' event (below), and
      // a callback costs a tick per answer.
      if (resp && !closed) udpSock.send(resp, rinfo.port, rinfo.address);
    });
  });
  udpSock.on('error', (err) => debug(`dns udp: ${err.message}`));

  return {
    port: udpSock.address().port,
    async close() {
      closed = true;
      for (const s of sockets) s.destroy();
      await Promise.all([closeServer(tcp), new Promise<void>((r) => udpSock.close(() => r()))]);
    },
  };
}

function makeRunner(handler: DnsHandler, debug: (m: string) => void): Runner {
  // A handler bug must cost one answer, not the server.
  const failed = (err: unknown): null => {
    debug(`dns handler failed: ${(err as Error).stack ?? String(err)}`);
    return null;
  };
  // One promise per query (the handler's) and no async wrapper around it:
  // at tens of thousands of queries a second each promise layer shows
  // (test/bench/dns.bench.ts).
  const runner: Runner = {
    inflight: 0,
    run: (query, ctx, reply) => {
      runner.inflight++;
      let p: Promise<Buffer | null>;
      try {
        p = handler(query, ctx);
      } catch (err) {
        p = Promise.resolve(failed(err));
      }
      p.then(
        (resp) => {
          runner.inflight--;
          reply(resp);
        },
        (err: unknown) => {
          runner.inflight--;
          reply(failed(err));
        },
      );
    },
  };
  return runner;
}

/** One TCP connection: many queries, answered as each is ready; reading pauses at maxInflightPerConnection. */
function serveTcp(opts: ServeOptions, sockets: Set<Socket>, run: Run, sock: Socket, debug: (m: string) => void): void {
  if (sockets.size >= (opts.maxConnections ?? 256)) {
    sock.destroy();
    return;
  }
  const perConn = opts.maxInflightPerConnection ?? 128;
  sockets.add(sock);
  sock.setNoDelay(true);
  sock.setTimeout(opts.tcpIdleMs ?? 30_000);
  let busy = 0;
  const remote = `${sock.remoteAddress}:${sock.remotePort}`;
  const reader = new FrameReader((msg) => {
    busy++;
    if (busy >= perConn) sock.pause();
    run(Buffer.from(msg), { transport: 'tcp', remote }, (resp) => {
      busy--;
      if (busy < perConn && !sock.destroyed) sock.resume();
      if (resp && resp.length <= 0xffff && sock.writable) sock.write(frame(resp));
    });
  });
  sock.on('data', (d: Buffer) => reader.push(d));
  sock.on('timeout', () => {
    if (busy === 0) sock.destroy();
  });
  sock.on('error', (err) => debug(`dns tcp ${remote}: ${err.message}`));
  sock.on('close', () => sockets.delete(sock));
}

/** Listens on TCP host:port, then binds UDP to the same port; on a UDP failure the TCP listener is closed again. */
async function listenBoth(tcp: Server, host: string, port: number): Promise<UdpSocket> {
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host, port }, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const bound = (tcp.address() as { port: number }).port;
  // Answers go to rinfo.address, always an IP literal: a lookup that
  // answers at once spares dns.lookup's checks and tick on every send.
  const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', lookup: literalLookup });
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port: bound }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    udp.close();
    await closeServer(tcp);
    throw err;
  }
  return udp;
}

/** The sender of a datagram; its "address:port" text is made only when asked for. */
class UdpContext implements DnsRequestContext {
  readonly transport = 'udp';
  readonly #rinfo: RemoteInfo;
  constructor(rinfo: RemoteInfo) {
    this.#rinfo = rinfo;
  }
  get remote(): string {
    return `${this.#rinfo.address}:${this.#rinfo.port}`;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

function literalLookup(address: string, options: LookupOneOptions, cb: LookupCallback): void {
  const literal = isIP(address);
  if (literal) cb(null, address, literal);
  else lookup(address, options, cb);
}

function closeServer(s: Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}
