// RFC 4254 §7.2 direct-tcpip: the client asks the proxy to open a TCP
// connection to host:port as the pod sees it (pod IPs, ClusterIPs, names).
// The channel is confirmed only once the TCP connection is up, as OpenSSH
// does, so a refused or unreachable target is a channel open failure rather
// than an open channel that closes at once.
import net from 'node:net';
import type { AcceptConnection, RejectConnection, TcpipRequestInfo, ServerChannel } from 'ssh2';
import type { ConnContext } from './context.ts';
import { rejectWithDescription } from '../../../contract/ssh/internals.ts';
import { splice } from '../../../contract/ssh/splice.ts';

export function handleDirectTcpip(
  ctx: ConnContext,
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
): void {
  const target = `${info.destIP}:${info.destPort}`;
  const sock = net.connect({ host: info.destIP, port: info.destPort, allowHalfOpen: true });
  sock.setNoDelay(true);
  sock.setTimeout(ctx.connectTimeoutMs);
  const fail = (why: string) => {
    sock.destroy();
    ctx.log(`${ctx.id} direct-tcpip ${target} failed: ${why}`);
    // Reason CONNECT_FAILED (RFC 4254 §5.1 code 2), which ssh2 uses for a
    // reject after the channel was reserved, with the cause as description.
    rejectWithDescription(ctx.conn, reject, `${why} ${target}`);
  };
  sock.once('timeout', () => fail(`no answer in ${ctx.connectTimeoutMs} ms`));
  sock.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
  sock.once('connect', () => {
    sock.removeAllListeners('timeout').removeAllListeners('error');
    sock.setTimeout(0);
    if (ctx.closed) {
      sock.destroy();
      return;
    }
    const channel = accept();
    ctx.log(`${ctx.id} direct-tcpip ${target} open (from ${info.srcIP}:${info.srcPort})`);
    splice(sock, channel, (err) => {
      if (err) ctx.log(`${ctx.id} direct-tcpip ${target} ended: ${err.message}`);
    });
  });
}
