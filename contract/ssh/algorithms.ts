// Transport algorithms both halves offer.
import type { CipherAlgorithm } from 'ssh2';

/**
 * AES-GCM only. Offered chacha20-poly1305, OpenSSH picks it first, and ssh2
 * does it in pure JavaScript at about half the speed; AES-GCM runs in
 * OpenSSL (numbers: test/bench/tunnel.bench.ts).
 */
export const CIPHERS: CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
