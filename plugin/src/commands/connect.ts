// `kubectl kt connect`: this machine reaches pod IPs, ClusterIPs and service
// DNS names through a shadow proxy pod.
//   --mode socks: a local SOCKS5 + HTTP proxy; with `-- CMD`, CMD runs with
//                 the proxy in its environment and the session ends with it.
//   --mode route: every local process reaches the cluster (root; see
//                 connect/route.ts).
import { spawn } from 'node:child_process';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { ktError } from '../errors.ts';
import { proxyEnv, startProxyServer, type ProxyServer, type ProxyServerOptions } from '../connect/socks.ts';
import { ProxySession } from '../session/proxy-session.ts';
import { progressPrinter } from '../session/progress.ts';

export interface ConnectResult {
  readonly namespace: string;
  readonly pod: string;
  readonly session: string;
  readonly mode: 'socks' | 'route';
  readonly socks?: string;
  readonly http?: string;
  /** The exit code of `-- CMD`, when one ran. */
  readonly exitCode?: number;
  readonly command?: readonly string[];
}

export async function run(opts: OptionsOf<'connect'>, deps: Deps): Promise<ConnectResult> {
  if (opts.mode === 'route' && (opts.header.length > 0 || opts.baggage.length > 0)) {
    const flag = opts.header.length > 0 ? '--header' : '--baggage';
    const first = opts.header[0] ? `${opts.header[0].name}=${opts.header[0].value}` : `${opts.baggage[0].key}=${opts.baggage[0].value}`;
    throw ktError('KT_ERR_BAD_VALUE', { what: flag, value: first, reason: 'the HTTP proxy of --mode socks adds it; --mode route passes connections as they are. Drop --mode route' });
  }
  if (opts.mode === 'route' && process.getuid?.() !== 0) {
    throw ktError('KT_ERR_NEEDS_ROOT', { what: 'connect --mode route' });
  }
  const target = await deps.kube();
  const api = await deps.api();
  const progress = progressPrinter(deps.err, deps.clock.now);
  const session = new ProxySession({
    api,
    namespace: target.namespace,
    image: opts.image,
    role: 'shadow',
    kind: 'connect',
    progress,
    debug: deps.debug,
    signal: deps.signal,
  });
  const servers: ProxyServer[] = [];
  let undoRoute: (() => Promise<void>) | undefined;
  try {
    await session.start();
    const base = { namespace: target.namespace, pod: session.podName, session: session.id };
    if (opts.mode === 'route') {
      const { startRouteMode } = await import('../connect/route.ts');
      const done = progress.step('wiring cluster addresses and DNS into this machine');
      const route = await startRouteMode({
        api,
        session,
        namespace: target.namespace,
        namespaces: opts.allNamespaces ? 'all' : [target.namespace, ...(opts.namespaces ?? [])],
        debug: deps.debug,
        progress,
      });
      undoRoute = () => route.close();
      done(route.summary);
      deps.err.write(`connected: every process here reaches namespace ${target.namespace}'s pods, Services and DNS names; Ctrl-C to disconnect\n`);
      await waitForAbort(deps.signal);
      return { ...base, mode: 'route' };
    }
    const dial = (host: string, port: number) => session.dial(host, port);
    const tags = { setHeaders: opts.header, baggage: opts.baggage };
    // Both ports speak both protocols (the first byte tells them apart); two
    // ports exist because tools expect a "SOCKS port" and an "HTTP port".
    servers.push(await listen(opts.socksPort, dial, tags));
    servers.push(await listen(opts.httpPort, dial, tags));
    const socks = `socks5h://127.0.0.1:${servers[0].port}`;
    const http = `http://127.0.0.1:${servers[1].port}`;
    const command = opts.rest ?? [];
    if (command.length > 0) {
      const exitCode = await runCommand(command, proxyEnv(servers[1].port, deps.env as NodeJS.ProcessEnv), deps);
      return { ...base, mode: 'socks', socks, http, exitCode, command };
    }
    deps.err.write(`connected: SOCKS5 proxy ${socks}, HTTP proxy ${http}; Ctrl-C to disconnect\n`);
    if (opts.header.length > 0 || opts.baggage.length > 0) {
      deps.err.write(`  plain-HTTP requests through the HTTP proxy carry ${[...opts.header.map((h) => `${h.name}: ${h.value}`), ...opts.baggage.map((b) => `baggage ${b.key}=${b.value}`)].join(', ')}; HTTPS (CONNECT) and SOCKS5 pass untouched\n`);
    }
    deps.err.write(`  try: curl --socks5-hostname 127.0.0.1:${servers[0].port} http://SERVICE.${target.namespace}/\n`);
    await waitForAbort(deps.signal);
    return { ...base, mode: 'socks', socks, http };
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    await undoRoute?.();
    await session.close();
  }
}

export function text(data: unknown): string {
  const r = data as ConnectResult;
  if (r.exitCode !== undefined) return '';
  return `disconnected from ${r.namespace} (pod ${r.pod} removed)`;
}

/** `connect -- CMD` exits with CMD's code. */
export function exitCode(data: unknown): number {
  return (data as ConnectResult).exitCode ?? 0;
}

async function listen(port: number, dial: (h: string, p: number) => Promise<import('node:stream').Duplex>, tags: Pick<ProxyServerOptions, 'setHeaders' | 'baggage'>): Promise<ProxyServer> {
  try {
    return await startProxyServer({ dial, port, ...tags });
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') throw ktError('KT_ERR_PORT_IN_USE', { port, host: '127.0.0.1' }, err);
    throw err;
  }
}

function runCommand(command: readonly string[], env: NodeJS.ProcessEnv, deps: Deps): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    // Ctrl-C reaches the child through the terminal's process group; on an
    // abort from elsewhere (SIGTERM), pass it on.
    const onAbort = (): void => {
      child.kill('SIGTERM');
    };
    deps.signal.addEventListener('abort', onAbort);
    child.on('error', (err) => {
      deps.signal.removeEventListener('abort', onAbort);
      reject(ktError('KT_ERR_COMMAND_FAILED', { command: command[0], reason: err.message }, err));
    });
    child.on('exit', (code, sig) => {
      deps.signal.removeEventListener('abort', onAbort);
      resolve(code ?? 128 + (sig ? signalNumber(sig) : 0));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  const map: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return map[sig] ?? 0;
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
