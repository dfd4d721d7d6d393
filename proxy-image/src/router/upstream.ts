// Where a request or connection goes, and the connections that get it there:
// the origin Service over TCP, or a developer's laptop over a forwarded-tcpip
// channel of the SSH connection that registered the route. HTTP/1.1
// upstream connections are kept per target and reused (keep-alive).
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { RouterPort } from '../../../contract/protocol.ts';
import type { Route } from './table.ts';

/** What the router needs from a route's SSH connection. */
export interface RouteLink {
  /** Opens a forwarded-tcpip channel to the developer; rejects when the connection is gone or the laptop refuses. */
  open(from: { ip: string; port: number }): Promise<Duplex>;
  /** Channels open now (for status). */
  active(): number;
}

export type Target = { kind: 'origin' } | { kind: 'route'; route: Route<RouteLink> };

export const ORIGIN: Target = { kind: 'origin' };

export function targetKey(t: Target): string {
  return t.kind === 'origin' ? 'origin' : t.route.id;
}

export function describeTarget(t: Target): string {
  return t.kind === 'origin' ? 'origin' : `${t.route.owner} (${t.route.id})`;
}

/** Keep at most this many idle connections per target; more are closed. */
const MAX_IDLE = 256;
/** Close an idle upstream connection after this long (below common server keep-alive timeouts is not needed: a stale one is retried). */
const IDLE_MS = 60_000;

export interface Connector {
  /** A connection to the target for this port (fresh, not pooled). */
  connect(target: Target, from: { ip: string; port: number }): Promise<Duplex>;
}

export function makeConnector(port: RouterPort, originHost: string): Connector {
  return {
    connect(target, from) {
      if (target.kind === 'route') return target.route.handle.open(from);
      return connectOrigin(originHost, port.originPort);
    },
  };
}

/**
 * A TCP connection to the origin, resolved once connected. The error
 * listener goes on before net.connect returns: a failure raised at once
 * (EMFILE when descriptors run out, emitted on the next tick) would
 * otherwise find no listener and end the process. Callers turn
 * the rejection into a 502 (HTTP) or a closed connection (raw TCP).
 */
export function connectOrigin(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
    const onError = (err: Error) => {
      sock.destroy();
      reject(err);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      // Until the caller's .then() runs (a microtask, before any I/O event) nothing can be emitted.
      resolve(sock);
    });
  });
}

/** Idle HTTP/1.1 upstream connections, per target key. */
export class Pool {
  /** Idle connections, each with the function that takes its idle listeners off. */
  readonly #idle = new Map<string, Map<Duplex, () => void>>();

  take(key: string): Duplex | undefined {
    const set = this.#idle.get(key);
    if (!set) return undefined;
    for (const [s, detach] of set) {
      set.delete(s);
      detach();
      if (s.destroyed || s.readableEnded) {
        s.destroy();
        continue;
      }
      return s;
    }
    return undefined;
  }

  put(key: string, s: Duplex): void {
    let set = this.#idle.get(key);
    if (!set) this.#idle.set(key, (set = new Map()));
    if (set.size >= MAX_IDLE || s.destroyed) {
      s.destroy();
      return;
    }
    const idle = set;
    const drop = () => {
      idle.delete(s);
      detach();
      s.destroy();
    };
    const sock = s instanceof net.Socket ? s : undefined;
    const detach = () => {
      s.off('data', drop).off('end', drop).off('error', drop).off('close', drop);
      if (sock) sock.setTimeout(0).off('timeout', drop);
    };
    // An idle connection that speaks, ends or fails is of no more use.
    s.on('data', drop).on('end', drop).on('error', drop).on('close', drop);
    if (sock) sock.setTimeout(IDLE_MS).on('timeout', drop);
    idle.set(s, detach);
  }

  /** Closes every idle connection to a target (its route went away). */
  drop(key: string): void {
    const set = this.#idle.get(key);
    if (!set) return;
    this.#idle.delete(key);
    for (const [s, detach] of set) {
      detach();
      s.destroy();
    }
  }

  close(): void {
    for (const key of [...this.#idle.keys()]) this.drop(key);
  }
}
