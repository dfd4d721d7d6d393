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
  if (isSsh2Channel(to)) joinReads(from, to);
  else from.pipe(to, { end: false });
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

/**
 * Into a channel, the reads of one event-loop turn go as one write. A socket
 * read is at most 64 KiB (libuv's read size) and libuv reads a socket up to
 * 32 times per wakeup, while each write to a channel is at least one SSH
 * packet, and each packet costs a cipher, buffers and a socket write at both
 * ends whatever its size: joined up to the packet size the peer takes
 * (256 KiB between our ends, contract/ssh/packet.ts), a stream moves in a
 * quarter of the packets. The join waits only for the turn's other reads
 * (setImmediate runs after the poll phase), not for more data.
 */
function joinReads(from: Duplex, to: Duplex & Ssh2Channel): void {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let scheduled = false;
  let waiting = false;
  const resume = () => {
    waiting = false;
    from.resume();
  };
  const flush = () => {
    scheduled = false;
    if (heldBytes === 0) return;
    const chunk = held.length === 1 ? held[0] : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    if (to.destroyed || to.writableEnded) return;
    if (!to.write(chunk) && !waiting) {
      waiting = true;
      from.pause();
      to.once('drain', resume);
    }
  };
  from.on('data', (d: Buffer) => {
    held.push(d);
    heldBytes += d.length;
    if (heldBytes >= to.outgoing.packetSize) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  // Before link()'s own 'end' listener half-closes `to`.
  from.once('end', flush);
}

/** An ssh2 channel, client or server side (ssh2's Channel class has this). */
interface Ssh2Channel {
  outgoing: { packetSize: number };
}

function isSsh2Channel(s: Duplex): s is Duplex & Ssh2Channel {
  const c = s as Duplex & { outgoing?: { packetSize?: unknown } };
  return typeof c.outgoing?.packetSize === 'number';
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
