// Authorized-key parsing for the proxy's login check (KT_AUTHORIZED_KEYS).
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

const { utils } = ssh2;

/**
 * Parses OpenSSH public key lines (authorized_keys format without options).
 * Blank lines and # comments are skipped; anything else that does not parse
 * is an error naming the line, because a silently dropped key is a login
 * that fails with no explanation.
 */
export function parseAuthorizedKeys(lines: readonly string[]): ParsedKey[] {
  const keys: ParsedKey[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const key = utils.parseKey(line);
    if (key instanceof Error) throw new Error(`authorized key ${i + 1} is not an OpenSSH public key: ${key.message}`);
    if (key.isPrivateKey()) throw new Error(`authorized key ${i + 1} is a private key; give the public key line`);
    keys.push(key);
  });
  return keys;
}

/** Splits the KT_AUTHORIZED_KEYS value (newline-separated) into lines. */
export function splitKeyLines(value: string | undefined): string[] {
  return (value ?? '').split(/\r?\n/);
}
