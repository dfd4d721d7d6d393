// The plugin's tunnel layer: an SSH client over a port-forward stream, with
// direct-tcpip channels, reverse forwards and local listeners.
export { openTunnel } from './tunnel.ts';
export type { Tunnel, TunnelOptions, TunnelEvents } from './tunnel.ts';
export { makeSessionKey, pinHostKey } from './keys.ts';
export type { KeyPair } from './keys.ts';
export type { ForwardHandle, ForwardTarget } from './forward-in.ts';
export type { ListenHandle } from './listen.ts';
export type { HelloInfo } from '../../../contract/ssh/hello.ts';
export { requestRoute, RouteRefusedError } from './route.ts';
export type { RouteHandle } from './route.ts';
