// Coalesces the writes ssh2 makes to its transport stream. ssh2 writes every
// AES-GCM packet as three pieces (length, ciphertext, tag: ssh2
// lib/protocol/crypto.js AESGCMCipherNative.encrypt) with one stream.write
// each, and on a socket each write is its own syscall and, with
// TCP_NODELAY, its own TCP segment: a 32 KiB channel packet cost three
// syscalls here and woke the receiver up to three times. Corking the stream
// on the first write of an event-loop turn and uncorking when that turn's
// synchronous work is done hands all its writes to one writev (node's
// Writable calls _writev with everything buffered while corked). Measured in
// test/bench/tunnel.bench.ts.
import type { Writable } from 'node:stream';

/** Makes `stream` (given to ssh2 as its transport) batch the writes of each event-loop turn. */
export function batchWrites(stream: Writable): void {
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function batchedWrite(this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!corked && !stream.writableEnded && !stream.destroyed) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable['write'];
}
