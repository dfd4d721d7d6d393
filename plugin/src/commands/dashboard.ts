// `kubectl kt dashboard`: the status as a live local web page on 127.0.0.1,
// opened in the browser (unless --no-open), until Ctrl-C.
import { spawn } from 'node:child_process';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { ktError } from '../errors.ts';
import { startDashboard } from '../dashboard/server.ts';

export interface DashboardResult {
  url: string;
}

/** The command that opens a URL in the default browser on this platform. */
export function openCommand(platform: NodeJS.Platform, url: string): [string, string[]] {
  if (platform === 'darwin') return ['open', [url]];
  if (platform === 'win32') return ['cmd', ['/c', 'start', '""', url]];
  return ['xdg-open', [url]];
}

export async function run(opts: OptionsOf<'dashboard'>, deps: Deps): Promise<DashboardResult> {
  const target = await deps.kube();
  const dash = await startDashboard({ api: await deps.api(), namespace: target.namespace, all: opts.allNamespaces, port: opts.port, debug: deps.debug }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') throw ktError('KT_ERR_PORT_IN_USE', { port: opts.port ?? 0, host: '127.0.0.1' }, err);
    throw err;
  });
  try {
    deps.err.write(`dashboard for ${opts.allNamespaces ? 'all namespaces' : `namespace ${target.namespace}`}: ${dash.url} (Ctrl-C to stop)\n`);
    if (!opts.noOpen) {
      const [cmd, args] = openCommand(process.platform, dash.url);
      const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
      child.on('error', () => deps.err.write(`could not start a browser (${cmd}); open ${dash.url} yourself\n`));
      child.unref();
    }
    await new Promise<void>((resolve) => (deps.signal.aborted ? resolve() : deps.signal.addEventListener('abort', () => resolve(), { once: true })));
    return { url: dash.url };
  } finally {
    await dash.close();
  }
}

export function text(data: unknown): string {
  return `dashboard ${(data as DashboardResult).url} stopped`;
}
