// A delay line for one direction of a byte stream: every chunk read from
// `src` is written to `dst` `delayMs` after it arrived, in order. It is the
// delay half of the laptop link emulator (link.ts): the kernel here has no
// netem, so the per-direction delay is applied where the bytes pass a relay,
// and the bandwidth by a tbf qdisc on the link's veth pair.
//
// What the far end sees is what a long link shows an application: a window
// of W bytes (an SSH channel window, an HTTP/2 or WebSocket flow-control
// window) acknowledged by the peer comes back one round trip later, so a
// window-limited stream moves at most W / RTT. TCP's own handshake and
// windows are not delayed (the relay ends the TCP connection on each side),
// which the link's README section says.
import type { Socket } from 'node:net';

export interface DelayOptions {
  delayMs: number;
  /**
   * Bytes held in the line before `src` is paused: a link holds at most its
   * bandwidth-delay product; this only bounds memory (default 64 MiB, over
   * 5 MiB, the product of 1 Gbit/s and 40 ms).
   */
  maxQueued?: number;
}

/**
 * Pipe `src` into `dst` through the delay line. `dst` is ended once `src`
 * ended and every byte before the end was written; errors are the caller's
 * (see splice.ts). Backpressure: when `dst` cannot take more, `src` pauses;
 * chunks already in the line are still written on time (they are "on the
 * wire"), so a slow reader costs at most one delay's worth of buffering.
 */
export function delayPipe(src: Socket, dst: Socket, opts: DelayOptions): void {
  const maxQueued = opts.maxQueued ?? 64 * 1024 * 1024;
  const line: { due: number; chunk: Buffer }[] = [];
  let head = 0;
  let queued = 0;
  let blocked = false;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;

  const settle = (): void => {
    if (!blocked && queued < maxQueued && src.isPaused() && !src.readableEnded) src.resume();
  };
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (head < line.length && line[head].due <= now) {
      const { chunk } = line[head++];
      queued -= chunk.length;
      if (!dst.destroyed && !dst.write(chunk)) blocked = true;
    }
    if (head === line.length) {
      line.length = 0;
      head = 0;
      if (ended && !dst.destroyed) dst.end();
    } else {
      // setTimeout takes whole milliseconds: never fire early.
      timer = setTimeout(flush, Math.ceil(line[head].due - now));
    }
    if (blocked) src.pause();
    settle();
  };
  src.on('data', (chunk: Buffer) => {
    line.push({ due: performance.now() + opts.delayMs, chunk });
    queued += chunk.length;
    if (queued >= maxQueued) src.pause();
    timer ??= setTimeout(flush, Math.ceil(opts.delayMs));
  });
  src.on('end', () => {
    ended = true;
    if (timer === undefined && head === line.length && !dst.destroyed) dst.end();
  });
  dst.on('drain', () => {
    blocked = false;
    settle();
  });
  // Not on src's close: a source that sent its FIN and closed still has its
  // last bytes in the line, and they are still on their way.
  dst.on('close', () => clearTimeout(timer));
}
