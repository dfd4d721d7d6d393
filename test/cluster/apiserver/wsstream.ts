// The Kubernetes WebSocket channel protocols (k8s.io/apiserver/pkg/util/wsstream):
// every message starts with a channel byte; `*.channel.k8s.io` is binary,
// `*.base64.channel.k8s.io` is text with the channel as an ASCII digit and a
// base64 body. v5 adds the close signal: [255, channel] half-closes a channel.
// Port-forward and exec on top of it, as the kubelet serves them.
import type { WebSocket, RawData } from 'ws';
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { ExecOptions, ExecProcess, KubeletHooks } from '../types.ts';
import { KubeletError } from '../types.ts';

const debug = debuglog('kt-wsstream');

export const CLOSE_SIGNAL = 255;

/** What exec needs beyond ExecOptions: which output streams the client asked for (query stdout/stderr). */
export interface ExecTarget {
  namespace: string;
  pod: string;
  opts: ExecOptions;
  stdout: boolean;
  stderr: boolean;
}

/** A metav1.Status as the kubelet writes it on the exec error stream (no kind/apiVersion). */
export interface Status {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason: string; message: string }[] };
  code?: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The kubelet's text on a port-forward error channel/stream. */
export function forwardErrorMessage(port: number, pod: string, err: unknown): string {
  return `error forwarding port ${port} to pod ${pod}, uid : ${errorMessage(err)}`;
}

/** Exit status of an exec, as remotecommand v4+ reports it: kubectl turns the ExitCode cause into its own exit code. */
export function execExitStatus(command: string[], code: number): Status {
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** Waits for the command to exit and its output to be sent, and describes how it ended. */
export async function exitStatus(proc: ExecProcess, outputs: Promise<unknown>, command: string[]): Promise<Status> {
  try {
    const code = await proc.exited;
    await outputs;
    return execExitStatus(command, code);
  } catch (err) {
    return execFailureStatus(err);
  }
}

/** The command could not run at all. */
export function execFailureStatus(err: unknown): Status {
  const code = err instanceof KubeletError ? err.code : 500;
  return { metadata: {}, status: 'Failure', message: errorMessage(err), reason: code === 404 ? 'NotFound' : code === 400 ? 'BadRequest' : 'InternalError', code };
}

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

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Sends channel messages with backpressure: pause the source while more than
 * HIGH bytes are queued on the WebSocket, resume when below LOW.
 */
class ChannelWriter {
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

function drain(source: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    source.on('end', resolve);
    source.on('close', resolve);
    source.on('error', () => resolve());
    source.resume();
  });
}

/** Ends a pod connection after its pending writes are out, then releases it. */
function release(upstream: Duplex): void {
  if (upstream.destroyed) return;
  if (upstream.writableEnded) {
    upstream.destroy();
    return;
  }
  upstream.end(() => upstream.destroy());
}

interface ForwardPair {
  port: number;
  upstream: Duplex | null;
  pending: Buffer[];
  done: boolean;
}

/**
 * pods/portforward over a WebSocket: for port i, channel 2i carries data and
 * 2i+1 errors; the first message on each channel is the port, uint16 little
 * endian. One pod connection per port per WebSocket; when every pair is done
 * the WebSocket closes, as the kubelet closes it after PortForward returns.
 */
export function servePortForwardWebSocket(ws: WebSocket, proto: ChannelProtocol, target: { namespace: string; pod: string; ports: number[] }, kubelet: KubeletHooks): void {
  const writer = new ChannelWriter(ws, proto);
  const pairs: ForwardPair[] = target.ports.map((port) => ({ port, upstream: null, pending: [], done: false }));
  let closed = false;

  const finishPair = (pair: ForwardPair): void => {
    if (pair.done) return;
    pair.done = true;
    if (pair.upstream) release(pair.upstream);
    if (pairs.every((p) => p.done) && ws.readyState === ws.OPEN) ws.close(1000);
  };

  pairs.forEach((pair, i) => {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(pair.port);
    writer.send(2 * i, portBytes);
    writer.send(2 * i + 1, portBytes);
  });

  ws.on('close', () => {
    closed = true;
    for (const pair of pairs) {
      pair.done = true;
      if (pair.upstream) release(pair.upstream);
    }
  });
  ws.on('error', (err) => debug('portforward websocket: %s', err.message));

  ws.on('message', (raw, isBinary) => {
    const msg = decodeChannelMessage(proto, toBuffer(raw), isBinary);
    if (!msg) return;
    if (msg.channel === CLOSE_SIGNAL) {
      // v5 close signal: the client has no more data for this channel.
      const pair = proto.closeSignal && msg.data.length === 1 && msg.data[0] % 2 === 0 ? pairs[msg.data[0] / 2] : undefined;
      if (pair?.upstream && !pair.done) pair.upstream.end();
      return;
    }
    // Only data channels are readable; anything else is ignored as the kubelet does.
    const pair = msg.channel % 2 === 0 ? pairs[msg.channel / 2] : undefined;
    if (!pair || pair.done || msg.data.length === 0) return;
    if (!pair.upstream) {
      pair.pending.push(Buffer.from(msg.data));
      return;
    }
    if (!pair.upstream.write(msg.data)) {
      ws.pause();
      pair.upstream.once('drain', () => ws.resume());
    }
  });

  // Hold client data until the pod connections exist.
  ws.pause();
  const connecting = pairs.map(async (pair, i) => {
    let upstream: Duplex;
    try {
      upstream = await kubelet.portForward(target.namespace, target.pod, pair.port);
    } catch (err) {
      writer.send(2 * i + 1, Buffer.from(forwardErrorMessage(pair.port, target.pod, err)));
      finishPair(pair);
      return;
    }
    if (closed || pair.done) {
      upstream.destroy();
      return;
    }
    pair.upstream = upstream;
    for (const chunk of pair.pending) upstream.write(chunk);
    pair.pending = [];
    upstream.on('data', (chunk: Buffer) => {
      if (!writer.send(2 * i, chunk)) {
        upstream.pause();
        writer.onDrain(() => upstream.resume());
      }
    });
    upstream.on('end', () => finishPair(pair));
    upstream.on('close', () => finishPair(pair));
    upstream.on('error', (err) => {
      if (!pair.done) writer.send(2 * i + 1, Buffer.from(forwardErrorMessage(pair.port, target.pod, err)));
      finishPair(pair);
    });
  });
  void Promise.all(connecting).then(() => {
    if (!closed) ws.resume();
  });
}

