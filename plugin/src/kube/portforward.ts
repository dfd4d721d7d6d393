// One TCP connection to a pod's port, as a Duplex, through the API server's
// pods/portforward (client-node's WebSocket client, v4.channel.k8s.io).
// Everything the plugin sends into the cluster rides such a stream to the
// proxy pod's SSH server (ARCHITECTURE.md: "What runs where").
import { Duplex, PassThrough, Writable } from 'node:stream';
import { debuglog } from 'node:util';
import { apiStatus } from '../errors.ts';
import type { KubeApi } from './api.ts';

const debug = debuglog('kt');

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  port: number;
}

/** Thrown when the API server or the kubelet refuses or breaks the stream. */
export class PortForwardError extends Error {
  readonly status?: number;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'PortForwardError';
    this.status = status;
  }
}

interface WsLike {
  readyState: number;
  on(ev: 'close', fn: (code: number, reason: Buffer) => void): void;
  on(ev: 'error', fn: (err: Error) => void): void;
  close(): void;
  terminate?(): void;
}

/**
 * Opens the stream. The returned Duplex ends when the pod side closes, and is
 * destroyed with a PortForwardError when the kubelet reports an error (for
 * example "connection refused" to the pod port).
 */
export async function openPortForward(api: KubeApi, target: PortForwardTarget): Promise<Duplex> {
  const input = new PassThrough();
  let errText = '';
  // Frames may arrive before the Duplex exists; they wait in `early`.
  const holder: { duplex?: Duplex } = {};
  const early: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (holder.duplex) holder.duplex.push(chunk);
      else early.push(chunk);
      cb();
    },
  });
  const errOut = new Writable({
    write(chunk: Buffer, _enc, cb) {
      // The first frame of each channel carries the port number, which
      // client-node strips: a frame of nothing else leaves an empty chunk on
      // the error channel (met on every tunnel once the plugin ran against
      // the upstream API server). Only text is an error.
      if (chunk.length === 0) return cb();
      errText += chunk.toString('utf8');
      debug('port-forward %s/%s:%d error channel: %s', target.namespace, target.pod, target.port, chunk.toString('utf8'));
      holder.duplex?.destroy(new PortForwardError(`port-forward to ${target.namespace}/${target.pod}:${target.port}: ${errText.trim()}`));
      cb();
    },
  });
  // disconnectOnErr=true: any stream number beyond data/error closes the socket.
  const pf = api.portForward(true);
  let ws: WsLike;
  try {
    ws = (await pf.portForward(target.namespace, target.pod, [target.port], output, errOut, input)) as unknown as WsLike;
  } catch (err) {
    throw toPortForwardError(err, target);
  }
  const duplex = new Duplex({
    read() {
      // client-node pushes as frames arrive; it has no flow control of its
      // own, and the SSH layer above bounds what is in flight by its windows.
    },
    write(chunk: Buffer, _enc, cb) {
      if (ws.readyState !== 1) {
        cb(new PortForwardError(`port-forward to ${target.namespace}/${target.pod}:${target.port} is closed`));
        return;
      }
      input.write(chunk, cb);
    },
    final(cb) {
      input.end();
      cb();
    },
    destroy(err, cb) {
      input.destroy();
      try {
        if (ws.readyState <= 1) ws.close();
      } catch {
        // already closing
      }
      cb(err);
    },
  });
  holder.duplex = duplex;
  for (const b of early) duplex.push(b);
  ws.on('close', () => {
    if (errText) duplex.destroy(new PortForwardError(`port-forward to ${target.namespace}/${target.pod}:${target.port}: ${errText.trim()}`));
    else duplex.push(null);
  });
  ws.on('error', (err) => duplex.destroy(new PortForwardError(err.message)));
  return duplex;
}

function toPortForwardError(err: unknown, target: PortForwardTarget): PortForwardError {
  const text = String((err as { message?: string } | undefined)?.message ?? err);
  // The ws client reports a refused upgrade only in its message ("Unexpected
  // server response: 404"): it carries no status field to read.
  const m = /Unexpected server response: (\d+)/.exec(text);
  const status = m ? Number(m[1]) : apiStatus(err);
  return new PortForwardError(`port-forward to ${target.namespace}/${target.pod}:${target.port} failed: ${text}`, status);
}
