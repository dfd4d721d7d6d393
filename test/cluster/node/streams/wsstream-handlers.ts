// pods/portforward and pods/exec over the WebSocket channel protocols, as the
// kubelet serves them (pkg/kubelet/cri/streaming/{portforward,remotecommand}/websocket.go),
// and the Status objects both transports report.
import type { WebSocket } from 'ws';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { ExecOptions, ExecProcess, KubeletHooks } from '../../types.ts';
import { KubeletError } from '../../types.ts';
import { CLOSE_SIGNAL, ChannelWriter, decodeChannelMessage, toBuffer, type ChannelProtocol } from './wsstream.ts';

const debug = debuglog('kt-wsstream');

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
