// Client-side dead-connection detection. ssh2's own client keepalive counts
// only replies to its pings, and a reply queues behind whatever channel data
// the server has already sent — up to a full window per channel, so 64 busy
// channels put 128 MiB ahead of it. On a loaded machine that took longer
// than 3 intervals and a healthy, busy tunnel was torn down. Here any byte
// from the server counts as a sign of life, and pings go out only when the
// line is quiet.
import type { Duplex } from 'node:stream';

export interface LivenessOptions {
  stream: Duplex;
  intervalMs: number;
  /** Quiet intervals (each with a ping sent) before the connection counts as dead. */
  maxMissed: number;
  ping(): void;
  onDead(): void;
}

export interface Liveness {
  stop(): void;
  /** Milliseconds since the last byte from the server (or since watching began). */
  quietMs(): number;
}

/** Starts watching. */
export function watchLiveness(opts: LivenessOptions): Liveness {
  let heard = false;
  let missed = 0;
  let last = performance.now();
  const onData = () => {
    heard = true;
    last = performance.now();
  };
  opts.stream.on('data', onData);
  const timer = setInterval(() => {
    if (heard) {
      heard = false;
      missed = 0;
      return;
    }
    if (++missed > opts.maxMissed) {
      stop();
      opts.onDead();
      return;
    }
    opts.ping();
  }, opts.intervalMs);
  const stop = () => {
    clearInterval(timer);
    opts.stream.off('data', onData);
  };
  return { stop, quietMs: () => performance.now() - last };
}
