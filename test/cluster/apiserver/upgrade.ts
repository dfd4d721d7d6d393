// HTTP upgrades for pods/portforward and pods/exec: the API server's checks
// (the pod exists and runs, the container is known) answered as a Status
// before upgrading, then the connection goes to the streaming handlers.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerContext } from './context.ts';
import { parsePath } from './router.ts';
import { RESOURCES } from './resources.ts';
import { ApiError, badRequest, notFound, toApiError } from './status.ts';
import { streams } from './streams.ts';

type Obj = Record<string, unknown>;

export function writeStatus(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify(err.toStatus());
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${err.code} ${STATUS_CODES[err.code] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function ports(query: URLSearchParams): number[] {
  const out: number[] = [];
  for (const v of query.getAll('ports')) {
    for (const p of v.split(',')) {
      const n = Number(p.trim());
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw badRequest(`invalid port "${p}"`);
      out.push(n);
    }
  }
  return out;
}

/** Handles an 'upgrade' event of the HTTP server. */
export function handleUpgrade(ctx: ServerContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://apiserver');
  ctx.debug(`${req.method} ${url.pathname}${url.search} (upgrade: ${req.headers.upgrade ?? ''})`);
  try {
    const target = parsePath(url.pathname);
    const sub = target?.subresource;
    if (!target || target.def.key !== RESOURCES.pods || !target.name || (sub !== 'portforward' && sub !== 'exec')) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (req.method !== 'GET' && req.method !== 'POST') throw new ApiError(405, 'MethodNotAllowed', `${req.method} is not allowed on pods/${sub}`);
    const namespace = target.namespace ?? '';
    const pod = ctx.store.get(RESOURCES.pods, namespace, target.name);
    if (!pod) throw notFound('pods', '', target.name);
    const phase = ((pod.status ?? {}) as Obj).phase;
    if (phase !== 'Running') {
      throw badRequest(`unable to upgrade connection: pod ${target.name} is not running (phase ${String(phase ?? 'Unknown')})`);
    }
    if (sub === 'portforward') {
      streams.portForward(req, socket, head, { namespace, pod: target.name, ports: ports(url.searchParams) }, ctx.kubelet);
      return;
    }
    if (!streams.exec) throw new ApiError(501, 'InternalError', 'exec is not supported by this API server');
    const containers = ((((pod.spec ?? {}) as Obj).containers ?? []) as Obj[]).map((c) => String(c.name));
    let container = url.searchParams.get('container') ?? undefined;
    if (!container) {
      if (containers.length !== 1) throw badRequest(`a container name must be specified for pod ${target.name}, choose one of: [${containers.join(' ')}]`);
      container = containers[0];
    } else if (!containers.includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${target.name}`);
    }
    const q = url.searchParams;
    const flag = (n: string): boolean => q.get(n) === 'true' || q.get(n) === '1';
    streams.exec(req, socket, head, { namespace, pod: target.name, opts: { container, command: q.getAll('command'), stdin: flag('stdin'), tty: flag('tty') } }, ctx.kubelet);
  } catch (err) {
    writeStatus(socket, toApiError(err));
  }
}
