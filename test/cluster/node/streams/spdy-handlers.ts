// pods/portforward and pods/exec over a SPDY/3.1 session, as the kubelet
// serves them (pkg/kubelet/cri/streaming/{portforward,remotecommand}/httpstream.go).
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { ExecProcess, KubeletHooks } from '../../types.ts';
import { SpdySession, type SpdyStream, RstStatus } from './spdy.ts';
import { execFailureStatus, exitStatus, forwardErrorMessage, type ExecTarget, type Status } from './wsstream-handlers.ts';

const debug = debuglog('kt-spdy');

/** How long the second stream of a pair (or the rest of exec's streams) may take to arrive (kubelet's streamCreationTimeout). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

interface StreamPair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer?: NodeJS.Timeout;
  upstream?: Duplex;
}

/**
 * Port-forward: the client opens an `error` and a `data` stream per local
 * connection, tied by the `requestID` header, each naming the `port`. The data
 * stream is spliced to a fresh pod connection; failures are written as text to
 * the error stream, and both streams end when the pod connection does.
 */
export function servePortForwardSpdy(transport: Duplex, head: Buffer | undefined, target: { namespace: string; pod: string }, kubelet: KubeletHooks): SpdySession {
  const pairs = new Map<string, StreamPair>();

  const start = (id: string, pair: StreamPair): void => {
    const data = pair.data!;
    const error = pair.error!;
    const port = Number(data.header('port'));
    const fail = (err: unknown): void => {
      if (!error.destroyed && !error.writableEnded) error.end(forwardErrorMessage(port, target.pod, err));
      if (!data.destroyed && !data.writableEnded) data.end();
      data.resume();
    };
    kubelet.portForward(target.namespace, target.pod, port).then(
      (upstream) => {
        if (data.destroyed || session.closed) {
          upstream.destroy();
          pairs.delete(id);
          return;
        }
        pair.upstream = upstream;
        let open = true;
        data.on('data', (chunk: Buffer) => {
          if (!open) return;
          if (!upstream.write(chunk)) {
            data.pause();
            upstream.once('drain', () => data.resume());
          }
        });
        // Client FIN: it sends no more; half-close the pod connection and keep reading from it.
        data.on('end', () => {
          if (open) upstream.end();
        });
        // Client RST or session gone.
        data.on('close', () => {
          if (data.aborted) upstream.destroy();
        });
        upstream.on('data', (chunk: Buffer) => {
          if (data.destroyed || data.writableEnded) return;
          if (!data.write(chunk)) {
            upstream.pause();
            data.once('drain', () => upstream.resume());
          }
        });
        // The pod closed and every byte it sent is queued on the data stream: close
        // the error stream, then the data stream (FIN after the last DATA),
        // as the kubelet's deferred Close calls do once PortForward returns.
        upstream.on('end', () => {
          if (!error.destroyed && !error.writableEnded) error.end();
          if (!data.destroyed && !data.writableEnded) data.end();
        });
        upstream.on('error', (err) => {
          if (open) fail(err);
        });
        upstream.on('close', () => {
          open = false;
          pairs.delete(id);
          if (!data.destroyed && !data.writableEnded) data.end();
          if (!error.destroyed && !error.writableEnded) error.end();
          data.resume();
        });
      },
      (err: unknown) => {
        pairs.delete(id);
        fail(err);
      },
    );
  };

  const session = new SpdySession(
    transport,
    {
      onStream(stream) {
        const portHeader = stream.header('port');
        const type = stream.header('streamtype');
        const port = Number(portHeader);
        if (!portHeader || !/^\d+$/.test(portHeader) || port < 1 || port > 65535 || (type !== 'data' && type !== 'error')) {
          debug('refusing stream %d: port %s streamType %s', stream.id, portHeader, type);
          stream.refuse(RstStatus.CANCEL);
          return;
        }
        // Clients older than the requestID header pair streams by id: error n, data n+2.
        const id = stream.header('requestid') ?? String(type === 'error' ? stream.id : stream.id - 2);
        let pair = pairs.get(id);
        if (!pair) {
          pair = {};
          pairs.set(id, pair);
        }
        if (pair[type]) {
          stream.refuse(RstStatus.CANCEL);
          return;
        }
        pair[type] = stream;
        stream.reply();
        // Nothing is read from the error stream; drain it so its end is seen.
        if (type === 'error') stream.resume();
        if (pair.data && pair.error) {
          clearTimeout(pair.timer);
          start(id, pair);
        } else {
          const p = pair;
          p.timer = setTimeout(() => {
            pairs.delete(id);
            if (p.error) p.error.end(`timed out waiting for the data stream of request ${id}`);
            p.data?.end();
          }, STREAM_CREATION_TIMEOUT_MS);
          p.timer.unref();
        }
      },
      onClose() {
        for (const pair of pairs.values()) {
          clearTimeout(pair.timer);
          pair.upstream?.destroy();
        }
        pairs.clear();
      },
    },
    head,
  );
  return session;
}

