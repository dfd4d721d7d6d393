// The verbs on a resource: get, list, create, update, patch, delete and
// deletecollection (watch is in watch.ts, subresources in subresources.ts).
import type { KubeObject } from '../store.ts';
import type { Request, ServerContext } from './context.ts';
import { includeObject, parseJson, queryBool, queryInt, readBody, sendJson, wantsTable } from './http.ts';
import { apiVersionOf, RESOURCE_DEFS, type ResourceDef } from './resources.ts';
import { ApiError, badRequest, expired, methodNotAllowed, notFound } from './status.ts';
import { matches, parseFilter } from './filter.ts';
import { toTable } from './table.ts';
import { commitUpdate, createObject, type UpdateMode } from './objects.ts';
import { isObject, jsonPatch, mergePatch, type Json } from './patch.ts';
import { strategicMergePatch } from './strategic.ts';
import { deleteObject, orphanDependents, type DeleteOptions } from './deletion.ts';
import { validateFields } from './fieldvalidation.ts';
import { serveWatch } from './watch.ts';

function dryRun(query: URLSearchParams): boolean {
  const v = query.getAll('dryRun');
  if (v.some((d) => d !== 'All')) throw badRequest(`dryRun: Unsupported value: "${v.find((d) => d !== 'All')}": supported values: "All"`);
  return v.length > 0;
}

/** Any single object as the client asked for it: the object, or a one-row Table. */
function sendObject(r: Request, code: number, obj: KubeObject): void {
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, code, toTable(r.target.def.key, [obj], { include: includeObject(r.query), withColumns: true, resourceVersion: obj.metadata.resourceVersion }));
  } else {
    sendJson(r.res, code, obj);
  }
}

export function getOne(ctx: ServerContext, def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
  const obj = ctx.store.get(def.key, namespace, name);
  if (!obj) throw notFound(def.plural, def.group, name);
  return obj;
}

function handleGet(ctx: ServerContext, r: Request): void {
  const { def, namespace, name } = r.target;
  sendObject(r, 200, getOne(ctx, def, namespace, name ?? ''));
}

interface ContinueToken {
  rv: number;
  after: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as ContinueToken;
    if (typeof t.rv === 'number' && typeof t.after === 'string') return t;
  } catch {
    // fall through to the error below
  }
  throw badRequest('continue key is not valid: invalid continue token');
}

const sortKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function handleList(ctx: ServerContext, r: Request): void {
  const { def, namespace } = r.target;
  const filter = parseFilter(def, r.query);
  const rvParam = r.query.get('resourceVersion') ?? '';
  const match = r.query.get('resourceVersionMatch') ?? '';
  if (match && !['Exact', 'NotOlderThan'].includes(match)) {
    throw badRequest(`resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`);
  }
  if (match && rvParam === '') throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
  if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${JSON.stringify(rvParam)}`);
  const current = ctx.store.resourceVersion;
  // Only the latest state is kept: an exact read of an older version cannot be served.
  if (match === 'Exact' && Number(rvParam) !== current) throw expired(`too old resource version: ${rvParam} (${current})`);

  let items = ctx.store.list(def.key, namespace).filter((o) => matches(filter, o));
  const cont = r.query.get('continue');
  if (cont) {
    const t = decodeContinue(cont);
    if (t.rv < ctx.store.oldestResumable) {
      throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
    items = items.filter((o) => sortKey(o) > t.after);
  }
  const limit = queryInt(r.query, 'limit') ?? 0;
  let continueToken: string | undefined;
  let remaining: number | undefined;
  if (limit > 0 && items.length > limit) {
    remaining = items.length - limit;
    items = items.slice(0, limit);
    continueToken = encodeContinue({ rv: current, after: sortKey(items[items.length - 1]) });
  }
  const rv = String(current);
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, 200, toTable(def.key, items, { include: includeObject(r.query), withColumns: true, resourceVersion: rv, continueToken }));
    return;
  }
  const metadata: Record<string, unknown> = { resourceVersion: rv };
  if (continueToken) {
    metadata.continue = continueToken;
    metadata.remainingItemCount = remaining;
  }
  sendJson(r.res, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata, items });
}

async function handleCreate(ctx: ServerContext, r: Request): Promise<void> {
  const body = parseJson(await readBody(r.req));
  validateFields(r.target.def, r.query, r.res, body);
  const created = createObject(ctx, r.target.def, r.target.namespace, body, dryRun(r.query));
  sendObject(r, 201, created);
}

async function handleUpdate(ctx: ServerContext, r: Request, mode: UpdateMode): Promise<void> {
  const { def, namespace, name } = r.target;
  const body = parseJson(await readBody(r.req));
  validateFields(def, r.query, r.res, body);
  const cur = getOne(ctx, def, namespace, name ?? '');
  sendObject(r, 200, commitUpdate(ctx, def, cur, body, mode, dryRun(r.query)));
}

export const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

export function unsupportedPatch(type: string): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')} (got ${JSON.stringify(type)})`,
  );
}

