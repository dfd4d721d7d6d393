// Transport algorithms both halves offer.
import type { CipherAlgorithm, CompressionAlgorithm } from 'ssh2';

/**
 * AES-GCM only. Offered chacha20-poly1305, OpenSSH picks it first, and ssh2
 * does it in pure JavaScript at about half the speed; AES-GCM runs in
 * OpenSSL (numbers: test/bench/tunnel.bench.ts).
 */
export const CIPHERS: CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

/**
 * No compression. The tunnel carries what apps send (mostly compressed or
 * encrypted already) over a link whose limit is CPU, not bytes; and the
 * proxy's bundle leaves ssh2's zlib out (scripts/build.ts), so it must never
 * be negotiated.
 */
export const COMPRESSION: CompressionAlgorithm[] = ['none'];
