// Routing: the non-resource paths (health, version, discovery, OpenAPI) and
// the resource paths /api/v1/... and /apis/GROUP/VERSION/..., parsed into a
// Target and dispatched to the verb handlers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerContext, Target } from './context.ts';
import { findResource } from './resources.ts';
import { ApiError, methodNotAllowed, toApiError } from './status.ts';
import { sendError, sendJson, sendText } from './http.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, versionInfo } from './discovery.ts';
import { openApiDocument, openApiIndex, openApiTarget } from './openapi.ts';
import { handleResource, handleStatus } from './handlers.ts';
import { handleScale } from './scale.ts';
import { handleLogs } from './logs.ts';
import { handleReview, isReview } from './reviews.ts';

const NOT_FOUND = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource');

/**
 * /api/v1/namespaces/NS/pods/NAME/SUB → Target; undefined when the path is
 * not a resource path. A legacy `/watch/` segment after the version sets watch.
 */
export function parsePath(path: string): (Target & { watch: boolean }) | undefined {
  const segs = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  let watch = false;
  if (rest[0] === 'watch') {
    watch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  // namespaces/NAME[/status|/finalize] is the namespace itself; namespaces/NS/RESOURCE… is scoped.
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length === 0 || rest.length > 3) return undefined;
  const def = findResource(group, version, rest[0]);
  if (!def) return undefined;
  if (def.namespaced === false && namespace !== undefined) return undefined;
  const t: Target & { watch: boolean } = { def, watch };
  if (def.namespaced) t.namespace = namespace;
  if (rest.length >= 2) t.name = rest[1];
  if (rest.length === 3) t.subresource = rest[2];
  return t;
}

function discovery(ctx: ServerContext, path: string, req: IncomingMessage): unknown | undefined {
  if (path === '/version') return versionInfo(ctx.version);
  if (path === '/api') return apiVersions(req.headers.host ?? '');
  if (path === '/apis') return apiGroupList();
  if (path === '/openapi/v3') return openApiIndex(ctx.version.gitVersion);
  const oa = openApiTarget(path);
  if (oa) return openApiDocument(oa.group, oa.version, ctx.version.gitVersion);
  let m = /^\/api\/([^/]+)$/.exec(path);
  if (m) return apiResourceList('', m[1]);
  m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
  if (m) return apiResourceList(m[1], m[2]);
  m = /^\/apis\/([^/]+)$/.exec(path);
  if (m) return apiGroup(m[1]);
  return undefined;
}

async function route(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  if (path === '/healthz' || path === '/readyz' || path === '/livez') {
    sendText(res, 200, 'ok');
    return;
  }
  const isDiscovery = /^\/api\/[^/]+$/.test(path) || /^\/apis\/[^/]+(\/[^/]+)?$/.test(path);
  if ((!path.startsWith('/api/') && !path.startsWith('/apis/')) || isDiscovery) {
    const doc = discovery(ctx, path, req);
    if (doc === undefined) throw NOT_FOUND();
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed();
    sendJson(res, 200, doc);
    return;
  }
  const target = parsePath(path);
  if (!target) throw NOT_FOUND();
  const r = { req, res, method, query: url.searchParams, target };
  if (target.watch) {
    url.searchParams.set('watch', 'true');
    if (target.name !== undefined) {
      url.searchParams.set('fieldSelector', [url.searchParams.get('fieldSelector'), `metadata.name=${target.name}`].filter(Boolean).join(','));
      delete target.name;
    }
  }
  if (target.def.namespaced && target.namespace === undefined && target.name !== undefined) throw NOT_FOUND();
  if (target.def.namespaced && target.namespace === undefined && method !== 'GET') throw methodNotAllowed();
  if (isReview(target.def.key)) return handleReview(r);
  switch (target.subresource) {
    case undefined:
      return handleResource(ctx, r);
    case 'status':
      if (!target.def.hasStatus) throw NOT_FOUND();
      return handleStatus(ctx, r);
    case 'scale':
      if (!target.def.subresources.some((s) => s.name === 'scale')) throw NOT_FOUND();
      return handleScale(ctx, r);
    case 'log':
      if (target.def.key !== 'pods') throw NOT_FOUND();
      return handleLogs(ctx, r);
    case 'portforward':
    case 'exec':
      if (target.def.key !== 'pods') throw NOT_FOUND();
      throw new ApiError(400, 'BadRequest', 'Upgrade request required');
    default:
      throw NOT_FOUND();
  }
}

/** The 'request' handler of the HTTP server. */
export function handleRequest(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://apiserver');
  const started = Date.now();
  res.on('finish', () => ctx.debug(`${req.method} ${url.pathname}${url.search} ${res.statusCode} ${Date.now() - started}ms accept=${req.headers.accept ?? ''}`));
  route(ctx, req, res, url).catch((err: unknown) => {
    const e = toApiError(err);
    if (e.code >= 500) ctx.debug(`${req.method} ${url.pathname}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendError(res, e);
  });
}
