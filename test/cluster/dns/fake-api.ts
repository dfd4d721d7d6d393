// Just enough of the API server for watchSource's tests: list and watch of
// core/v1 resources from a Store, newline-delimited JSON events, 410 Gone
// for a resourceVersion the store no longer has, and hooks to make a watch
// fail or drop so the tests can see the source list again.
import { createServer, type ServerResponse } from 'node:http';
import type { Store, WatchEvent } from '../store.ts';

export interface FakeApi {
  url: string;
  /** Requests seen, as "list services" / "watch services@RV". */
  requests: string[];
  /** The next watch of this resource gets an ERROR event with a 410 Status. */
  goneOnce(resource: string): void;
  /** Cut every open watch (as an API server restart would). */
  dropWatches(): void;
  close(): Promise<void>;
}

export async function startFakeApi(store: Store): Promise<FakeApi> {
  const requests: string[] = [];
  const gone = new Set<string>();
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/([a-z]+)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    const resource = m[1];
    if (url.searchParams.get('watch') !== '1') {
      requests.push(`list ${resource}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(store.resourceVersion) }, items: store.list(resource) }));
      return;
    }
    const rv = Number(url.searchParams.get('resourceVersion'));
    requests.push(`watch ${resource}@${rv}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    const send = (ev: WatchEvent): void => {
      if (ev.resource === resource) res.write(`${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
    };
    const stop = gone.delete(resource) ? undefined : store.watch(send, rv);
    if (!stop) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    open.add(res);
    res.on('close', () => {
      stop();
      open.delete(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    goneOnce: (r) => gone.add(r),
    dropWatches: () => {
      for (const res of open) res.destroy();
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
