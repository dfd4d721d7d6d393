// What every channel and request handler gets: the connection, its forwards,
// and where to log. One ConnContext per SSH connection; nothing is global.
import type { Server as NetServer } from 'node:net';
import type { Connection } from 'ssh2';

export type Log = (msg: string) => void;

export interface ConnContext {
  /** Short id for log lines ("c3"). */
  id: string;
  conn: Connection;
  /** Active tcpip-forward listeners, keyed by `${requested address}:${bound port}`. */
  forwards: Map<string, NetServer>;
  /** Set once the SSH connection is gone; late results are discarded. */
  closed: boolean;
  log: Log;
  /** Give up on an outbound TCP connect (direct-tcpip) after this long. */
  connectTimeoutMs: number;
}
