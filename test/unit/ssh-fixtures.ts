// Shared pieces for the SSH tests: small TCP servers on port 0, a server
// with a fresh session key, and byte counting with sha256 on both ends.
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { startSshServer } from '../../proxy-image/src/ssh/index.ts';
import type { SshServer, SshServerOptions } from '../../proxy-image/src/ssh/index.ts';
import { makeSessionKey, openTunnel } from '../../plugin/src/tunnel/index.ts';
import type { KeyPair, Tunnel } from '../../plugin/src/tunnel/index.ts';

export interface Listening {
  port: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:0 that tracks its sockets so close() is immediate. */
export async function tcpServer(onConn: (sock: net.Socket) => void, opts: net.ServerOpts = {}): Promise<Listening> {
  const socks = new Set<net.Socket>();
  const server = net.createServer(opts, (sock) => {
    socks.add(sock);
    sock.once('close', () => socks.delete(sock));
    sock.on('error', () => sock.destroy());
    onConn(sock);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export const echoServer = () => tcpServer((sock) => sock.pipe(sock));

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const l = await tcpServer(() => {});
  await l.close();
  return l.port;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads a stream to its end. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Sends `out`, half-closes, and returns everything that came back. */
export async function exchange(stream: Duplex, out: Buffer): Promise<Buffer> {
  const got = readAll(stream);
  stream.end(out);
  return got;
}

/**
 * A "swap" server: each connection sends its own random bytes and half-closes
 * at once, while reading the client's bytes to the end. Both directions run
 * at the same time and each side stops writing on its own schedule, so lost
 * data in either direction (or a half-close that kills the other direction)
 * shows up as a hash mismatch. `records` holds "received/sent" per connection.
 */
export async function swapServer(bytes: number): Promise<Listening & { records: string[]; settled(n: number): Promise<string[]> }> {
  const records: string[] = [];
  const recorded = new EventEmitter();
  const l = await tcpServer(
    (sock) => {
      const mine = randomBytes(bytes);
      sock.setNoDelay(true);
      readAll(sock).then(
        (theirs) => {
          records.push(`${sha256(theirs)}/${sha256(mine)}`);
          recorded.emit('record');
        },
        () => {},
      );
      sock.end(mine);
    },
    { allowHalfOpen: true },
  );
  // The client can have all the server's bytes before the server has read
  // the last of the client's, so wait for the records rather than count them.
  const settled = (n: number) =>
    new Promise<string[]>((resolve) => {
      const check = () => {
        if (records.length < n) return;
        recorded.off('record', check);
        resolve(records);
      };
      recorded.on('record', check);
      check();
    });
  return { ...l, records, settled };
}

export interface ServerUnderTest {
  server: SshServer;
  key: KeyPair;
  logs: string[];
  /** Resolves when a log line matching re appears (or already has). */
  waitLog(re: RegExp): Promise<string>;
  /** Opens a tunnel with the session key over a fresh TCP socket. */
  tunnel(opts?: { keepaliveMs?: number }): Promise<Tunnel>;
}

export async function sshServer(opts: Partial<SshServerOptions> = {}): Promise<ServerUnderTest> {
  const key = makeSessionKey();
  const logs: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const debug = (line: string) => {
    logs.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  const server = await startSshServer({ port: 0, authorizedKeys: [key.publicKey], debug, ...opts });
  return {
    server,
    key,
    logs,
    waitLog: (re) => {
      const seen = logs.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
    tunnel: (t = {}) => openTunnel({ stream: net.connect(server.port, '127.0.0.1'), privateKey: key.privateKey, ...t }),
  };
}
