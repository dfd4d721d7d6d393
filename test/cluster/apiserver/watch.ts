// Watch: a chunked HTTP response of JSON events, one per line, as the real
// API server streams them (k8s.io/apiserver pkg/endpoints/handlers/watch.go).
// From resourceVersion "0" or none, the current objects come first as ADDED;
// from a given resourceVersion the store's history is replayed; one older than
// the history gets an ERROR event carrying a 410 Expired Status, which is how
// the watch cache answers it and what informers handle by relisting.
import type { KubeObject, WatchEvent } from '../store.ts';
import type { Request, ServerContext } from './context.ts';
import { includeObject, queryBool, queryInt, wantsTable } from './http.ts';
import { apiVersionOf } from './resources.ts';
import { badRequest, expired } from './status.ts';
import { matches, parseFilter } from './filter.ts';
import { toTable } from './table.ts';

/** How often an idle watch that asked for bookmarks gets one. */
const BOOKMARK_INTERVAL_MS = 15_000;

export function serveWatch(ctx: ServerContext, r: Request): void {
  const { def, namespace } = r.target;
  const filter = parseFilter(def, r.query);
  const rvParam = r.query.get('resourceVersion') ?? '';
  if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${JSON.stringify(rvParam)}`);
  const timeout = queryInt(r.query, 'timeoutSeconds');
  const bookmarks = queryBool(r.query, 'allowWatchBookmarks');
  const sendInitial = queryBool(r.query, 'sendInitialEvents');
  const table = wantsTable(r.req.headers.accept);
  const include = table ? includeObject(r.query) : 'Object';
  const res = r.res;

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.socket?.setNoDelay(true);
  res.flushHeaders();
  ctx.streams.add(res);

  let first = true;
  const write = (type: string, obj: unknown): void => {
    let object = obj;
    if (table && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED')) {
      object = toTable(def.key, [obj as KubeObject], { include, withColumns: first });
      first = false;
    }
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const bookmark = (extra?: Record<string, string>): void => {
    const metadata: Record<string, unknown> = { resourceVersion: String(ctx.store.resourceVersion) };
    if (extra) metadata.annotations = extra;
    res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata } })}\n`);
  };

  const inScope = (o: KubeObject): boolean => namespace === undefined || o.metadata.namespace === namespace;
  const listener = (ev: WatchEvent): void => {
    if (ev.resource !== def.key || !inScope(ev.object)) return;
    const now = matches(filter, ev.object);
    // An object moving into or out of the selector is ADDED or DELETED for this watch.
    const before = ev.type === 'MODIFIED' && ev.previous ? matches(filter, ev.previous) : now;
    if (ev.type === 'MODIFIED' && now !== before) write(now ? 'ADDED' : 'DELETED', ev.object);
    else if (now) write(ev.type, ev.object);
  };

  let unsubscribe: (() => void) | undefined;
  if (rvParam === '' || rvParam === '0' || sendInitial) {
    for (const o of ctx.store.list(def.key, namespace)) if (matches(filter, o)) write('ADDED', o);
    if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
    unsubscribe = ctx.store.watch(listener);
  } else {
    unsubscribe = ctx.store.watch(listener, Number(rvParam));
    if (!unsubscribe) {
      write('ERROR', expired(`too old resource version: ${rvParam} (${ctx.store.oldestResumable})`).toStatus());
      ctx.streams.delete(res);
      res.end();
      return;
    }
  }

  const timers: NodeJS.Timeout[] = [];
  if (timeout !== undefined && timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
  if (bookmarks && !table) timers.push(setInterval(() => bookmark(), BOOKMARK_INTERVAL_MS));
  const stop = (): void => {
    unsubscribe?.();
    for (const t of timers) clearTimeout(t);
    ctx.streams.delete(res);
  };
  res.on('close', stop);
}
