// Per-session keys: the plugin makes a fresh ed25519 pair for every session
// and passes the public half to the proxy pod (KT_AUTHORIZED_KEYS), so a key
// never outlives the session that made it.
import ssh2 from 'ssh2';
import { generateEd25519 } from '../../../contract/ssh/keys.ts';
import type { KeyPair } from '../../../contract/ssh/keys.ts';

export type { KeyPair };

/** A validated ed25519 pair: privateKey in OpenSSH format, publicKey as one authorized_keys line. */
export function makeSessionKey(comment = 'kubectl-kt session'): KeyPair {
  return generateEd25519(comment);
}

/**
 * A host key check for openTunnel that accepts exactly one key, given as an
 * OpenSSH public key line (the plugin generates the proxy's host key too and
 * passes it in KT_HOST_KEY, so it knows what to expect).
 */
export function pinHostKey(publicKeyLine: string): (key: Buffer) => boolean {
  const want = ssh2.utils.parseKey(publicKeyLine);
  if (want instanceof Error) throw new Error(`not an OpenSSH public key: ${want.message}`);
  const blob = want.getPublicSSH();
  return (key) => key.equals(blob);
}
