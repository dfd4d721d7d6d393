// SPDY/3.1: the frame codec and header codec on hand-made bytes, the session
// against a raw client, and garbage that must close a session, never the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { once } from 'node:events';
import {
  FrameParser,
  HeaderCompressor,
  HeaderDecompressor,
  SpdyProtocolError,
  SpdySession,
  SPDY3_DICTIONARY,
  FLAG_FIN,
  GoAwayStatus,
  RstStatus,
  decodeHeaderBlock,
  encodeHeaderBlock,
  parseFrame,
  serializeData,
  serializeGoAway,
  serializePing,
  serializeRstStream,
  serializeSettings,
  serializeSynReply,
  serializeSynStream,
  serializeWindowUpdate,
  SETTINGS_INITIAL_WINDOW_SIZE,
  type Frame,
  type SpdyHeaders,
  type SpdySessionOptions,
} from './node/streams/spdy.ts';
import { startHarness, pattern, ECHO_PORT } from './streams-harness.ts';

test('the SPDY/3 dictionary is the 1423 bytes Go uses (zlib dictionary id e3c6a7c2)', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.equal(SPDY3_DICTIONARY.subarray(-6).toString(), 'enq=0.');
  const first = new HeaderCompressor().compress(Buffer.alloc(4));
  assert.equal(first.subarray(0, 6).toString('hex'), '7820e3c6a7c2');
});

test('parses hand-made frames of every type', () => {
  const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  // SYN_STREAM v3, flags FIN, length 12: stream 3, associated 0, priority 2, slot 0, 2-byte block.
  assert.deepEqual(parseFrame(hex('8003 0001 0100000c 00000003 00000000 4000 abcd')), {
    type: 'syn_stream',
    streamId: 3,
    associatedId: 0,
    priority: 2,
    flags: FLAG_FIN,
    headerBlock: hex('abcd'),
  });
  assert.deepEqual(parseFrame(hex('8003 0002 00000005 00000005 ff')), { type: 'syn_reply', streamId: 5, flags: 0, headerBlock: hex('ff') });
  assert.deepEqual(parseFrame(hex('8003 0003 00000008 00000007 00000005')), { type: 'rst_stream', streamId: 7, status: RstStatus.CANCEL });
  assert.deepEqual(parseFrame(hex('8003 0004 0000000c 00000001 01000007 00010000')), {
    type: 'settings',
    flags: 0,
    entries: [{ flags: 1, id: SETTINGS_INITIAL_WINDOW_SIZE, value: 65536 }],
  });
  assert.deepEqual(parseFrame(hex('8003 0006 00000004 00000009')), { type: 'ping', id: 9 });
  assert.deepEqual(parseFrame(hex('8003 0007 00000008 00000011 00000001')), { type: 'goaway', lastGoodStreamId: 17, status: GoAwayStatus.PROTOCOL_ERROR });
  assert.deepEqual(parseFrame(hex('8003 0008 00000005 00000003 aa')), { type: 'headers', streamId: 3, flags: 0, headerBlock: hex('aa') });
  assert.deepEqual(parseFrame(hex('8003 0009 00000008 00000003 00008000')), { type: 'window_update', streamId: 3, delta: 32768 });
  assert.deepEqual(parseFrame(hex('00000003 01000003 616263')), { type: 'data', streamId: 3, flags: FLAG_FIN, data: Buffer.from('abc') });
  // §2.2.1: unknown control frame types are ignored, not errors.
  assert.deepEqual(parseFrame(hex('8003 00ff 00000002 0000')), { type: 'unknown', frameType: 255 });
});

test('serializers and the parser agree', () => {
  const frames = [
    serializeSynStream(1, Buffer.from('hb'), FLAG_FIN, 0, 7),
    serializeSynReply(1, Buffer.from('x')),
    serializeRstStream(3, RstStatus.REFUSED_STREAM),
    serializeSettings([{ id: SETTINGS_INITIAL_WINDOW_SIZE, value: 1 << 20 }]),
    serializePing(7),
    serializeGoAway(9, GoAwayStatus.OK),
    serializeWindowUpdate(0, 1000),
    serializeData(5, Buffer.from('payload'), FLAG_FIN),
  ];
  const parsed = new FrameParser().push(Buffer.concat(frames));
  assert.deepEqual(
    parsed.map((f) => f.type),
    ['syn_stream', 'syn_reply', 'rst_stream', 'settings', 'ping', 'goaway', 'window_update', 'data'],
  );
  assert.equal((parsed[0] as Extract<Frame, { type: 'syn_stream' }>).priority, 7);
  assert.deepEqual(parsed[7], { type: 'data', streamId: 5, flags: FLAG_FIN, data: Buffer.from('payload') });
  // Byte by byte gives the same frames.
  const parser = new FrameParser();
  const oneByOne = [...Buffer.concat(frames)].flatMap((b) => parser.push(Buffer.from([b])));
  assert.deepEqual(oneByOne, parsed);
  assert.equal(parser.buffered, 0);
});

