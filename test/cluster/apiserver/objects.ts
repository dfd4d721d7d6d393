// The write path shared by create, update, patch and server-side apply:
// identity checks, server-owned metadata, admission, optimistic concurrency,
// and no-op detection (a write that changes nothing keeps its resourceVersion,
// as the real API server does, so controllers' idempotent writes cause no events).
import type { KubeObject } from '../store.ts';
import type { ServerContext } from './context.ts';
import { admit } from './admission.ts';
import { RESOURCES, apiVersionOf, type ResourceDef } from './resources.ts';
import { ApiError, badRequest, conflict, notFound, qualified } from './status.ts';
import { deepEqual, isObject, type Json } from './patch.ts';

const SUFFIX_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** The 5 random characters the API server appends to generateName (utilrand.String). */
export function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_CHARS[Math.floor(Math.random() * SUFFIX_CHARS.length)];
  return s;
}

/** Fills in apiVersion/kind from the endpoint and rejects a body meant for another kind. */
export function checkKind(def: ResourceDef, body: unknown): KubeObject {
  if (!isObject(body as Json)) throw badRequest('the body must be a JSON object');
  const obj = body as KubeObject;
  const want = apiVersionOf(def);
  if (obj.apiVersion !== undefined && obj.apiVersion !== want) {
    throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${want})`);
  }
  if (obj.kind !== undefined && obj.kind !== def.kind) {
    throw badRequest(`the kind in the data (${String(obj.kind)}) does not match the expected kind (${def.kind})`);
  }
  obj.apiVersion = want;
  obj.kind = def.kind;
  if (!isObject(obj.metadata as unknown as Json)) obj.metadata = { name: '' };
  return obj;
}

function checkNamespace(ctx: ServerContext, def: ResourceDef, obj: KubeObject, namespace: string | undefined): void {
  if (!def.namespaced) {
    delete obj.metadata.namespace;
    return;
  }
  if (obj.metadata.namespace && obj.metadata.namespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  obj.metadata.namespace = namespace;
}

export function createObject(ctx: ServerContext, def: ResourceDef, namespace: string | undefined, body: unknown, dryRun: boolean): KubeObject {
  const obj = checkKind(def, body);
  checkNamespace(ctx, def, obj, namespace);
  const meta = obj.metadata;
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'managedFields', 'selfLink']) {
    delete meta[k];
  }
  if (def.namespaced) {
    const ns = ctx.store.get(RESOURCES.namespaces, undefined, namespace ?? '');
    if (!ns) throw notFound('namespaces', '', namespace ?? '');
    if (ns.metadata.deletionTimestamp) {
      const name = meta.name || meta.generateName || '';
      throw new ApiError(403, 'Forbidden', `${qualified(def.plural, def.group)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, {
        name,
        group: def.group || undefined,
        kind: def.plural,
      });
    }
  }
  pruneMeta(obj);
  const generate = !meta.name && typeof meta.generateName === 'string' && meta.generateName !== '';
  for (let attempt = 0; ; attempt++) {
    if (generate) meta.name = `${meta.generateName}${randomSuffix()}`;
    admit(ctx, def, obj);
    if (dryRun) return obj;
    if (generate && attempt < 8 && ctx.store.get(def.key, obj.metadata.namespace, meta.name)) continue;
    return ctx.store.create(def.key, obj);
  }
}

/** ObjectMeta's omitempty: the real server never returns an empty labels map or finalizers list. */
function pruneMeta(obj: KubeObject): void {
  const m = obj.metadata;
  for (const k of ['labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields'] as const) {
    const v = m[k];
    if (v !== undefined && (v === null || (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0))) delete m[k];
  }
}

export type UpdateMode = 'main' | 'status';

/**
 * Replaces `cur` with `next` (an update or a patch result). `next`'s
 * resourceVersion, when set, must match (409 Conflict otherwise).
 */
export function commitUpdate(ctx: ServerContext, def: ResourceDef, cur: KubeObject, next: unknown, mode: UpdateMode, dryRun: boolean): KubeObject {
  const body = checkKind(def, next);
  const name = cur.metadata.name;
  if (body.metadata.name !== undefined && body.metadata.name !== '' && body.metadata.name !== name) {
    throw badRequest(`the name of the object (${String(body.metadata.name)}) does not match the name on the URL (${name})`);
  }
  if (def.namespaced && body.metadata.namespace && body.metadata.namespace !== cur.metadata.namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  const wanted = body.metadata.resourceVersion;
  if (wanted && wanted !== cur.metadata.resourceVersion) throw conflict(def.plural, def.group, name);

  let obj: KubeObject;
  if (mode === 'status') {
    obj = { ...structuredClone(cur), status: body.status };
  } else {
    obj = structuredClone(body);
    const m = cur.metadata;
    obj.metadata = { ...obj.metadata, name, uid: m.uid, creationTimestamp: m.creationTimestamp, generation: m.generation };
    if (def.namespaced) obj.metadata.namespace = m.namespace;
    else delete obj.metadata.namespace;
    delete obj.metadata.managedFields;
    obj.metadata.deletionTimestamp = m.deletionTimestamp;
    obj.metadata.deletionGracePeriodSeconds = m.deletionGracePeriodSeconds;
    // The main endpoint of a kind with a status subresource ignores status.
    if (def.hasStatus) {
      if (cur.status === undefined) delete obj.status;
      else obj.status = structuredClone(cur.status);
    }
    if (def.key === RESOURCES.namespaces) obj.spec = cur.spec;
    admit(ctx, def, obj, cur);
  }
  obj.metadata.resourceVersion = cur.metadata.resourceVersion;
  pruneMeta(obj);
  obj = JSON.parse(JSON.stringify(obj)) as KubeObject;
  if (deepEqual(obj as unknown as Json, cur as unknown as Json)) return cur;
  if (dryRun) return obj;
  return ctx.store.update(def.key, obj);
}