/** Applies a patch of the given Content-Type to a JSON document. */
export function applyPatch(contentType: string, doc: Json, body: Buffer): Json {
  const type = contentType.split(';')[0].trim();
  switch (type) {
    case 'application/json-patch+json':
      return jsonPatch(doc, parseJson(body, 'patch'));
    case 'application/merge-patch+json': {
      const p = parseJson(body, 'patch') as Json;
      if (!isObject(p)) throw badRequest('merge patch must be a JSON object');
      return mergePatch(doc, p);
    }
    case 'application/strategic-merge-patch+json':
      return strategicMergePatch(doc, parseJson(body, 'patch') as Json);
    default:
      throw unsupportedPatch(type);
  }
}

/**
 * Server-side apply, approximated: the applied configuration is created, or
 * merged into the live object with strategic-merge rules (lists merge by key
 * as SSA's associative lists do). Field ownership is not tracked: a field
 * dropped from the applied configuration is not removed, and there are no
 * apply conflicts.
 */
function serverSideApply(ctx: ServerContext, r: Request, body: Buffer, mode: UpdateMode): KubeObject {
  const { def, namespace, name } = r.target;
  let applied: unknown;
  try {
    applied = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(415, 'UnsupportedMediaType', 'server-side apply: this test API server accepts the applied configuration as JSON only (kubectl sends JSON)');
  }
  if (!isObject(applied as Json)) throw badRequest('server-side apply: the body must be an object');
  validateFields(def, r.query, r.res, applied);
  const cur = ctx.store.get(def.key, namespace, name ?? '');
  if (!r.query.get('fieldManager')) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
  if (!cur) {
    if (mode === 'status') throw notFound(def.plural, def.group, name ?? '');
    const obj = applied as KubeObject;
    obj.metadata = { ...(isObject(obj.metadata as unknown as Json) ? obj.metadata : {}), name: name ?? '' };
    return createObject(ctx, def, namespace, obj, dryRun(r.query));
  }
  const merged = strategicMergePatch(cur as unknown as Json, applied as Json) as unknown as KubeObject;
  merged.metadata.resourceVersion = cur.metadata.resourceVersion;
  return commitUpdate(ctx, def, cur, merged, mode, dryRun(r.query));
}

async function handlePatch(ctx: ServerContext, r: Request, mode: UpdateMode): Promise<void> {
  const { def, namespace, name } = r.target;
  const type = (r.req.headers['content-type'] ?? '').split(';')[0].trim();
  if (!PATCH_TYPES.includes(type)) throw unsupportedPatch(type);
  const body = await readBody(r.req);
  if (type === 'application/apply-patch+yaml') {
    const cur = ctx.store.get(def.key, namespace, name ?? '');
    const out = serverSideApply(ctx, r, body, mode);
    sendObject(r, cur ? 200 : 201, out);
    return;
  }
  if (type !== 'application/json-patch+json') validateFields(def, r.query, r.res, parseJson(body, 'patch'), true);
  const cur = getOne(ctx, def, namespace, name ?? '');
  const patched = applyPatch(type, cur as unknown as Json, body);
  sendObject(r, 200, commitUpdate(ctx, def, cur, patched, mode, dryRun(r.query)));
}

