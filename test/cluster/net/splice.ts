// Two sockets joined into one connection, the way a TCP proxy (or io.Copy
// both ways plus CloseWrite) joins them. Used wherever the cluster relays a
// byte stream: the API relays and the pod agent's port-forward.
import type { Socket } from 'node:net';
import { delayPipe } from './delay.ts';

/**
 * Copies bytes both ways with backpressure. A FIN from one peer is passed on
 * with end(), so it reaches the other peer only after every byte before it;
 * that direction is then done and the other one keeps flowing (half-close).
 * Each socket closes by itself once both of its directions are done.
 *
 * Nothing is destroyed while bytes are still on their way: destroy() drops
 * whatever a socket has not written yet, so a peer that writes and then
 * closes at once would lose the end of its data (it did: the pod agent
 * destroyed the kubelet's socket as soon as the pod's closed, and `kubectl
 * port-forward` then got a clean end of stream some KiB short). Only an
 * error, or a socket closing before both of its directions are done (a
 * reset, a destroy), tears down both at once.
 */
export function splice(a: Socket, b: Socket, opts: { delayMs?: number } = {}): void {
  if (a.destroyed || b.destroyed) {
    a.destroy();
    b.destroy();
    return;
  }
  // Set before any 'end': without it a socket answers its peer's FIN with
  // its own at once, cutting the direction that is still flowing.
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  if (opts.delayMs) {
    // The link emulator: each direction held for delayMs (delay.ts).
    delayPipe(a, b, { delayMs: opts.delayMs });
    delayPipe(b, a, { delayMs: opts.delayMs });
  } else {
    a.pipe(b);
    b.pipe(a);
  }
  const abort = (): void => {
    a.destroy();
    b.destroy();
  };
  const onClose = (s: Socket) => (): void => {
    if (!s.readableEnded || !s.writableFinished) abort();
  };
  a.on('error', abort).on('close', onClose(a));
  b.on('error', abort).on('close', onClose(b));
}
