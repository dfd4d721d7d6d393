// Shared pieces for the SSH tests: small TCP servers on port 0, a server
// with a fresh session key, and byte counting with sha256 on both ends.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { startSshServer } from '../../proxy-image/src/ssh/index.ts';
import type { SshServer, SshServerOptions } from '../../proxy-image/src/ssh/index.ts';
import { makeSessionKey, openTunnel } from '../../plugin/src/tunnel/index.ts';
import type { KeyPair, Tunnel } from '../../plugin/src/tunnel/index.ts';

/** Closes each thing after the test, in the order given (tunnels before servers). */
export function closeAfter(t: TestContext, ...things: Array<{ close(): Promise<void> | void }>): void {
  t.after(async () => {
    for (const thing of things) await thing.close();
  });
}

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

/**
 * A TCP relay to port that can be frozen: it stops moving bytes in both
 * directions without closing anything, as a laptop that went to sleep or a
 * port-forward that hangs would.
 */
export async function freezableRelay(port: number): Promise<Listening & { freeze(): void }> {
  let frozen = false;
  const l = await tcpServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    up.on('error', () => down.destroy());
    down.on('data', (d) => frozen || up.write(d));
    up.on('data', (d) => frozen || down.write(d));
    down.once('close', () => up.destroy());
    up.once('close', () => down.destroy());
  });
  return { ...l, freeze: () => (frozen = true) };
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

/**
 * Resolves with the first match of re in the child's stderr; rejects if the
 * child exits first (with what it printed, so the failure explains itself).
 * Keeps draining stderr afterwards so the child never blocks on a full pipe.
 */
export function stderrMatch(child: ChildProcess, re: RegExp, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(re);
      if (!m) return;
      child.stderr?.off('data', onData);
      child.stderr?.resume();
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`${what} exited (${code}) before ${re}:\n${buf}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * `ssh -v` with -L or -D is ready at this stderr line. OpenSSH prints "Local
 * forwarding listening on …" before bind() and listen(); the port-listener
 * channel is created after, when connections are accepted.
 */
export const PORT_LISTENER_READY = /channel \d+: new port-listener/;

/** SIGTERM and wait for the exit (no-op when it already exited). */
export async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
