// Joins two byte streams (a TCP socket and an SSH channel, or two channels)
// in both directions, with TCP's half-close carried across: the end of one
// side's data becomes FIN / SSH_MSG_CHANNEL_EOF on the other, and a side is
// torn down only after what was written to it has been flushed.
import type { Duplex } from 'node:stream';

export function splice(a: Duplex, b: Duplex, onDone?: (err?: Error) => void): void {
  let closed = 0;
  let firstErr: Error | undefined;
  const done = (err?: Error) => {
    firstErr ??= err;
    if (++closed === 2) onDone?.(firstErr);
  };
  a.pipe(b);
  b.pipe(a);
  link(a, b, done);
  link(b, a, done);
}

function link(from: Duplex, to: Duplex, done: (err?: Error) => void): void {
  let err: Error | undefined;
  from.on('error', (e: Error) => {
    err = e;
    // A reset or a failed channel: nothing more will come, drop the other side.
    to.destroy();
  });
  from.once('close', () => {
    // `from` is gone; once `to` has flushed what it was given, it goes too.
    // (An ssh2 channel's destroy() is EOF + CLOSE, after queued data.)
    if (to.writableFinished || to.destroyed) to.destroy();
    else {
      to.once('finish', () => to.destroy());
      if (!to.writableEnded) to.end();
    }
    done(err);
  });
}
