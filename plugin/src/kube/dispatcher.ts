// One connection pool per KubeConfig for every API call of the process.
//
// client-node (2.x) builds a new undici Agent for every request
// (KubeConfig.applySecurityAuthentication → createDispatcher), so each API
// call opened its own TCP connection and did a full TLS handshake with the
// client certificate, and none was reused: a mesh join paid a handshake for
// each of its half a dozen reads and writes, and every running session one
// more per heartbeat, in its own CPU and the API server's. Here the Agent is
// made once per distinct set of TLS options and shared, so calls reuse a
// kept-alive connection, and a new connection resumes the TLS session of an
// earlier one (undici keeps the tickets per server).
import type { KubeConfig } from '@kubernetes/client-node';

/** The client's private factory this wraps: (cluster, TLS options) → an undici Dispatcher, or undefined for none. */
type MakeDispatcher = (cluster: { server?: string; proxyUrl?: string; skipTLSVerify?: boolean } | null, opts: Record<string, unknown>) => unknown;

/** What tells two dispatchers apart: the server, its proxy, and the TLS options (certificates by their bytes). */
export function dispatcherKey(cluster: Parameters<MakeDispatcher>[0], opts: Record<string, unknown>): string {
  const bytes = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('base64') : Array.isArray(v) ? v.map(bytes) : v);
  return JSON.stringify([cluster?.server, cluster?.proxyUrl, cluster?.skipTLSVerify, opts.rejectUnauthorized, opts.servername, opts.passphrase,
    ...['ca', 'cert', 'key', 'pfx'].map((k) => bytes(opts[k]))]);
}

/**
 * Makes `kc` share one dispatcher among all requests with the same TLS
 * options (the Watch and the typed APIs alike). Returns false when the
 * client no longer has the factory this wraps (a client upgrade; the unit
 * test then fails, requests still work, each on its own connection).
 */
export function shareDispatchers(kc: KubeConfig): boolean {
  // A private method of client-node's KubeConfig (config.ts, createDispatcher): typed here by hand.
  const internals = kc as unknown as { createDispatcher?: MakeDispatcher };
  const make = internals.createDispatcher;
  if (typeof make !== 'function') return false;
  const made = new Map<string, unknown>();
  internals.createDispatcher = (cluster, opts) => {
    const key = dispatcherKey(cluster, opts);
    if (!made.has(key)) made.set(key, make.call(kc, cluster, opts));
    return made.get(key);
  };
  return true;
}
