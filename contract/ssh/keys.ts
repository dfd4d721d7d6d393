// Key generation. Pure (no I/O), so the plugin's session keys and the
// proxy's host key come from the same checked generator. (The proxy's
// authorized-key parsing: proxy-image/src/ssh/authorized-keys.ts.)
import ssh2 from 'ssh2';

const { utils } = ssh2;

export interface KeyPair {
  /** OpenSSH private key (PEM-like "BEGIN OPENSSH PRIVATE KEY" text). */
  privateKey: string;
  /** One OpenSSH authorized_keys line: "ssh-ed25519 AAAA… comment". */
  publicKey: string;
}

/**
 * A fresh ed25519 key pair. ssh2's generator writes a private key its own
 * parser cannot read about once in 250 calls (measured with ssh2 1.17), so
 * every new key is parsed back and regenerated until it reads.
 */
export function generateEd25519(comment = 'kt'): KeyPair {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    const priv = utils.parseKey(pair.private);
    const pub = utils.parseKey(pair.public);
    if (priv instanceof Error || pub instanceof Error) continue;
    if (!priv.getPublicSSH().equals(pub.getPublicSSH())) continue;
    return { privateKey: pair.private, publicKey: pair.public.trim() };
  }
  throw new Error('could not generate a readable ed25519 key in 20 attempts');
}
