// The proxy's SSH side: see server.ts. What the plugin shares with it
// (codecs, keys, ciphers, splice) is in contract/ssh/.
export { startSshServer, isLoopbackHost } from './server.ts';
export type { EarlyListener, SshServer, SshServerOptions } from './server.ts';
export { parseAuthorizedKeys, splitKeyLines } from './authorized-keys.ts';
