// The scale subresource of Deployments and ReplicaSets: an autoscaling/v1
// Scale whose spec.replicas reads and writes the workload's spec.replicas
// (what `kubectl scale` PATCHes with a merge patch).
import type { KubeObject } from '../store.ts';
import type { Request, ServerContext } from './context.ts';
import { parseJson, readBody, sendJson } from './http.ts';
import { badRequest, conflict, invalid, methodNotAllowed } from './status.ts';
import { applyPatch, getOne, PATCH_TYPES, unsupportedPatch } from './handlers.ts';
import { commitUpdate } from './objects.ts';
import { isObject, type Json } from './patch.ts';
import { labelSelectorString, requirementsOf, type LabelSelectorObject } from './selectors.ts';

type Obj = Record<string, unknown>;

export function scaleOf(obj: KubeObject): KubeObject {
  const spec = (obj.spec ?? {}) as Obj;
  const status = (obj.status ?? {}) as Obj;
  const m = obj.metadata;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: Number(spec.replicas ?? 0) },
    status: { replicas: Number(status.replicas ?? 0), selector: labelSelectorString(requirementsOf(spec.selector as LabelSelectorObject)) },
  };
}

function setReplicas(ctx: ServerContext, r: Request, cur: KubeObject, scale: unknown, dryRun: boolean): KubeObject {
  if (!isObject(scale as Json)) throw badRequest('the body must be a Scale object');
  const s = scale as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } };
  const { def, name } = r.target;
  const rv = s.metadata?.resourceVersion;
  if (rv && rv !== cur.metadata.resourceVersion) throw conflict(def.plural, def.group, name ?? '');
  const replicas = s.spec?.replicas ?? 0;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw invalid('Scale', 'autoscaling', name ?? '', [
      { type: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
    ]);
  }
  const next = structuredClone(cur);
  (next.spec as Obj).replicas = replicas;
  return commitUpdate(ctx, def, cur, next, 'main', dryRun);
}

export async function handleScale(ctx: ServerContext, r: Request): Promise<void> {
  const { def, namespace, name } = r.target;
  const cur = getOne(ctx, def, namespace, name ?? '');
  const dryRun = r.query.getAll('dryRun').includes('All');
  if (r.method === 'GET') {
    sendJson(r.res, 200, scaleOf(cur));
    return;
  }
  if (r.method === 'PUT') {
    const body = parseJson(await readBody(r.req), 'Scale');
    sendJson(r.res, 200, scaleOf(setReplicas(ctx, r, cur, body, dryRun)));
    return;
  }
  if (r.method === 'PATCH') {
    const type = (r.req.headers['content-type'] ?? '').split(';')[0].trim();
    if (!PATCH_TYPES.includes(type) || type === 'application/apply-patch+yaml') throw unsupportedPatch(type);
    const patched = applyPatch(type, scaleOf(cur) as unknown as Json, await readBody(r.req));
    sendJson(r.res, 200, scaleOf(setReplicas(ctx, r, cur, patched, dryRun)));
    return;
  }
  throw methodNotAllowed();
}
