// The plugin's SSH client: one ssh2 connection over any duplex stream (in
// production a pods/portforward stream to the proxy pod, in tests a TCP
// socket). Channels, reverse forwards and local listeners all ride on it.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { PROTOCOL_VERSION, SSH_REQUESTS, SSH_USER, VERSION } from '../../../contract/protocol.ts';
import { decodeHello, encodeHello } from '../../../contract/ssh/hello.ts';
import type { HelloInfo } from '../../../contract/ssh/hello.ts';
import { clientGlobalRequest } from '../../../contract/ssh/internals.ts';
import { CIPHERS } from '../../../contract/ssh/algorithms.ts';
import { batchWrites } from '../../../contract/ssh/write-batch.ts';
import { ReverseForwards } from './forward-in.ts';
import type { ForwardHandle, ForwardTarget } from './forward-in.ts';
import { listenLocal } from './listen.ts';
import { watchLiveness } from './liveness.ts';
import type { ListenHandle } from './listen.ts';

const { Client } = ssh2;

/** The client's keepalive interval; the tunnel counts as dead after 3 quiet intervals with a ping each (6–8 s). */
export const KEEPALIVE_MS = 2000;

export interface TunnelOptions {
  stream: Duplex;
  /** OpenSSH private key text (from makeSessionKey). */
  privateKey: string | Buffer;
  /** Return true to accept the proxy's host key (see pinHostKey). Absent: any key. */
  hostKeyCheck?: (key: Buffer) => boolean;
  /**
   * Ping the proxy after this long without hearing from it; 3 quiet
   * intervals in a row close the tunnel. Default KEEPALIVE_MS: a path that
   * drops packets silently (Wi-Fi gone, a laptop lid) is noticed within
   * 4 intervals, as the proxy's SSH server notices it (proxy-image/src/ssh/server.ts).
   */
  keepaliveMs?: number;
  /** Give up on the SSH handshake after this long. Default 20000. */
  readyTimeoutMs?: number;
  debug?: (msg: string) => void;
}

export interface TunnelEvents {
  /** The connection is gone (err set when it failed rather than was closed). */
  close: [err: Error | undefined];
}

export interface Tunnel extends EventEmitter<TunnelEvents> {
  /** direct-tcpip: a stream to host:port as the proxy pod sees it. */
  connect(host: string, port: number): Promise<Duplex>;
  /** tcpip-forward: the proxy listens on bindHost:bindPort and hands connections to toLocal. */
  forwardIn(bindHost: string, bindPort: number, toLocal: ForwardTarget): Promise<ForwardHandle>;
  /** A local listener (port 0 = free) whose connections go to remoteHost:remotePort, like `ssh -L`. */
  listen(localPort: number, remoteHost: string, remotePort: number): Promise<ListenHandle>;
  /** kt-hello@kt.dev: the proxy's version, protocol version and role. */
  hello(): Promise<HelloInfo>;
  /** A global request with a reply (the router's kt-route@kt.dev); rejects on REQUEST_FAILURE. */
  request(name: string, data: Buffer): Promise<Buffer | null>;
  /** Hands forwarded-tcpip channels for address:port (opened without a tcpip-forward) to toLocal; returns the undo. */
  acceptForwarded(address: string, port: number, toLocal: ForwardTarget): () => void;
  readonly closed: boolean;
  /** Milliseconds since the proxy last sent anything. */
  quietMs(): number;
  close(): Promise<void>;
}

