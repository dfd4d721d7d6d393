// Deny by default, as the router does (ARCHITECTURE.md rule 2): the channel
// types and global requests the shadow role serves, one handler each.
// Anything not in these tables is refused — session (so no shell, exec or subsystem), x11, agent forwarding,
// streamlocal, and every type or request nobody named.
import type { AcceptConnection, RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import { SSH_REQUESTS } from '../../../contract/protocol.ts';
import type { ConnContext } from './context.ts';
import { handleDirectTcpip } from './direct-tcpip.ts';
import { makeHelloHandler } from './hello-handler.ts';
import { handleCancelTcpipForward, handleTcpipForward } from './tcpip-forward.ts';

export type ChannelHandler = (
  ctx: ConnContext,
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
) => void;

/** Resolves to the reply: false = REQUEST_FAILURE, true = SUCCESS, a Buffer = SUCCESS with data. */
export type RequestHandler = (ctx: ConnContext, data: unknown) => Promise<Buffer | boolean>;

/** Channel types the server opens, keyed by RFC 4250 channel type name. */
export const CHANNEL_HANDLERS: ReadonlyMap<string, { ssh2Event: 'tcpip'; handle: ChannelHandler }> = new Map([
  ['direct-tcpip', { ssh2Event: 'tcpip', handle: handleDirectTcpip }],
]);

/** Global requests the server answers with success, keyed by request name. */
export const REQUEST_HANDLERS: ReadonlyMap<string, RequestHandler> = new Map<string, RequestHandler>([
  ['tcpip-forward', handleTcpipForward],
  ['cancel-tcpip-forward', handleCancelTcpipForward],
  [SSH_REQUESTS.hello, makeHelloHandler('shadow')],
]);

export function channelHandler(type: string): ChannelHandler | undefined {
  return CHANNEL_HANDLERS.get(type)?.handle;
}

export function requestHandler(name: string): RequestHandler | undefined {
  return REQUEST_HANDLERS.get(name);
}
