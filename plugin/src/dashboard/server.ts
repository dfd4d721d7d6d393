// The dashboard's local web server: one page, a live status stream (server-
// sent events, rebuilt from watches — no reloads, no polling), and the two
// actions of the CLI (recover a Service, clean a namespace) running the same
// code as the CLI. Listens on 127.0.0.1 only; actions need the per-run token
// the page carries, and requests must name our own host (DNS rebinding).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { LABELS, MANAGED_BY } from '../../../contract/protocol.ts';
import { buildStatus, type PodLike, type ServiceLike, type StatusReport } from '../status/model.ts';
import { restoreService } from '../kube/restore.ts';
import { cleanNamespace } from '../commands/clean.ts';
import { toKtError } from '../errors.ts';
import { PAGE } from './page.ts';

export interface DashboardOptions {
  kc: KubeConfig;
  namespace: string;
  all: boolean;
  port?: number;
  now?: () => number;
  debug?: (m: string) => void;
}

export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface InformerLike<T> {
  on(ev: 'add' | 'update' | 'delete', cb: (o: T) => void): void;
  on(ev: 'error', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(namespace?: string): T[];
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const now = opts.now ?? (() => Date.now());
  const log = opts.debug ?? (() => undefined);
  const { makeInformer, CoreV1Api } = await import('@kubernetes/client-node');
  const api = opts.kc.makeApiClient(CoreV1Api);
  const token = randomBytes(18).toString('base64url');
  const labelSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
  const ns = opts.namespace;

  const pods = (opts.all
    ? makeInformer(opts.kc, '/api/v1/pods', () => api.listPodForAllNamespaces({ labelSelector }), labelSelector)
    : makeInformer(opts.kc, `/api/v1/namespaces/${ns}/pods`, () => api.listNamespacedPod({ namespace: ns, labelSelector }), labelSelector)) as unknown as InformerLike<KubernetesObject>;
  const services = (opts.all
    ? makeInformer(opts.kc, '/api/v1/services', () => api.listServiceForAllNamespaces())
    : makeInformer(opts.kc, `/api/v1/namespaces/${ns}/services`, () => api.listNamespacedService({ namespace: ns }))) as unknown as InformerLike<KubernetesObject>;

  const clients = new Set<ServerResponse>();
  let closed = false;
  let last = '';
  const snapshot = (): StatusReport => buildStatus({
    pods: pods.list().map(iso) as PodLike[],
    services: services.list().map(iso) as ServiceLike[],
    now: now(),
    namespaces: opts.all ? 'all' : [ns],
  });
  let scheduled = false;
  // Many watch events arrive together (a rollout, a clean): one update per tick.
  const publish = (): void => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      const body = JSON.stringify(snapshot());
      if (body === last) return;
      last = body;
      for (const c of clients) c.write(`event: status\ndata: ${body}\n\n`);
    });
  };
  for (const inf of [pods, services]) {
    inf.on('add', publish);
    inf.on('update', publish);
    inf.on('delete', publish);
    // client-node's informer stops on a watch error; restart it (its list brings the cache back).
    inf.on('error', (err) => {
      log(`dashboard watch error: ${String((err as Error | undefined)?.message ?? err)}`);
      if (!closed) setTimeout(() => void inf.start().catch(() => undefined), 1000).unref();
    });
  }
  await Promise.all([pods.start(), services.start()]);

  let host = '';
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = toKtError(err);
      if (!res.headersSent) json(res, 500, { error: e.code, message: e.message, fix: e.fix });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A page elsewhere could resolve its own name to 127.0.0.1; only our host is served.
    if (req.headers.host !== host) {
      json(res, 421, { error: 'misdirected request' });
      return;
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(PAGE.replace('__KT_TOKEN__', token));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/status') {
      json(res, 200, snapshot());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: 1000\nevent: status\ndata: ${JSON.stringify(snapshot())}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    if (req.method === 'POST' && (url.pathname === '/api/recover' || url.pathname === '/api/clean')) {
      if (req.headers['x-kt-token'] !== token) {
        json(res, 403, { error: 'missing or wrong token' });
        return;
      }
      const body = JSON.parse((await readBody(req)) || '{}') as { namespace?: string; name?: string };
      const namespace = String(body.namespace ?? '');
      if (!namespace || (!opts.all && namespace !== ns)) {
        json(res, 400, { error: `namespace ${JSON.stringify(namespace)} is not shown by this dashboard` });
        return;
      }
      if (url.pathname === '/api/recover') {
        const r = await restoreService(opts.kc, { namespace, name: String(body.name ?? '') }, { dryRun: false, strict: true });
        json(res, 200, { actions: r.actions });
      } else {
        json(res, 200, { actions: await cleanNamespace(opts.kc, namespace, { dryRun: false, now: now() }) });
      }
      return;
    }
    json(res, 404, { error: 'not found' });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: opts.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  host = `127.0.0.1:${port}`;
  // Heartbeat ages move with time alone; refresh them for open pages.
  const ticker = setInterval(() => {
    last = '';
    publish();
  }, 5000);
  ticker.unref();
  return {
    url: `http://${host}/`,
    port,
    close: async () => {
      closed = true;
      clearInterval(ticker);
      for (const c of clients) c.end();
      clients.clear();
      await Promise.all([pods.stop().catch(() => undefined), services.stop().catch(() => undefined)]);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** client-node turns timestamps into Dates; the model reads RFC 3339 strings. */
function iso(o: KubernetesObject): KubernetesObject {
  const m = o.metadata as (KubernetesObject['metadata'] & { creationTimestamp?: unknown; deletionTimestamp?: unknown }) | undefined;
  if (!m) return o;
  const s = (d: unknown): string | undefined => (d instanceof Date ? d.toISOString() : (d as string | undefined));
  return { ...o, metadata: { ...m, creationTimestamp: s(m.creationTimestamp) as never, deletionTimestamp: s(m.deletionTimestamp) as never } };
}
