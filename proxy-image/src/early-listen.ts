// The shadow's SSH port, bound first thing (proxy-image/src/main.ts), before
// the SSH server's modules load. Nothing here may import ssh2: loading it is
// what the early bind goes ahead of.
import net from 'node:net';
import type { EarlyListener } from './ssh/server.ts';

/**
 * The SSH port, bound before the SSH server's modules load (ssh2 is about
 * half of the proxy's start-up): the plugin connects as soon as the kubelet
 * says the container runs, and a connection that comes meanwhile waits in
 * the listen queue and here, instead of being refused and tried again after
 * a back-off.
 */
export async function bindEarly(port: number): Promise<EarlyListener> {
  const held: net.Socket[] = [];
  let serve: ((sock: net.Socket) => void) | undefined;
  const server = net.createServer({ noDelay: true }, (sock) => {
    if (serve) return serve(sock);
    // A client that goes before the hand-over must not take the process with it.
    sock.on('error', () => undefined);
    held.push(sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    handOver(fn) {
      serve = fn;
      for (const sock of held.splice(0)) if (!sock.destroyed) fn(sock);
    },
  };
}
