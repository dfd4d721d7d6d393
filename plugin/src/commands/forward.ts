// `kubectl kt forward <svc/NAME|HOST> LOCAL:REMOTE`: a cluster address on a
// local port, through a shadow proxy's tunnel. Unlike kubectl port-forward it
// reaches any Service or host the cluster reaches (not one pod), and a
// dropped tunnel reconnects: new connections wait for it instead of failing.
import { createServer, type Server } from 'node:net';
import type { OptionsOf } from '../cli.ts';
import { relay } from '../connect/socks.ts';
import type { Deps } from '../deps.ts';
import { apiStatus, fromApiError, ktError } from '../errors.ts';
import { ProxySession } from '../session/proxy-session.ts';
import { progressPrinter } from '../session/progress.ts';

export interface ForwardResult {
  namespace: string;
  local: string;
  remote: string;
  connections: number;
}

export async function run(opts: OptionsOf<'forward'>, deps: Deps): Promise<ForwardResult> {
  const target = await deps.kube();
  const api = await deps.api();
  let host: string;
  if (opts.target.kind === 'service') {
    // Resolve here: a typo fails before any pod is made, and the ClusterIP
    // needs no DNS in the proxy.
    const svc = await api.core.readNamespacedService({ namespace: target.namespace, name: opts.target.name }).catch((err: unknown) => {
      if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name: opts.target.kind === 'service' ? opts.target.name : '', namespace: target.namespace });
      throw fromApiError(err, { verb: 'get', resource: 'services', namespace: target.namespace });
    });
    const ip = svc.spec?.clusterIP;
    host = ip && ip !== 'None' ? ip : `${opts.target.name}.${target.namespace}.svc`;
  } else {
    host = opts.target.host;
  }
  const { local, remote } = opts.ports;
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? ktError('KT_ERR_PORT_IN_USE', { port: local, host: '127.0.0.1' }) : err));
    server.listen({ host: '127.0.0.1', port: local }, () => resolve());
  });
  const progress = progressPrinter(deps.err, deps.clock.now);
  const session = new ProxySession({ api, namespace: target.namespace, image: opts.image, role: 'shadow', kind: 'forward', progress, debug: deps.debug, signal: deps.signal });
  let connections = 0;
  try {
    await session.start();
    server.on('connection', (sock) => {
      connections++;
      sock.setNoDelay(true);
      sock.pause();
      session.dial(host, remote).then(
        (up) => {
          relay(sock, up);
          sock.resume();
        },
        (err: Error) => {
          deps.debug(`forward ${host}:${remote}: ${err.message}`);
          sock.destroy();
        },
      );
    });
    const shown = opts.target.kind === 'service' ? `svc/${opts.target.name}` : host;
    deps.err.write(`forwarding 127.0.0.1:${local} -> ${shown}:${remote} in ${target.namespace}; Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => (deps.signal.aborted ? resolve() : deps.signal.addEventListener('abort', () => resolve(), { once: true })));
    return { namespace: target.namespace, local: `127.0.0.1:${local}`, remote: `${host}:${remote}`, connections };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await session.close();
  }
}

export function text(data: unknown): string {
  const r = data as ForwardResult;
  return `stopped forwarding ${r.local} -> ${r.remote} (${r.connections} connections)`;
}
