// The test cluster's API server: plain HTTP (kubeconfig `server:
// http://HOST:PORT`), serving the kinds in resources.ts from the shared store.
// startApiServer also creates the namespaces a fresh cluster has and starts
// the control loops the API server owns (lifecycle.ts).
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { debuglog } from 'node:util';
import type { ApiServer, ApiServerOptions } from '../types.ts';
import type { ServerContext } from './context.ts';
import { handleRequest } from './router.ts';
import { handleUpgrade } from './upgrade.ts';
import { bootstrap, startLifecycle } from './lifecycle.ts';
import { parseCidr } from './ipalloc.ts';

export { RESOURCES } from './resources.ts';
export { ensureKubernetesService, type KubernetesServiceOptions } from './lifecycle.ts';

const log = debuglog('kt-apiserver');

export const DEFAULT_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4' };

export interface ApiServerExtraOptions {
  /** Log every request (method, path, status, time) through this function. */
  debug?: (msg: string) => void;
}

export async function startApiServer(opts: ApiServerOptions & ApiServerExtraOptions): Promise<ApiServer> {
  parseCidr(opts.serviceCidr);
  const ctx: ServerContext = {
    store: opts.store,
    kubelet: opts.kubelet,
    serviceCidr: opts.serviceCidr,
    version: opts.version ?? DEFAULT_VERSION,
    streams: new Set<ServerResponse>(),
    debug: opts.debug ?? ((msg) => log('%s', msg)),
  };
  bootstrap(opts.store);
  const stopLifecycle = startLifecycle(opts.store);

  const sockets = new Set<Socket>();
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => handleRequest(ctx, req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, req, socket, head));
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let closed: Promise<void> | undefined;

  return {
    url: `http://${host}:${port}`,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        stopLifecycle();
        for (const res of ctx.streams) res.end();
        server.close(() => resolve());
        // Upgraded sockets (port-forward, exec) and idle keep-alives end too.
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}
