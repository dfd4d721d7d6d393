// A small HTTPS client for the upstream API server, for the test cluster's
// own parts (the node agent, the service proxy, the object mirror): JSON
// requests and a line-delimited watch stream, authenticated by a client
// certificate. The plugin never uses this; it goes through client-node.
import { request, Agent } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';

export interface ClientIdentity {
  /** https://127.0.0.1:PORT */
  server: string;
  ca: string;
  cert: string;
  key: string;
}

/** A non-2xx answer; `status` is the HTTP status, `reason` the Status object's reason. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export interface WatchHandle {
  /** Resolves when the stream ends (server closed it, or stop()). */
  ended: Promise<void>;
  stop(): void;
}

export class ApiClient {
  readonly id: ClientIdentity;
  private readonly agent: Agent;

  constructor(id: ClientIdentity) {
    this.id = id;
    this.agent = new Agent({ keepAlive: true, maxSockets: 32, ca: id.ca, cert: id.cert, key: id.key });
  }

  private open(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<IncomingMessage> {
    const url = new URL(path, this.id.server);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method, agent: this.agent,
        headers: { accept: 'application/json', ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}) },
      }, resolve);
      req.on('error', reject);
      req.end(data);
    });
  }

  /** One JSON request; throws ApiError on a non-2xx answer. */
  async call<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.open(method, path, body, contentType);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      let reason = '';
      let message = text.trim();
      try {
        const s = JSON.parse(text) as { reason?: string; message?: string };
        reason = s.reason ?? '';
        message = s.message ?? message;
      } catch {
        // Not a Status object (a proxy error): keep the text.
      }
      throw new ApiError(status, reason, `${method} ${path}: ${status} ${message}`);
    }
    if (!(res.headers['content-type'] ?? '').includes('json')) return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * A watch: calls `onEvent` for each event until the server ends the
   * stream. A 410 (resourceVersion too old) arrives as an ERROR event.
   */
  async watch(path: string, onEvent: (ev: { type: string; object: Record<string, unknown> }) => void): Promise<WatchHandle> {
    const res = await this.open('GET', path);
    if ((res.statusCode ?? 0) !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw new ApiError(res.statusCode ?? 0, '', `watch ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString().trim()}`);
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    // readline passes on its input's errors: the API server going away
    // mid-stream ("aborted") is the end of this watch, which `ended` reports.
    lines.on('error', () => undefined);
    lines.on('line', (l) => {
      if (l.trim()) onEvent(JSON.parse(l) as { type: string; object: Record<string, unknown> });
    });
    const ended = new Promise<void>((resolve) => {
      res.on('close', resolve);
      res.on('error', () => resolve());
    });
    return { ended, stop: () => res.destroy() };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The API path of a resource key as the store names it ("pods", "deployments.apps"). */
export function resourcePath(resource: string, namespace?: string, name?: string, sub?: string): string {
  const dot = resource.indexOf('.');
  const plural = dot < 0 ? resource : resource.slice(0, dot);
  const group = dot < 0 ? '' : resource.slice(dot + 1);
  const base = group ? `/apis/${group}/v1` : '/api/v1';
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}
