// SPDY/3.1 as kubectl speaks it (through moby/spdystream): a server-side
// session that multiplexes streams over one byte stream (a TCP socket after
// the POST upgrade, or the WebSocket tunnel kubectl >= 1.30 tries first).
// Frames are in spdy-frames.ts, header compression in spdy-headers.ts; both
// are re-exported here.
// Spec: https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import {
  DEFAULT_WINDOW,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  serializeData,
  serializeGoAway,
  serializePing,
  serializeRstStream,
  serializeSynReply,
  serializeWindowUpdate,
  type Frame,
  type SpdyHeaders,
} from './spdy-frames.ts';
import { HeaderCompressor, HeaderDecompressor, decodeHeaderBlock, encodeHeaderBlock } from './spdy-headers.ts';

export * from './spdy-frames.ts';
export * from './spdy-headers.ts';

const debug = debuglog('kt-spdy');

/** Largest DATA frame we send; kubectl's io.Copy writes 32 KiB frames, the same order. */
const MAX_DATA_CHUNK = 65536;

export interface SpdySessionOptions {
  /** A stream the peer opened. Call stream.reply() (or write, which replies) to accept it, stream.refuse() to reject it. */
  onStream(stream: SpdyStream): void;
  /** Called once when the session is gone (transport closed, GOAWAY done or protocol error). */
  onClose?(err?: Error): void;
  /**
   * Stop sending when the peer's flow-control windows are used up. SPDY/3.1
   * requires it, but moby/spdystream (kubectl) never sends WINDOW_UPDATE and
   * ignores windows, so a server talking to kubectl must not wait for them.
   */
  enforcePeerWindow?: boolean;
  /** Largest inflated header block accepted. */
  maxHeaderBytes?: number;
}

interface PendingWrite {
  data: Buffer;
  cb: (err?: Error | null) => void;
}

/** One stream of a session, as a Duplex: readable = peer's DATA, writable = our DATA; end() sends FIN. */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: SpdyHeaders;
  readonly session: SpdySession;
  replied = false;
  /** The peer reset the stream (RST_STREAM), or the session died under it. */
  aborted = false;
  remoteClosed = false;
  localClosed = false;
  sendWindow: number;
  recvUnacked = 0;
  blocked: PendingWrite | null = null;

  constructor(session: SpdySession, id: number, headers: SpdyHeaders, sendWindow: number) {
    super({ allowHalfOpen: true });
    this.session = session;
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
  }

  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  /** Accept the stream (SYN_REPLY). */
  reply(headers: SpdyHeaders = {}, fin = false): void {
    if (this.replied || this.aborted) return;
    this.replied = true;
    if (fin) this.localClosed = true;
    this.session.sendSynReply(this, headers, fin);
    if (fin) this.session.maybeForget(this);
  }

  /** Reject or abort the stream (RST_STREAM). */
  refuse(status: number = RstStatus.REFUSED_STREAM): void {
    if (this.aborted) return;
    this.aborted = true;
    this.session.sendRst(this.id, status);
    this.session.forget(this);
    this.destroy();
  }

  override _read(): void {
    this.session.resumeTransport(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.aborted || this.localClosed) return cb(new Error(`SPDY stream ${this.id} is closed`));
    if (!this.replied) this.reply();
    this.session.sendData(this, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.aborted && !this.localClosed) {
      if (!this.replied) this.reply({}, true);
      else {
        this.localClosed = true;
        this.session.sendFin(this);
        this.session.maybeForget(this);
      }
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.aborted && !(this.localClosed && this.remoteClosed)) {
      this.aborted = true;
      this.session.sendRst(this.id, RstStatus.CANCEL);
    }
    this.session.forget(this);
    cb(err);
  }
}

/** The server side of a SPDY/3.1 session. */
export class SpdySession {
  readonly #transport: Duplex;
  readonly #opts: SpdySessionOptions;
  readonly #parser = new FrameParser();
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor: HeaderDecompressor;
  readonly #streams = new Map<number, SpdyStream>();
  readonly #inbox: Frame[] = [];
  #decoding = false;
  #lastPeerStreamId = 0;
  #goneAway = false;
  #closed = false;
  #sessionSendWindow = DEFAULT_WINDOW;
  #sessionRecvUnacked = 0;
  #initialSendWindow = DEFAULT_WINDOW;
  #drainWaiters: (() => void)[] = [];
  #pausedBy = new Set<SpdyStream>();