test('malformed frames are protocol errors, and only that', () => {
  const bad = [
    '8002 0006 00000004 00000001', // SPDY/2
    '8003 0003 00000004 00000001', // RST_STREAM too short
    '8003 0006 00000008 0000000100000002', // PING too long
    '8003 0004 00000004 00000005', // SETTINGS count without entries
    '00000000 00000000', // DATA on stream 0
    '8003 0001 00000004 00000001', // SYN_STREAM too short
    '8003 0009 00000008 00000001 00000000', // WINDOW_UPDATE delta 0
    '8003 0002 00000004 00000000', // SYN_REPLY on stream 0
  ];
  for (const h of bad) assert.throws(() => parseFrame(Buffer.from(h.replace(/\s+/g, ''), 'hex')), SpdyProtocolError, h);
  // Random bytes: every outcome is a frame or a SpdyProtocolError.
  let x = 12345;
  for (let i = 0; i < 5000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const len = 8 + (x % 40);
    const buf = pattern(len, x);
    if (x % 3 === 0) buf.writeUInt16BE(0x8003, 0);
    buf.writeUInt32BE(((buf[4] << 24) | (len - 8)) >>> 0, 4);
    try {
      parseFrame(buf);
    } catch (err) {
      assert.ok(err instanceof SpdyProtocolError, String(err));
    }
  }
});

test('header blocks: encode/decode, and garbage is rejected', () => {
  const headers: SpdyHeaders = { streamtype: ['data'], port: ['8080'], requestid: ['0'], multi: ['a', 'b'] };
  assert.deepEqual({ ...decodeHeaderBlock(encodeHeaderBlock(headers)) }, headers);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0])), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 0x61])), SpdyProtocolError);
  const dup = Buffer.concat([encodeHeaderBlock({ a: ['1'] }).subarray(0, 4), encodeHeaderBlock({ a: ['1'] }).subarray(4), encodeHeaderBlock({ a: ['2'] }).subarray(4)]);
  dup.writeUInt32BE(2, 0);
  assert.throws(() => decodeHeaderBlock(dup), /duplicate/);
});

/** Node's own deflate with the dictionary, one context, Z_SYNC_FLUSH per block: what a real peer (Go) sends. */
function realDeflater(): (block: Buffer) => Promise<Buffer> {
  const deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  let out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  return (block) =>
    new Promise((resolve) => {
      deflate.write(block);
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const b = Buffer.concat(out);
        out = [];
        resolve(b);
      });
    });
}

