// pods/log: checks what the API server and kubelet check before streaming
// (pod exists, is on a node, the container is named when there are several
// and exists), then streams the kubelet's log bytes as text/plain.
import type { Request, ServerContext } from './context.ts';
import { queryBool, queryInt } from './http.ts';
import { badRequest, methodNotAllowed, toApiError } from './status.ts';
import { getOne } from './handlers.ts';
import type { LogOptions } from '../types.ts';

type Obj = Record<string, unknown>;

export async function handleLogs(ctx: ServerContext, r: Request): Promise<void> {
  if (r.method !== 'GET') throw methodNotAllowed();
  const { def, namespace, name } = r.target;
  const pod = getOne(ctx, def, namespace, name ?? '');
  const spec = (pod.spec ?? {}) as Obj;
  const containers = (Array.isArray(spec.containers) ? spec.containers : []) as Obj[];
  const names = containers.map((c) => String(c.name));
  let container = r.query.get('container') ?? undefined;
  if (!container) {
    if (names.length !== 1) throw badRequest(`a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`);
    container = names[0];
  } else if (!names.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
  }
  if (!spec.nodeName) throw badRequest(`pod ${pod.metadata.name} does not have a host assigned`);
  const statuses = (((pod.status ?? {}) as Obj).containerStatuses ?? []) as Obj[];
  const cs = statuses.find((s) => s.name === container);
  const waiting = (cs?.state as Obj | undefined)?.waiting as Obj | undefined;
  const previous = queryBool(r.query, 'previous');
  const phase = ((pod.status ?? {}) as Obj).phase;
  const notStarted = cs ? waiting !== undefined && !(cs.lastState as Obj | undefined)?.terminated : phase === 'Pending';
  if (!previous && notStarted) {
    const reason = waiting?.reason ? String(waiting.reason) : 'ContainerCreating';
    throw badRequest(`container "${container}" in pod "${pod.metadata.name}" is waiting to start: ${reason}`);
  }
  const opts: LogOptions = {
    container,
    follow: queryBool(r.query, 'follow'),
    timestamps: queryBool(r.query, 'timestamps'),
    previous,
  };
  const tail = queryInt(r.query, 'tailLines');
  if (tail !== undefined) opts.tailLines = tail;
  const since = queryInt(r.query, 'sinceSeconds');
  if (since !== undefined) opts.sinceSeconds = since;

  const stream = await ctx.kubelet.logs(namespace ?? '', pod.metadata.name, opts);
  const res = r.res;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  ctx.streams.add(res);
  res.on('close', () => {
    ctx.streams.delete(res);
    stream.destroy();
  });
  stream.on('error', (err) => {
    ctx.debug(`log stream of ${namespace}/${pod.metadata.name}: ${toApiError(err).message}`);
    res.destroy();
  });
  stream.pipe(res);
}