  constructor(transport: Duplex, opts: SpdySessionOptions, head?: Buffer) {
    this.#transport = transport;
    this.#opts = opts;
    this.#decompressor = new HeaderDecompressor(opts.maxHeaderBytes);
    transport.on('data', (chunk: Buffer) => this.#onBytes(chunk));
    transport.on('drain', () => {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    });
    transport.on('end', () => this.destroy());
    transport.on('close', () => this.destroy());
    transport.on('error', (err) => this.destroy(err));
    if (head && head.length > 0) this.#onBytes(head);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Tell the peer we are done (GOAWAY) and close the transport once our writes are out. */
  close(status: number = GoAwayStatus.OK): void {
    if (this.#closed) return;
    this.#write(serializeGoAway(this.#lastPeerStreamId, status));
    this.destroy();
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (err) debug('session closed: %s', err.message);
    for (const s of [...this.#streams.values()]) {
      s.aborted = true;
      s.destroy();
    }
    this.#streams.clear();
    this.#decompressor.close();
    for (const w of this.#drainWaiters) w();
    this.#drainWaiters = [];
    this.#shutdownTransport();
    this.#opts.onClose?.(err);
  }

  // Our last frames (a final Status, the GOAWAY) may still be in the
  // transport's buffer: end it and release it once they are out, or after a
  // few seconds if the peer stops reading.
  #shutdownTransport(): void {
    const t = this.#transport;
    if (t.destroyed) return;
    const timer = setTimeout(() => t.destroy(), 5_000);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      t.destroy();
    };
    if (t.writableFinished) return done();
    t.once('finish', done);
    t.once('close', done);
    if (!t.writableEnded) t.end();
  }

  #write(buf: Buffer): boolean {
    if (this.#closed || this.#transport.writableEnded || this.#transport.destroyed) return true;
    return this.#transport.write(buf);
  }

  #protocolError(err: Error): void {
    if (this.#closed) return;
    debug('protocol error: %s', err.message);
    this.#write(serializeGoAway(this.#lastPeerStreamId, GoAwayStatus.PROTOCOL_ERROR));
    this.destroy(err);
  }

  #onBytes(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Frame[];
    try {
      frames = this.#parser.push(chunk);
    } catch (err) {
      this.#protocolError(err as Error);
      return;
    }
    this.#inbox.push(...frames);
    this.#pump();
  }

  // Frames are handled strictly in order; a frame with a header block waits
  // for the (asynchronous) inflate before anything after it is looked at.
  #pump(): void {
    while (!this.#decoding && !this.#closed && this.#inbox.length > 0) {
      const frame = this.#inbox.shift()!;
      if (frame.type === 'syn_stream' || frame.type === 'syn_reply' || frame.type === 'headers') {
        this.#decoding = true;
        this.#decompressor.decompress(frame.headerBlock).then(
          (block) => {
            this.#decoding = false;
            try {
              this.#onHeaderFrame(frame, decodeHeaderBlock(block));
            } catch (err) {
              this.#protocolError(err as Error);
              return;
            }
            this.#pump();
          },
          (err: Error) => {
            this.#decoding = false;
            this.#protocolError(err);
          },
        );
        return;
      }
      try {
        this.#onFrame(frame);
      } catch (err) {
        this.#protocolError(err as Error);
        return;
      }
    }
  }

