// The proxy's SSH side: see server.ts.
export { startSshServer, isLoopbackHost } from './server.ts';
export { CIPHERS } from './algorithms.ts';
export type { SshServer, SshServerOptions } from './server.ts';
export { generateEd25519, parseAuthorizedKeys, splitKeyLines } from './keys.ts';
export type { KeyPair } from './keys.ts';
export { splice } from './splice.ts';
export { decodeHello, encodeHello } from './hello.ts';
export type { HelloInfo } from './hello.ts';