/**
 * Exec: the client opens `error`, then `stdin` / `stdout` / `stderr` / `resize`
 * streams as it asked for them in the query; once they are all there the
 * command runs. The exit Status goes to the error stream as JSON (v4), then
 * the session closes.
 */
export function serveExecSpdy(transport: Duplex, head: Buffer | undefined, target: ExecTarget, kubelet: KubeletHooks): SpdySession {
  const { opts } = target;
  const streams: Partial<Record<'error' | 'stdin' | 'stdout' | 'stderr' | 'resize', SpdyStream>> = {};
  // As the kubelet counts them: one per requested stream, plus resize with a TTY (v3+).
  const expected = ['error', ...(opts.stdin ? ['stdin'] : []), ...(target.stdout ? ['stdout'] : []), ...(target.stderr ? ['stderr'] : []), ...(opts.tty ? ['resize'] : [])];
  let proc: ExecProcess | null = null;
  let started = false;
  let done = false;

  const finish = (status: Status): void => {
    if (done) return;
    done = true;
    streams.error?.end(JSON.stringify(status));
    session.close();
  };

  const run = async (): Promise<void> => {
    if (!kubelet.exec) return finish(execFailureStatus(new Error('exec is not supported by this node')));
    try {
      proc = await kubelet.exec(target.namespace, target.pod, opts);
    } catch (err) {
      return finish(execFailureStatus(err));
    }
    if (session.closed) {
      proc.kill();
      return;
    }
    const p = proc;
    p.stdin?.on('error', (err) => debug('exec stdin: %s', err.message));
    const stdin = streams.stdin;
    if (stdin && p.stdin) {
      stdin.pipe(p.stdin);
    } else p.stdin?.end();
    const resize = streams.resize;
    if (resize) {
      // One JSON object per message: {"Width":80,"Height":24}, concatenated on the stream.
      let buf = '';
      resize.setEncoding('utf8');
      resize.on('data', (text: string) => {
        buf += text;
        let m: RegExpExecArray | null;
        while ((m = /^\s*(\{[^}]*\})/.exec(buf))) {
          buf = buf.slice(m[0].length);
          try {
            const size = JSON.parse(m[1]) as { Width?: number; Height?: number };
            if (typeof size.Width === 'number' && typeof size.Height === 'number') p.resize?.(size.Width, size.Height);
          } catch {
            debug('bad resize message');
          }
        }
      });
    }
    const pipeOut = (source: NodeJS.ReadableStream, sink: SpdyStream | undefined): Promise<void> =>
      new Promise((resolve) => {
        source.on('end', resolve);
        source.on('close', resolve);
        source.on('error', () => resolve());
        if (sink) source.pipe(sink, { end: false });
        else source.resume();
      });
    const outputs = Promise.all([pipeOut(p.stdout, streams.stdout), pipeOut(p.stderr, opts.tty ? streams.stdout : streams.stderr)]);
    const status = await exitStatus(p, outputs, opts.command);
    streams.stdout?.end();
    streams.stderr?.end();
    finish(status);
  };

  const timer = setTimeout(() => {
    if (!started) finish(execFailureStatus(new Error('timed out waiting for client to create streams')));
  }, STREAM_CREATION_TIMEOUT_MS);
  timer.unref();

  const session = new SpdySession(
    transport,
    {
      onStream(stream) {
        const type = stream.header('streamtype');
        if ((type !== 'error' && type !== 'stdin' && type !== 'stdout' && type !== 'stderr' && type !== 'resize') || streams[type] || started) {
          stream.refuse(RstStatus.CANCEL);
          return;
        }
        streams[type] = stream;
        stream.reply();
        if (type !== 'stdin' && type !== 'resize') stream.resume();
        if (!started && expected.every((t) => streams[t as keyof typeof streams])) {
          started = true;
          clearTimeout(timer);
          void run();
        }
      },
      onClose() {
        clearTimeout(timer);
        if (!done) proc?.kill();
      },
    },
    head,
  );
  return session;
}
