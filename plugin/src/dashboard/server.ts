// The dashboard's local web server: one page, a live status stream (server-
// sent events, rebuilt from watches — no reloads, no polling), and the two
// actions of the CLI (recover a Service, clean a namespace) running the same
// code as the CLI. Listens on 127.0.0.1 only; actions need the per-run token
// the page carries, and requests must name our own host (DNS rebinding).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubernetesObject } from '@kubernetes/client-node';
import { LABELS, MANAGED_BY } from '../../../contract/protocol.ts';
import { buildStatus, type PodLike, type ServiceLike, type StatusReport } from '../status/model.ts';
import { restoreService } from '../kube/restore.ts';
import { cleanNamespace } from '../commands/clean.ts';
import { toKtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { PAGE } from './page.ts';

export interface DashboardOptions {
  api: KubeApi;
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
  const token = randomBytes(18).toString('base64url');
  const feed = new StatusFeed(opts, now);
  await feed.start();

  let host = '';
  const handle = handler(opts, feed, token, () => host, now);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = toKtError(err);
      if (!res.headersSent) json(res, 500, { error: e.code, message: e.message, fix: e.fix });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: opts.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  host = `127.0.0.1:${port}`;
  // Heartbeat ages move with time alone; refresh them for open pages.
  const ticker = setInterval(() => feed.refresh(), 5000);
  ticker.unref();
  return {
    url: `http://${host}/`,
    port,
    close: async () => {
      clearInterval(ticker);
      await feed.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/** kubectl-kt's pods and the Services, watched, and the status built from them, streamed to every open page. */
class StatusFeed {
  private readonly pods: InformerLike<KubernetesObject>;
  private readonly services: InformerLike<KubernetesObject>;
  private readonly clients = new Set<ServerResponse>();
  private closed = false;
  private last = '';
  private scheduled = false;

  private readonly opts: DashboardOptions;
  private readonly now: () => number;

  constructor(opts: DashboardOptions, now: () => number) {
    this.opts = opts;
    this.now = now;
    const { api, namespace: ns } = opts;
    const core = api.core;
    const labelSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
    this.pods = (opts.all
      ? api.informer('/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector }), labelSelector)
      : api.informer(`/api/v1/namespaces/${ns}/pods`, () => core.listNamespacedPod({ namespace: ns, labelSelector }), labelSelector)) as unknown as InformerLike<KubernetesObject>;
    this.services = (opts.all
      ? api.informer('/api/v1/services', () => core.listServiceForAllNamespaces())
      : api.informer(`/api/v1/namespaces/${ns}/services`, () => core.listNamespacedService({ namespace: ns }))) as unknown as InformerLike<KubernetesObject>;
  }

  async start(): Promise<void> {
    const log = this.opts.debug ?? (() => undefined);
    const publish = (): void => this.publish();
    for (const inf of [this.pods, this.services]) {
      inf.on('add', publish);
      inf.on('update', publish);
      inf.on('delete', publish);
      // client-node's informer stops on a watch error; restart it (its list brings the cache back).
      inf.on('error', (err) => {
        log(`dashboard watch error: ${String((err as Error | undefined)?.message ?? err)}`);
        if (!this.closed) setTimeout(() => void inf.start().catch(() => undefined), 1000).unref();
      });
    }
    await Promise.all([this.pods.start(), this.services.start()]);
  }

  snapshot(): StatusReport {
    return buildStatus({
      pods: this.pods.list().map(iso) as PodLike[],
      services: this.services.list().map(iso) as ServiceLike[],
      now: this.now(),
      namespaces: this.opts.all ? 'all' : [this.opts.namespace],
    });
  }

  /** Many watch events arrive together (a rollout, a clean): one update per tick, and none when nothing changed. */
  private publish(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const body = JSON.stringify(this.snapshot());
      if (body === this.last) return;
      this.last = body;
      for (const c of this.clients) c.write(`event: status\ndata: ${body}\n\n`);
    });
  }

  /** Sends the status again even if unchanged (the ages in it moved). */
  refresh(): void {
    this.last = '';
    this.publish();
  }

  /** An open page's event stream: the status now, then every change. */
  subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(`retry: 1000\nevent: status\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.clients) c.end();
    this.clients.clear();
    await Promise.all([this.pods.stop().catch(() => undefined), this.services.stop().catch(() => undefined)]);
  }
}

/** The routes: the page, the status (once and as a stream), and the two actions. */
function handler(opts: DashboardOptions, feed: StatusFeed, token: string, ourHost: () => string, now: () => number): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const host = ourHost();
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
      json(res, 200, feed.snapshot());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      feed.subscribe(req, res);
      return;
    }
    if (req.method === 'POST' && (url.pathname === '/api/recover' || url.pathname === '/api/clean')) {
      if (req.headers['x-kt-token'] !== token) {
        json(res, 403, { error: 'missing or wrong token' });
        return;
      }
      const body = JSON.parse((await readBody(req)) || '{}') as { namespace?: string; name?: string };
      const namespace = String(body.namespace ?? '');
      if (!namespace || (!opts.all && namespace !== opts.namespace)) {
        json(res, 400, { error: `namespace ${JSON.stringify(namespace)} is not shown by this dashboard` });
        return;
      }
      if (url.pathname === '/api/recover') {
        const r = await restoreService(opts.api, { namespace, name: String(body.name ?? '') }, { dryRun: false, strict: true });
        json(res, 200, { actions: r.actions });
      } else {
        json(res, 200, { actions: await cleanNamespace(opts.api, namespace, { dryRun: false, now: now() }) });
      }
      return;
    }
    json(res, 404, { error: 'not found' });
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