export function openTunnel(opts: TunnelOptions): Promise<Tunnel> {
  const log = opts.debug ?? debuglog('kt');
  // Nagle's algorithm holds back SSH's small window-adjust packets; with it on
  // a channel runs at 40-100 MiB/s instead of several hundred.
  if (opts.stream instanceof net.Socket) opts.stream.setNoDelay(true);
  batchWrites(opts.stream);
  const client = new Client();
  // SSH never half-closes its transport (RFC 4253 §11.1 ends a connection
  // with SSH_MSG_DISCONNECT or by closing it): the end of the stream (the
  // pod's SSH server gone, the API server restarting) is the end of the
  // connection. Without this ssh2 would wait for a 'close' that a
  // port-forward stream only gives once its write side ends too, and the
  // tunnel would look up until the keepalive gave up on it.
  opts.stream.once('end', () => opts.stream.destroy());
  return new Promise((resolve, reject) => {
    let ready = false;
    let lastErr: Error | undefined;
    client.on('error', (err) => {
      lastErr = err;
      log(`tunnel error: ${err.message}`);
      if (!ready) reject(err);
    });
    client.once('ready', () => {
      ready = true;
      log('tunnel ready');
      const liveness = watchLiveness({
        stream: opts.stream,
        intervalMs: opts.keepaliveMs ?? KEEPALIVE_MS,
        maxMissed: 3,
        // The proxy answers keepalive@openssh.com with FAILURE; any answer will do.
        ping: () => void clientGlobalRequest(client, 'keepalive@openssh.com', Buffer.alloc(0)).catch(() => {}),
        onDead: () => {
          lastErr = new Error(`no answer from the proxy for ${(liveness.quietMs() / 1000).toFixed(1)} s`);
          log(`tunnel: ${lastErr.message}`);
          opts.stream.destroy();
        },
      });
      client.once('close', liveness.stop);
      resolve(new SshTunnel(client, log, () => lastErr, liveness.quietMs));
    });
    client.once('close', () => {
      if (!ready) reject(lastErr ?? new Error('the SSH connection closed before it was ready'));
    });
    client.connect({
      sock: opts.stream,
      username: SSH_USER,
      privateKey: opts.privateKey,
      hostVerifier: opts.hostKeyCheck ?? (() => true),
      algorithms: { cipher: CIPHERS },
      // Liveness is watched below (liveness.ts), not by ssh2's keepalive.
      keepaliveInterval: 0,
      readyTimeout: opts.readyTimeoutMs ?? 20_000,
      ...(opts.debug ? { debug: opts.debug } : {}),
    });
  });
}

class SshTunnel extends EventEmitter<TunnelEvents> implements Tunnel {
  readonly #client: InstanceType<typeof Client>;
  readonly #log: (msg: string) => void;
  readonly #reverse: ReverseForwards;
  readonly #listeners = new Set<ListenHandle>();
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly quietMs: () => number;

  constructor(client: InstanceType<typeof Client>, log: (msg: string) => void, lastErr: () => Error | undefined, quietMs: () => number) {
    super();
    this.quietMs = quietMs;
    this.#client = client;
    this.#log = log;
    this.#reverse = new ReverseForwards(client, log);
    client.once('close', () => {
      this.#closed = true;
      this.emit('close', lastErr());
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  connect(host: string, port: number): Promise<Duplex> {
    if (this.#closed) return Promise.reject(new Error('the tunnel is closed'));
    return new Promise((resolve, reject) => {
      // The originator address is informational (RFC 4254 §7.2); there is none here.
      this.#client.forwardOut('127.0.0.1', 0, host, port, (err, channel: ClientChannel) => {
        // ssh2 prefixes the server's description with "(SSH) Channel open failure: ".
        if (err) reject(new Error(`the proxy could not connect to ${host}:${port}: ${err.message.replace(/^\(SSH\) Channel open failure: /, '')}`));
        else resolve(channel);
      });
    });
  }

  forwardIn(bindHost: string, bindPort: number, toLocal: ForwardTarget): Promise<ForwardHandle> {
    if (this.#closed) return Promise.reject(new Error('the tunnel is closed'));
    return this.#reverse.open(bindHost, bindPort, toLocal);
  }

  async listen(localPort: number, remoteHost: string, remotePort: number): Promise<ListenHandle> {
    const handle = await listenLocal({
      port: localPort,
      connect: () => this.connect(remoteHost, remotePort),
      log: this.#log,
    });
    this.#listeners.add(handle);
    return {
      port: handle.port,
      close: () => {
        this.#listeners.delete(handle);
        return handle.close();
      },
    };
  }

  async hello(): Promise<HelloInfo> {
    const reply = await clientGlobalRequest(
      this.#client,
      SSH_REQUESTS.hello,
      encodeHello({ version: VERSION, protocol: PROTOCOL_VERSION }),
    );
    const info = decodeHello(reply);
    if (!info) throw new Error('the proxy answered hello with something that is not a version');
    return info;
  }

  request(name: string, data: Buffer): Promise<Buffer | null> {
    if (this.#closed) return Promise.reject(new Error('the tunnel is closed'));
    return clientGlobalRequest(this.#client, name, data);
  }

  acceptForwarded(address: string, port: number, toLocal: ForwardTarget): () => void {
    return this.#reverse.accept(address, port, toLocal);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#listeners].map((l) => l.close()));
      this.#listeners.clear();
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#client.once('close', () => resolve());
        this.#client.end();
      });
    })();
    return this.#closing;
  }
}
