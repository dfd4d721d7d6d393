// The Kubernetes WebSocket channel protocols (k8s.io/apiserver/pkg/util/wsstream):
// every message starts with a channel byte; `*.channel.k8s.io` is binary,
// `*.base64.channel.k8s.io` is text with the channel as an ASCII digit and a
// base64 body. v5 adds the close signal: [255, channel] half-closes a channel.
// Also the byte-stream view of a WebSocket that tunnels SPDY.
import type { WebSocket, RawData } from 'ws';
import { Duplex } from 'node:stream';

export const CLOSE_SIGNAL = 255;

export interface ChannelProtocol {
  name: string;
  binary: boolean;
  /** v5: the peer may half-close a channel with [255, channel]. */
  closeSignal: boolean;
}

function protocol(name: string): ChannelProtocol {
  return { name, binary: !name.includes('base64'), closeSignal: name.startsWith('v5.') };
}

// What the kubelet accepts for port-forward (pkg/kubelet/cri/streaming/portforward/websocket.go):
// "" (plain binary channels), v4 binary and v4 base64. It does not speak v5
// for port-forward, so client-node (which offers v5 first) gets v4 from a
// real cluster, and so it does here; v5 is taken only when nothing else is offered.
const PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
const PORT_FORWARD_LAST_RESORT = ['v5.channel.k8s.io'];
// Exec (pkg/kubelet/cri/streaming/remotecommand/websocket.go plus v5 since 1.30).
const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];

/**
 * Picks the subprotocol as wsstream's handshake does: the first one the client
 * offers that the server supports. An empty offer means plain binary channels.
 * Returns null when nothing offered is supported.
 */
export function negotiateChannelProtocol(offered: string[], kind: 'portforward' | 'exec'): ChannelProtocol | null {
  if (offered.length === 0) return protocol('');
  const supported = kind === 'exec' ? EXEC_PROTOCOLS : PORT_FORWARD_PROTOCOLS;
  const pick = offered.find((p) => supported.includes(p)) ?? (kind === 'portforward' ? offered.find((p) => PORT_FORWARD_LAST_RESORT.includes(p)) : undefined);
  return pick ? protocol(pick) : null;
}

/** The offered subprotocols, in the client's order. */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  const raw = Array.isArray(header) ? header.join(',') : header ?? '';
  return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function encodeChannelMessage(proto: ChannelProtocol, channel: number, data: Buffer): Buffer | string {
  if (proto.binary) {
    const out = Buffer.allocUnsafe(data.length + 1);
    out[0] = channel;
    data.copy(out, 1);
    return out;
  }
  return String.fromCharCode(48 + channel) + data.toString('base64');
}

/** Decodes one message; null for an empty or malformed one (the kubelet skips those). */
export function decodeChannelMessage(proto: ChannelProtocol, msg: Buffer, isBinary: boolean): { channel: number; data: Buffer } | null {
  if (msg.length === 0) return null;
  if (proto.binary) {
    if (!isBinary) return null;
    return { channel: msg[0], data: msg.subarray(1) };
  }
  const text = msg.toString('latin1');
  if (text.charCodeAt(0) === CLOSE_SIGNAL) return { channel: CLOSE_SIGNAL, data: Buffer.from([text.charCodeAt(1)]) };
  const channel = text.charCodeAt(0) - 48;
  if (channel < 0 || channel > 9) return null;
  return { channel, data: Buffer.from(text.slice(1), 'base64') };
}

/** A ws message payload as one Buffer. */
export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Sends channel messages with backpressure: pause the source while more than
 * HIGH bytes are queued on the WebSocket, resume below half of that.
 */
export class ChannelWriter {
  static readonly HIGH = 1 << 20;
  readonly #ws: WebSocket;
  readonly #proto: ChannelProtocol;
  #queued = 0;
  #waiters: (() => void)[] = [];

  constructor(ws: WebSocket, proto: ChannelProtocol) {
    this.#ws = ws;
    this.#proto = proto;
  }

  /** Returns false when the caller should pause until onDrain. */
  send(channel: number, data: Buffer): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return true;
    const msg = encodeChannelMessage(this.#proto, channel, data);
    this.#queued += msg.length;
    this.#ws.send(msg, { binary: this.#proto.binary }, () => {
      this.#queued -= msg.length;
      if (this.#queued < ChannelWriter.HIGH / 2 && this.#waiters.length > 0) {
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w();
      }
    });
    return this.#queued < ChannelWriter.HIGH;
  }

  onDrain(fn: () => void): void {
    this.#waiters.push(fn);
  }
}

/**
 * A WebSocket as a byte stream, for SPDY tunnelled through it (client-go's
 * TunnelingConnection): every binary message carries the next bytes of the
 * SPDY connection, with no channel byte; a text message is a protocol error.
 * Ending the stream closes the WebSocket with 1000, which Go reads as EOF.
 */
export class WebSocketTunnel extends Duplex {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.destroy(new Error('text message in a SPDY tunnel'));
        return;
      }
      if (!this.push(toBuffer(data))) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.#ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return cb(new Error('WebSocket is closed'));
    this.#ws.send(chunk, { binary: true }, (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState === this.#ws.OPEN) {
      if (err) this.#ws.terminate();
      else this.#ws.close(1000);
    }
    cb(err);
  }
}