  #onHeaderFrame(frame: Frame, headers: SpdyHeaders): void {
    if (frame.type === 'syn_stream') {
      // Client-initiated streams are odd and strictly increasing (§2.3.2).
      if (frame.streamId % 2 === 0 || frame.streamId <= this.#lastPeerStreamId) {
        this.sendRst(frame.streamId, RstStatus.PROTOCOL_ERROR);
        return;
      }
      this.#lastPeerStreamId = frame.streamId;
      if (this.#goneAway) {
        this.sendRst(frame.streamId, RstStatus.REFUSED_STREAM);
        return;
      }
      const stream = new SpdyStream(this, frame.streamId, headers, this.#initialSendWindow);
      stream.on('error', (err) => debug('stream %d: %s', stream.id, err.message));
      if (frame.flags & FLAG_UNIDIRECTIONAL) {
        stream.localClosed = true;
        stream.replied = true;
      }
      this.#streams.set(stream.id, stream);
      if (frame.flags & FLAG_FIN) {
        stream.remoteClosed = true;
        stream.push(null);
      }
      this.#opts.onStream(stream);
      return;
    }
    // SYN_REPLY (we open no streams) and HEADERS carry nothing we use; their
    // blocks were still inflated above to keep the zlib context in step.
    if (frame.type === 'headers' && frame.flags & FLAG_FIN) {
      const stream = this.#streams.get(frame.streamId);
      if (stream) this.#remoteFin(stream);
    }
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'data':
        return this.#onData(frame.streamId, frame.flags, frame.data);
      case 'rst_stream': {
        const stream = this.#streams.get(frame.streamId);
        if (stream) {
          stream.aborted = true;
          this.forget(stream);
          stream.destroy();
        }
        return;
      }
      case 'settings':
        for (const e of frame.entries) {
          if (e.id === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = e.value - this.#initialSendWindow;
            this.#initialSendWindow = e.value;
            for (const s of this.#streams.values()) s.sendWindow += delta;
            this.#retryBlocked();
          }
        }
        return;
      case 'ping':
        // Peer (client) pings are odd; echo them. Even ids would answer our own pings, and we send none.
        if (frame.id % 2 === 1) this.#write(serializePing(frame.id));
        return;
      case 'goaway':
        this.#goneAway = true;
        if (this.#streams.size === 0) this.close();
        return;
      case 'window_update':
        if (frame.streamId === 0) this.#sessionSendWindow += frame.delta;
        else {
          const stream = this.#streams.get(frame.streamId);
          if (stream) stream.sendWindow += frame.delta;
        }
        this.#retryBlocked();
        return;
      case 'unknown':
        return;
      default:
        // syn_stream / syn_reply / headers go through #onHeaderFrame.
        return;
    }
  }

  #onData(streamId: number, flags: number, data: Buffer): void {
    const stream = this.#streams.get(streamId);
    if (!stream) {
      // A stream we already forgot (reset or finished); DATA still in flight is harmless.
      if (streamId > this.#lastPeerStreamId) this.sendRst(streamId, RstStatus.INVALID_STREAM);
      return;
    }
    if (stream.remoteClosed) {
      this.sendRst(streamId, RstStatus.STREAM_ALREADY_CLOSED);
      stream.aborted = true;
      this.forget(stream);
      stream.destroy();
      return;
    }
    if (data.length > 0) {
      this.#ackReceived(stream, data.length);
      if (!stream.push(data)) this.#pauseTransport(stream);
    }
    if (flags & FLAG_FIN) this.#remoteFin(stream);
  }

  // Our receive windows: tell the peer to keep sending once half a window is
  // consumed. Backpressure itself comes from pausing the transport, because
  // spdystream ignores these updates anyway.
  #ackReceived(stream: SpdyStream, n: number): void {
    stream.recvUnacked += n;
    this.#sessionRecvUnacked += n;
    if (stream.recvUnacked >= DEFAULT_WINDOW / 2 && !stream.remoteClosed) {
      this.#write(serializeWindowUpdate(stream.id, stream.recvUnacked));
      stream.recvUnacked = 0;
    }
    if (this.#sessionRecvUnacked >= DEFAULT_WINDOW / 2) {
      this.#write(serializeWindowUpdate(0, this.#sessionRecvUnacked));
      this.#sessionRecvUnacked = 0;
    }
  }

  #remoteFin(stream: SpdyStream): void {
    if (stream.remoteClosed) return;
    stream.remoteClosed = true;
    stream.push(null);
    this.maybeForget(stream);
  }

  #pauseTransport(stream: SpdyStream): void {
    this.#pausedBy.add(stream);
    this.#transport.pause();
  }

  resumeTransport(stream: SpdyStream): void {
    if (this.#pausedBy.delete(stream) && this.#pausedBy.size === 0 && !this.#closed) this.#transport.resume();
  }

  maybeForget(stream: SpdyStream): void {
    if (stream.localClosed && stream.remoteClosed) this.forget(stream);
  }

  forget(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this.resumeTransport(stream);
    if (this.#goneAway && this.#streams.size === 0 && !this.#closed) this.close();
  }

  sendSynReply(stream: SpdyStream, headers: SpdyHeaders, fin: boolean): void {
    const block = this.#compressor.compress(encodeHeaderBlock(headers));
    this.#write(serializeSynReply(stream.id, block, fin ? FLAG_FIN : 0));
  }

  sendRst(streamId: number, status: number): void {
    this.#write(serializeRstStream(streamId, status));
  }

  sendFin(stream: SpdyStream): void {
    this.#write(serializeData(stream.id, Buffer.alloc(0), FLAG_FIN));
  }

  sendData(stream: SpdyStream, data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(new Error('SPDY session closed'));
    let off = 0;
    let flushed = true;
    while (off < data.length) {
      let n = Math.min(data.length - off, MAX_DATA_CHUNK);
      if (this.#opts.enforcePeerWindow) n = Math.min(n, stream.sendWindow, this.#sessionSendWindow);
      if (n <= 0) {
        stream.blocked = { data: data.subarray(off), cb };
        return;
      }
      stream.sendWindow -= n;
      this.#sessionSendWindow -= n;
      flushed = this.#write(serializeData(stream.id, data.subarray(off, off + n)));
      off += n;
    }
    if (flushed) cb();
    else this.#drainWaiters.push(() => cb(this.#closed ? new Error('SPDY session closed') : null));
  }

  #retryBlocked(): void {
    for (const s of this.#streams.values()) {
      if (s.blocked) {
        const { data, cb } = s.blocked;
        s.blocked = null;
        this.sendData(s, data, cb);
      }
    }
  }
}
