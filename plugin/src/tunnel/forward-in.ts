// Reverse forwards (RFC 4254 §7.1): the proxy listens in the pod and hands
// every accepted connection back as a forwarded-tcpip channel. ssh2 raises
// one 'tcp connection' event for all forwards; this routes each to the
// forward it belongs to.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Client, ClientChannel, TcpConnectionDetails } from 'ssh2';
import { clientExpectForwarded } from '../../../contract/ssh/internals.ts';
import { splice } from '../../../contract/ssh/splice.ts';

export type ForwardTarget = { host: string; port: number } | ((stream: Duplex, info: TcpConnectionDetails) => void);

export interface ForwardHandle {
  /** The port bound in the pod (the one chosen when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

type Log = (msg: string) => void;

/** Per-client routing table from `${bindHost}:${port}` to a target. */
export class ReverseForwards {
  readonly #client: Client;
  readonly #log: Log;
  readonly #targets = new Map<string, ForwardTarget>();

  constructor(client: Client, log: Log) {
    this.#client = client;
    this.#log = log;
    client.on('tcp connection', (info, accept, reject) => this.#onConnection(info, accept, reject));
  }

  open(bindHost: string, bindPort: number, target: ForwardTarget): Promise<ForwardHandle> {
    return new Promise((resolve, reject) => {
      this.#client.forwardIn(bindHost, bindPort, (err, port) => {
        if (err) {
          reject(new Error(`the proxy refused to listen on ${bindHost}:${bindPort}: ${err.message}`));
          return;
        }
        const key = `${bindHost}:${port}`;
        this.#targets.set(key, target);
        this.#log(`reverse forward ${key} open`);
        let closing: Promise<void> | undefined;
        resolve({
          port,
          close: () => (closing ??= this.#cancel(bindHost, port, key)),
        });
      });
    });
  }

  /**
   * Hands forwarded-tcpip channels whose connected address and port are
   * these to a target, for channels the server opens without a tcpip-forward
   * (a router's routes). Returns the function that stops it.
   */
  accept(address: string, port: number, target: ForwardTarget): () => void {
    const key = `${address}:${port}`;
    this.#targets.set(key, target);
    const unexpect = clientExpectForwarded(this.#client, address, port);
    return () => {
      if (this.#targets.get(key) !== target) return;
      this.#targets.delete(key);
      unexpect();
    };
  }

  #cancel(bindHost: string, port: number, key: string): Promise<void> {
    this.#targets.delete(key);
    return new Promise((resolve) => {
      try {
        // Best effort: when the connection is gone the forward is gone with it.
        this.#client.unforwardIn(bindHost, port, () => resolve());
      } catch {
        resolve();
      }
    });
  }

  #onConnection(info: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void): void {
    const key = `${info.destIP}:${info.destPort}`;
    const target = this.#targets.get(key);
    if (!target) {
      this.#log(`forwarded-tcpip for ${key} with no forward open: refused`);
      reject();
      return;
    }
    if (typeof target === 'function') {
      target(accept(), info);
      return;
    }
    const sock = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    sock.setNoDelay(true);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      this.#log(`reverse forward ${key} → ${target.host}:${target.port}: ${err.code ?? err.message}`);
      reject();
    });
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      splice(sock, accept());
    });
  }
}