async function deleteOptions(r: Request): Promise<DeleteOptions> {
  const raw = await readBody(r.req);
  const body = raw.length > 0 ? (parseJson(raw, 'DeleteOptions') as Record<string, unknown>) : {};
  const opts: DeleteOptions = {};
  const grace = queryInt(r.query, 'gracePeriodSeconds') ?? (typeof body.gracePeriodSeconds === 'number' ? body.gracePeriodSeconds : undefined);
  if (grace !== undefined) opts.gracePeriodSeconds = grace;
  const policy = r.query.get('propagationPolicy') ?? body.propagationPolicy;
  if (policy !== undefined && policy !== null) {
    if (policy !== 'Foreground' && policy !== 'Background' && policy !== 'Orphan') {
      throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(policy)}: supported values: "Foreground", "Background", "Orphan"`);
    }
    opts.propagationPolicy = policy;
  }
  if (body.orphanDependents === true) opts.propagationPolicy = 'Orphan';
  if (isObject(body.preconditions as Json)) opts.preconditions = body.preconditions as DeleteOptions['preconditions'];
  const dry = [...r.query.getAll('dryRun'), ...(Array.isArray(body.dryRun) ? (body.dryRun as string[]) : [])];
  opts.dryRun = dry.includes('All');
  return opts;
}

function deleteOne(ctx: ServerContext, def: ResourceDef, namespace: string | undefined, name: string, opts: DeleteOptions): KubeObject {
  if (opts.propagationPolicy === 'Orphan' && !opts.dryRun) {
    const cur = getOne(ctx, def, namespace, name);
    orphanDependents(ctx.store, cur, RESOURCE_DEFS.filter((d) => d.namespaced));
  }
  // Foreground and Background both delete the dependents (lifecycle.ts);
  // Foreground's "owner stays until the dependents are gone" is not modelled.
  return deleteObject(ctx.store, def, namespace, name, opts);
}

async function handleDelete(ctx: ServerContext, r: Request): Promise<void> {
  const { def, namespace, name } = r.target;
  const opts = await deleteOptions(r);
  const out = deleteOne(ctx, def, namespace, name ?? '', opts);
  sendJson(r.res, 200, out);
}

async function handleDeleteCollection(ctx: ServerContext, r: Request): Promise<void> {
  const { def, namespace } = r.target;
  const opts = await deleteOptions(r);
  const filter = parseFilter(def, r.query);
  const items: KubeObject[] = [];
  for (const o of ctx.store.list(def.key, namespace)) {
    if (!matches(filter, o)) continue;
    try {
      items.push(deleteOne(ctx, def, o.metadata.namespace, o.metadata.name, opts));
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }
  sendJson(r.res, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items });
}

/** Dispatches a request on a collection or an object (no subresource). */
export async function handleResource(ctx: ServerContext, r: Request): Promise<void> {
  const { def, name } = r.target;
  const m = r.method;
  if (name === undefined) {
    if (m === 'GET') {
      if (queryBool(r.query, 'watch')) serveWatch(ctx, r);
      else handleList(ctx, r);
      return;
    }
    if (m === 'POST') return handleCreate(ctx, r);
    if (m === 'DELETE' && def.verbs.includes('deletecollection')) return handleDeleteCollection(ctx, r);
    throw methodNotAllowed();
  }
  switch (m) {
    case 'GET':
      return handleGet(ctx, r);
    case 'PUT':
      return handleUpdate(ctx, r, 'main');
    case 'PATCH':
      return handlePatch(ctx, r, 'main');
    case 'DELETE':
      return handleDelete(ctx, r);
    default:
      throw methodNotAllowed();
  }
}

/** GET/PUT/PATCH on the status subresource. */
export async function handleStatus(ctx: ServerContext, r: Request): Promise<void> {
  if (r.method === 'GET') return handleGet(ctx, r);
  if (r.method === 'PUT') return handleUpdate(ctx, r, 'status');
  if (r.method === 'PATCH') return handlePatch(ctx, r, 'status');
  throw methodNotAllowed();
}
