// RFC 4254 §7.1 remote forwarding: the client asks the proxy to listen on an
// address in the pod and to hand every accepted connection back as a
// forwarded-tcpip channel. Listeners belong to the SSH connection and close
// with it (ARCHITECTURE.md rule 1: routes live exactly as long as the connection).
import net from 'node:net';
import type { ConnContext } from './context.ts';
import { splice } from '../../../contract/ssh/splice.ts';

export interface ForwardRequest {
  bindAddr: string;
  bindPort: number;
}

/**
 * Where to listen for a requested bind address. RFC 4254 §7.1: "" means all
 * addresses, "localhost" loopback only; other strings are used as given.
 */
export function listenHost(bindAddr: string): string {
  if (bindAddr === '' || bindAddr === '*' || bindAddr === '0.0.0.0') return '0.0.0.0';
  if (bindAddr === 'localhost') return '127.0.0.1';
  return bindAddr;
}

function isForwardRequest(data: unknown): data is ForwardRequest {
  const d = data as ForwardRequest | null;
  return !!d && typeof d.bindAddr === 'string' && typeof d.bindPort === 'number';
}

/** tcpip-forward: listen, reply with the bound port when 0 was asked for. */
export async function handleTcpipForward(ctx: ConnContext, data: unknown): Promise<Buffer | boolean> {
  if (!isForwardRequest(data)) return false;
  const { bindAddr, bindPort } = data;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => forwardOne(ctx, bindAddr, port(), sock));
  const port = () => (server.address() as net.AddressInfo).port;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost(bindAddr), port: bindPort, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    ctx.log(`${ctx.id} tcpip-forward ${bindAddr}:${bindPort} refused: ${(err as NodeJS.ErrnoException).code ?? err}`);
    return false;
  }
  if (ctx.closed) {
    server.close();
    return false;
  }
  server.on('error', (err) => ctx.log(`${ctx.id} tcpip-forward ${bindAddr}:${port()} error: ${err.message}`));
  ctx.forwards.set(`${bindAddr}:${port()}`, server);
  ctx.log(`${ctx.id} tcpip-forward ${bindAddr}:${port()} listening`);
  if (bindPort !== 0) return true;
  const reply = Buffer.alloc(4);
  reply.writeUInt32BE(port(), 0);
  return reply;
}

/** cancel-tcpip-forward: close the listener; connections already handed over stay. */
export async function handleCancelTcpipForward(ctx: ConnContext, data: unknown): Promise<boolean> {
  if (!isForwardRequest(data)) return false;
  const key = `${data.bindAddr}:${data.bindPort}`;
  const server = ctx.forwards.get(key);
  if (!server) return false;
  ctx.forwards.delete(key);
  server.close();
  ctx.log(`${ctx.id} tcpip-forward ${key} cancelled`);
  return true;
}

/** Closes every listener of a connection that has gone. */
export function closeForwards(ctx: ConnContext): void {
  for (const [key, server] of ctx.forwards) {
    server.close();
    ctx.log(`${ctx.id} tcpip-forward ${key} closed with the connection`);
  }
  ctx.forwards.clear();
}

function forwardOne(ctx: ConnContext, bindAddr: string, boundPort: number, sock: net.Socket): void {
  const from = `${sock.remoteAddress}:${sock.remotePort}`;
  // Until the channel is open the socket is not read, so early bytes wait in
  // the kernel and the socket's buffer rather than being lost.
  sock.on('error', () => sock.destroy());
  // The client matches forwarded-tcpip channels on the address it asked for
  // and the port it got (ssh2 and OpenSSH both), so send those back.
  ctx.conn.forwardOut(bindAddr, boundPort, sock.remoteAddress ?? '', sock.remotePort ?? 0, (err, channel) => {
    if (!err && sock.destroyed) {
      channel.destroy();
      return;
    }
    if (err) {
      ctx.log(`${ctx.id} forwarded-tcpip ${bindAddr}:${boundPort} from ${from} refused by client: ${err.message}`);
      sock.destroy();
      return;
    }
    splice(sock, channel);
  });
}
