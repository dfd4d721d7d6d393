// A local listener that tunnels each accepted connection to host:port as the
// proxy sees it — `ssh -L`. The listener belongs to the caller; the tunnel
// may drop and be replaced without the listener going away (see the
// `connect` option, which is asked for a channel per connection).
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { splice } from '../../../contract/ssh/splice.ts';

export interface ListenHandle {
  port: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Local address; loopback unless the caller means otherwise. */
  host?: string;
  port: number;
  /** Opens the remote side for one accepted connection. */
  connect(): Promise<Duplex>;
  log(msg: string): void;
}

export async function listenLocal(opts: ListenOptions): Promise<ListenHandle> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    opts.connect().then(
      (remote) => {
        if (sock.destroyed) {
          remote.destroy();
          return;
        }
        splice(sock, remote);
        sock.resume();
      },
      (err: Error) => {
        opts.log(`local ${opts.host ?? '127.0.0.1'}:${port} → tunnel failed: ${err.message}`);
        // RST rather than FIN: the client sees "connection reset", not an empty reply.
        sock.resetAndDestroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host ?? '127.0.0.1', port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