test('header codec: reads a real zlib stream across frames; its own output inflates with the dictionary', async () => {
  const deflate = realDeflater();
  const inflate = new HeaderDecompressor();
  const blocks = [{ streamtype: ['error'], port: ['80'], requestid: ['0'] }, { streamtype: ['data'], port: ['80'], requestid: ['0'] }, { streamtype: ['data'], port: ['81'], requestid: ['1'] }];
  for (const h of blocks) {
    const compressed = await deflate(encodeHeaderBlock(h));
    assert.deepEqual({ ...decodeHeaderBlock(await inflate.decompress(compressed)) }, h);
  }
  inflate.close();

  const compressor = new HeaderCompressor();
  const plain = blocks.map((h) => encodeHeaderBlock(h));
  const wire = plain.map((p) => compressor.compress(p));
  // Every frame ends on the sync-flush marker, as Go's inflater needs to hand out the block.
  for (const w of wire) assert.equal(w.subarray(-5).toString('hex'), '000000ffff');
  const inflated = zlib.inflateSync(Buffer.concat(wire), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(inflated, Buffer.concat(plain));
});

test('header codec: corrupt compressed input is a protocol error', async () => {
  const inflate = new HeaderDecompressor();
  await assert.rejects(inflate.decompress(Buffer.from('not zlib at all')), SpdyProtocolError);
  await assert.rejects(inflate.decompress(Buffer.from('still not')), SpdyProtocolError);
  inflate.close();
});

/** A raw SPDY client on a real socket: frames in, frames out, real zlib for its header blocks. */
class RawClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly headers = new Map<number, SpdyHeaders>();
  readonly #deflate = realDeflater();
  readonly #inflate = new HeaderDecompressor();
  readonly #parser = new FrameParser();
  #chain: Promise<void> = Promise.resolve();
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      for (const f of this.#parser.push(c)) {
        this.#chain = this.#chain.then(async () => {
          if (f.type === 'syn_reply') this.headers.set(f.streamId, decodeHeaderBlock(await this.#inflate.decompress(f.headerBlock)));
          this.frames.push(f);
          for (const w of this.#waiters.splice(0)) w();
        });
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.#inflate.close();
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  async open(id: number, headers: SpdyHeaders, flags = 0): Promise<void> {
    this.socket.write(serializeSynStream(id, await this.#deflate(encodeHeaderBlock(headers)), flags));
  }

  async until<T extends Frame>(pred: (f: Frame) => f is T): Promise<T>;
  async until(pred: (f: Frame) => boolean): Promise<Frame>;
  async until(pred: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error('connection closed while waiting for a frame');
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  data(streamId: number): Buffer {
    return Buffer.concat(this.frames.filter((f): f is Extract<Frame, { type: 'data' }> => f.type === 'data' && f.streamId === streamId).map((f) => f.data));
  }
}

async function withSession(opts: Omit<SpdySessionOptions, 'onClose'>, fn: (client: RawClient, closed: Promise<Error | undefined>) => Promise<void>): Promise<void> {
  let onClosed!: (err: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((r) => (onClosed = r));
  const server = net.createServer((s) => new SpdySession(s, { ...opts, onClose: onClosed }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  const client = new RawClient(socket);
  try {
    await fn(client, closed);
  } finally {
    socket.destroy();
    await closed;
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const echoStreams: Omit<SpdySessionOptions, 'onClose'> = {
  onStream(stream) {
    if (stream.header('refuse')) return stream.refuse();
    stream.reply({ echo: [stream.header('name') ?? ''] });
    stream.pipe(stream);
  },
};

test('session: SYN_STREAM gets SYN_REPLY, DATA is echoed, FIN both ways, PING answered', async () => {
  await withSession(echoStreams, async (client) => {
    await client.open(1, { name: ['one'] });
    await client.until((f) => f.type === 'syn_reply' && f.streamId === 1);
    assert.deepEqual({ ...client.headers.get(1) }, { echo: ['one'] });
    client.socket.write(serializeData(1, Buffer.from('hello ')));
    client.socket.write(serializeData(1, Buffer.from('spdy'), FLAG_FIN));
    await client.until((f) => f.type === 'data' && f.streamId === 1 && (f.flags & FLAG_FIN) !== 0);
    assert.equal(client.data(1).toString(), 'hello spdy');

    client.socket.write(serializePing(5));
    assert.deepEqual(await client.until((f) => f.type === 'ping'), { type: 'ping', id: 5 });

    await client.open(3, { refuse: ['yes'] });
    assert.deepEqual(await client.until((f) => f.type === 'rst_stream' && f.streamId === 3), { type: 'rst_stream', streamId: 3, status: RstStatus.REFUSED_STREAM });

    // Stream ids must grow: reusing 1 is refused with PROTOCOL_ERROR.
    await client.open(1, { name: ['again'] });
    assert.deepEqual(await client.until((f) => f.type === 'rst_stream' && f.streamId === 1), { type: 'rst_stream', streamId: 1, status: RstStatus.PROTOCOL_ERROR });
  });
});

test('session: large data is acknowledged with WINDOW_UPDATE and arrives intact', async () => {
  await withSession(echoStreams, async (client) => {
    await client.open(1, {});
    const data = pattern(1024 * 1024, 5);
    for (let off = 0; off < data.length; off += 16384) client.socket.write(serializeData(1, data.subarray(off, off + 16384)));
    client.socket.write(serializeData(1, Buffer.alloc(0), FLAG_FIN));
    await client.until((f) => f.type === 'data' && f.streamId === 1 && (f.flags & FLAG_FIN) !== 0);
    assert.ok(client.data(1).equals(data));
    assert.ok(client.frames.some((f) => f.type === 'window_update' && f.streamId === 1));
    assert.ok(client.frames.some((f) => f.type === 'window_update' && f.streamId === 0));
  });
});

test('session: with enforcePeerWindow, sending stops at the window and resumes on WINDOW_UPDATE', async () => {
  const big = pattern(200 * 1024, 9);
  const opts = {
    enforcePeerWindow: true,
    onStream(stream: import('./node/streams/spdy.ts').SpdyStream) {
      stream.reply();
      stream.end(big);
    },
  };
  await withSession(opts, async (client) => {
    await client.open(1, {}, FLAG_FIN);
    await client.until((f) => f.type === 'syn_reply');
    // Wait for the first 64 KiB, then a PING round trip proves nothing more is coming.
    while (client.data(1).length < 65536) await client.until((f) => f.type === 'data' && client.data(1).length >= 65536);
    client.socket.write(serializePing(1));
    await client.until((f) => f.type === 'ping');
    assert.equal(client.data(1).length, 65536);
    client.socket.write(serializeSettings([{ id: SETTINGS_INITIAL_WINDOW_SIZE, value: 1 << 20 }]));
    client.socket.write(serializeWindowUpdate(0, 1 << 20));
    await client.until((f) => f.type === 'data' && f.streamId === 1 && (f.flags & FLAG_FIN) !== 0);
    assert.ok(client.data(1).equals(big));
  });
});

test('session: garbage gets GOAWAY(PROTOCOL_ERROR) and a closed connection', async () => {
  const garbage = [
    Buffer.from('00000000 00000003 616263'.replace(/ /g, ''), 'hex'), // DATA on stream 0
    Buffer.from('8003 0003 00000004 00000001'.replace(/ /g, ''), 'hex'), // RST_STREAM too short
    Buffer.from('8002000600000004000000010000', 'hex'), // SPDY/2
    serializeSynStream(1, Buffer.from('definitely not zlib')),
  ];
  for (const g of garbage) {
    await withSession(echoStreams, async (client, closed) => {
      client.socket.write(g);
      client.socket.write(serializePing(3));
      const err = await closed;
      assert.ok(err instanceof SpdyProtocolError, String(err));
      await once(client.socket, 'close');
    });
  }
  await withSession(echoStreams, async (client, closed) => {
    client.socket.write(Buffer.from('8002000600000004000000010000', 'hex'));
    const goaway = await client.until((f) => f.type === 'goaway');
    assert.deepEqual(goaway, { type: 'goaway', lastGoodStreamId: 0, status: GoAwayStatus.PROTOCOL_ERROR });
    assert.ok((await closed) instanceof SpdyProtocolError);
  });
});

test('garbage on the upgraded SPDY socket closes that connection; the server keeps serving', async () => {
  const h = await startHarness();
  try {
    for (const tail of [pattern(4096, 77), Buffer.from('80030001ffffffff', 'hex'), serializeSynStream(1, Buffer.from('zzzz'))]) {
      const s = net.connect(h.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('POST /api/v1/namespaces/default/pods/x/portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n');
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      while (!got.includes('\r\n\r\n')) await once(s, 'data');
      assert.match(got, /^HTTP\/1.1 101 Switching Protocols\r\n/);
      assert.match(got, /\r\nUpgrade: SPDY\/3.1\r\n/);
      assert.match(got, /\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n/);
      s.write(tail);
      // A frame announcing 16 MiB that never comes is not garbage yet: end our side so the session sees EOF.
      s.end();
      await once(s, 'close');
    }
    // Still serving: a proper SPDY port-forward through the same server.
    const s = net.connect(h.port, '127.0.0.1');
    s.write('POST /api/v1/namespaces/default/pods/x/portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n');
    const [first] = (await once(s, 'data')) as [Buffer];
    const rest = first.subarray(first.indexOf('\r\n\r\n') + 4);
    const client = new RawClient(s);
    if (rest.length > 0) s.emit('data', rest);
    await client.open(1, { streamtype: ['error'], port: [String(ECHO_PORT)], requestid: ['0'] });
    await client.open(3, { streamtype: ['data'], port: [String(ECHO_PORT)], requestid: ['0'] });
    await client.until((f) => f.type === 'syn_reply' && f.streamId === 3);
    s.write(serializeData(3, Buffer.from('spdy echo')));
    while (client.data(3).toString() !== 'spdy echo') await client.until((f) => f.type === 'data' && f.streamId === 3 && client.data(3).length >= 9);
    s.write(serializeData(3, Buffer.alloc(0), FLAG_FIN));
    await client.until((f) => f.type === 'data' && f.streamId === 1 && (f.flags & FLAG_FIN) !== 0);
    assert.equal(client.data(1).length, 0);
    s.destroy();
    await h.upstreamsClosed();
  } finally {
    await h.close();
  }
});
