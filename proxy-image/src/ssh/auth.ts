// Public-key authentication. ssh2's server hands over the key and signature
// but does not check either: accepting ctx without verifying the signature
// would let anyone who knows a public key log in.
import type { AuthContext, ParsedKey } from 'ssh2';
import { SSH_USER } from '../../../contract/protocol.ts';

export type AuthDecision =
  | { kind: 'accept' }
  /** RFC 4252 §7: the key is acceptable; the client may now sign with it. */
  | { kind: 'key-ok' }
  | { kind: 'reject'; why: string };

/** The signature algorithms a key type may sign with (RFC 8332 for RSA). */
function algoMatches(key: ParsedKey, algo: string): boolean {
  if (key.type === 'ssh-rsa') return algo === 'ssh-rsa' || algo === 'rsa-sha2-256' || algo === 'rsa-sha2-512';
  return key.type === algo;
}

/** Decides one authentication attempt against the allowed keys. */
export function decideAuth(ctx: AuthContext, allowed: readonly ParsedKey[]): AuthDecision {
  if (ctx.username !== SSH_USER) return { kind: 'reject', why: `user ${JSON.stringify(ctx.username)} is not ${SSH_USER}` };
  if (ctx.method !== 'publickey') return { kind: 'reject', why: `method ${ctx.method} is not offered` };
  const key = allowed.find((k) => algoMatches(k, ctx.key.algo) && k.getPublicSSH().equals(ctx.key.data));
  if (!key) return { kind: 'reject', why: `key ${ctx.key.algo} is not authorized` };
  if (!ctx.signature || !ctx.blob) return { kind: 'key-ok' };
  if (key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return { kind: 'reject', why: 'signature does not verify' };
  return { kind: 'accept' };
}