/**
 * pods/exec over a WebSocket: 0 stdin, 1 stdout, 2 stderr, 3 error (a v1
 * Status as JSON, once, at the end), 4 resize ({"Width","Height"} JSON).
 */
export function serveExecWebSocket(ws: WebSocket, proto: ChannelProtocol, target: ExecTarget, kubelet: KubeletHooks): void {
  const writer = new ChannelWriter(ws, proto);
  const { opts } = target;
  let proc: ExecProcess | null = null;
  let closed = false;
  const pendingStdin: Buffer[] = [];
  let stdinClosed = false;
  // The latest terminal size asked for before the process exists.
  const pending: { size: [number, number] | null } = { size: null };

  const finish = (status: Status): void => {
    if (closed) return;
    writer.send(3, Buffer.from(JSON.stringify(status)));
    closed = true;
    ws.close(1000);
  };

  ws.on('error', (err) => debug('exec websocket: %s', err.message));
  ws.on('close', () => {
    closed = true;
    proc?.kill();
  });

  // The kubelet sends an empty message on the lowest writable channel to tell the client the streams are ready.
  writer.send(target.stdout ? 1 : target.stderr ? 2 : 3, Buffer.alloc(0));

  ws.on('message', (raw, isBinary) => {
    const msg = decodeChannelMessage(proto, toBuffer(raw), isBinary);
    if (!msg) return;
    if (msg.channel === CLOSE_SIGNAL) {
      if (proto.closeSignal && msg.data[0] === 0) {
        stdinClosed = true;
        proc?.stdin?.end();
      }
      return;
    }
    if (msg.channel === 0 && opts.stdin) {
      if (!proc) pendingStdin.push(Buffer.from(msg.data));
      else if (proc.stdin && !proc.stdin.writableEnded && !proc.stdin.write(msg.data)) {
        ws.pause();
        proc.stdin.once('drain', () => ws.resume());
      }
    } else if (msg.channel === 4 && opts.tty) {
      try {
        const size = JSON.parse(msg.data.toString('utf8')) as { Width?: number; Height?: number };
        if (typeof size.Width === 'number' && typeof size.Height === 'number') {
          if (proc) proc.resize?.(size.Width, size.Height);
          else pending.size = [size.Width, size.Height];
        }
      } catch {
        debug('bad resize message');
      }
    }
  });

  void (async () => {
    if (!kubelet.exec) return finish(execFailureStatus(new Error('exec is not supported by this node')));
    try {
      proc = await kubelet.exec(target.namespace, target.pod, opts);
    } catch (err) {
      return finish(execFailureStatus(err));
    }
    if (closed) {
      proc.kill();
      return;
    }
    const p = proc;
    p.stdin?.on('error', (err) => debug('exec stdin: %s', err.message));
    if (pending.size) p.resize?.(...pending.size);
    for (const chunk of pendingStdin) p.stdin?.write(chunk);
    if (stdinClosed || !opts.stdin) p.stdin?.end();
    const pump = (source: NodeJS.ReadableStream & { pause(): void; resume(): void }, channel: number): Promise<void> =>
      new Promise((resolve) => {
        source.on('data', (chunk: Buffer) => {
          if (!writer.send(channel, chunk)) {
            source.pause();
            writer.onDrain(() => source.resume());
          }
        });
        source.on('end', resolve);
        source.on('close', resolve);
        source.on('error', () => resolve());
      });
    // A stream the client did not ask for is drained and dropped, as the kubelet does with an ignored channel.
    const outputs = Promise.all([
      target.stdout ? pump(p.stdout, 1) : drain(p.stdout),
      target.stderr || opts.tty ? pump(p.stderr, opts.tty ? 1 : 2) : drain(p.stderr),
    ]);
    finish(await exitStatus(p, outputs, opts.command));
  })();
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
