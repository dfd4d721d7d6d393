// Strategic merge patch, the way k8s.io/apimachinery's strategicpatch merges
// built-in types: lists with a patchMergeKey merge item by item, `finalizers`
// merges as a set, every other list is replaced. Directives: `$patch:
// replace|delete|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
// `$setElementOrder/<field>`.
import { badRequest } from './status.ts';
import { isObject, type Json, type JsonObject } from './patch.ts';

interface ListMeta {
  mergeKey?: string;
  /** A list of scalars merged as a set (patchStrategy "merge" without a key). */
  primitiveMerge?: boolean;
}

/**
 * patchMergeKey of the lists of the kinds served (from the Go struct tags of
 * k8s.io/api). A field name is enough here: the same name has the same key
 * wherever these kinds use it, except `ports` (containerPort in a container,
 * port in a Service), decided by the items.
 */
const LISTS: Record<string, ListMeta> = {
  containers: { mergeKey: 'name' },
  initContainers: { mergeKey: 'name' },
  ephemeralContainers: { mergeKey: 'name' },
  env: { mergeKey: 'name' },
  volumes: { mergeKey: 'name' },
  volumeMounts: { mergeKey: 'mountPath' },
  volumeDevices: { mergeKey: 'devicePath' },
  ownerReferences: { mergeKey: 'uid' },
  imagePullSecrets: { mergeKey: 'name' },
  conditions: { mergeKey: 'type' },
  hostAliases: { mergeKey: 'ip' },
  topologySpreadConstraints: { mergeKey: 'topologyKey' },
  resourceClaims: { mergeKey: 'name' },
  schedulingGates: { mergeKey: 'name' },
  podIPs: { mergeKey: 'ip' },
  hostIPs: { mergeKey: 'ip' },
  finalizers: { primitiveMerge: true },
};

function listMeta(field: string, original: Json[], patch: Json[]): ListMeta {
  if (field === 'ports') {
    const items = [...original, ...patch].filter(isObject);
    return { mergeKey: items.some((i) => 'containerPort' in i) ? 'containerPort' : 'port' };
  }
  return LISTS[field] ?? {};
}

const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

export function strategicMergePatch(original: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  return mergeMap(isObject(original) ? original : {}, patch);
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((i) => !(isObject(i) && i.$patch !== undefined && Object.keys(i).length === 1)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith(SET_ORDER) || k.startsWith(DELETE_PRIMITIVE)) continue;
    if (val === null) continue;
    out[k] = stripDirectives(val);
  }
  return out;
}

function mergeMap(original: JsonObject, patch: JsonObject): JsonObject {
  const directive = patch.$patch;
  if (directive === 'replace') return stripDirectives(patch) as JsonObject;
  if (directive === 'delete') return {};
  if (directive !== undefined && directive !== 'merge') throw badRequest(`Unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);

  let out: JsonObject = { ...original };
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }

  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      const drop = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !drop.has(JSON.stringify(x)));
    }
  }

  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith(SET_ORDER) || k.startsWith(DELETE_PRIMITIVE)) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (isObject(v) && isObject(cur)) {
      if (v.$patch === 'delete') delete out[k];
      else out[k] = mergeMap(cur, v);
    } else if (Array.isArray(v) && Array.isArray(cur)) {
      out[k] = mergeList(k, cur, v);
    } else if (isObject(v) && v.$patch === 'delete') {
      delete out[k];
    } else {
      out[k] = stripDirectives(v);
    }
  }

  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER) || !Array.isArray(v)) continue;
    const field = k.slice(SET_ORDER.length);
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = reorder(field, cur, v);
  }
  return out;
}

function mergeList(field: string, original: Json[], patch: Json[]): Json[] {
  // A `{"$patch": "replace"}` item means: the list is exactly the other items.
  if (patch.some((i) => isObject(i) && i.$patch === 'replace')) return stripDirectives(patch) as Json[];
  const meta = listMeta(field, original, patch);
  if (meta.primitiveMerge) {
    const out = [...original];
    for (const item of patch) if (!out.some((o) => JSON.stringify(o) === JSON.stringify(item))) out.push(item);
    return out;
  }
  const key = meta.mergeKey;
  if (!key) return stripDirectives(patch) as Json[];
  const out = [...original];
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(item);
      continue;
    }
    const idx = out.findIndex((o) => isObject(o) && item[key] !== undefined && JSON.stringify(o[key]) === JSON.stringify(item[key]));
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = mergeMap(out[idx] as JsonObject, item);
    else out.push(stripDirectives(item));
  }
  return out;
}

/** $setElementOrder: items named in `order` come first in that order, the rest keep theirs. */
function reorder(field: string, list: Json[], order: Json[]): Json[] {
  const key = listMeta(field, list, []).mergeKey;
  const id = (item: Json): string => JSON.stringify(key && isObject(item) ? item[key] : item);
  const wanted = order.map((o) => JSON.stringify(key && isObject(o) ? o[key] : o));
  const ordered: Json[] = [];
  for (const w of wanted) {
    const found = list.find((i) => id(i) === w);
    if (found !== undefined) ordered.push(found);
  }
  return [...ordered, ...list.filter((i) => !wanted.includes(id(i)))];
}
