// Joins two byte streams (a TCP socket and an SSH channel, or two channels)
// in both directions, with TCP's half-close carried across: the end of one
// side's data becomes FIN / SSH_MSG_CHANNEL_EOF on the other while the other
// direction keeps flowing, and a side is torn down only after what was
// written to it has been flushed.
import type { Duplex } from 'node:stream';

export function splice(a: Duplex, b: Duplex, onDone?: (err?: Error) => void): void {
  let closed = 0;
  let firstErr: Error | undefined;
  const done = (err?: Error) => {
    firstErr ??= err;
    if (++closed === 2) onDone?.(firstErr);
  };
  link(a, b, done);
  link(b, a, done);
}

function link(from: Duplex, to: Duplex, done: (err?: Error) => void): void {
  let err: Error | undefined;
  from.pipe(to, { end: false });
  from.once('end', () => endWrites(to));
  from.on('error', (e: Error) => {
    err = e;
    // A reset or a failed channel: nothing more will come, drop the other side.
    to.destroy();
  });
  from.once('close', () => {
    // `from` is gone; once `to` has flushed what it was given, it goes too.
    // (An ssh2 channel's destroy() is EOF + CLOSE, sent after queued data.)
    if (to.writableFinished || to.destroyed) to.destroy();
    else {
      to.once('finish', () => to.destroy());
      if (!to.writableEnded) to.end();
    }
    done(err);
  });
}

/** An ssh2 channel on the server side (ssh2's Channel class has these). */
interface Ssh2ServerChannel {
  server: true;
  eof(): void;
}

function isSsh2ServerChannel(s: Duplex): s is Duplex & Ssh2ServerChannel {
  const c = s as Duplex & Partial<Ssh2ServerChannel>;
  return c.server === true && typeof c.eof === 'function';
}

/** Half-close: no more data will be written to `to`. */
function endWrites(to: Duplex): void {
  if (to.destroyed || to.writableEnded) return;
  if (isSsh2ServerChannel(to)) {
    // ssh2 closes a server channel outright when its writable side ends
    // (Channel.js onFinish: EOF then CLOSE), which would cut off data still
    // coming from the client. Send EOF alone, after the queued writes: an
    // empty write's callback runs once every earlier write has gone out.
    to.write(Buffer.alloc(0), () => to.eof());
    return;
  }
  to.end();
}
