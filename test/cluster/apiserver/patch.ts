// JSON merge patch (RFC 7386) and JSON patch (RFC 6902), pure functions on
// plain JSON values. Strategic merge patch is in strategic.ts.
import { ApiError, badRequest } from './status.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

/** RFC 6901 pointer to reference tokens. */
function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`the server rejected our request due to an error in our request: invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function fail(msg: string): ApiError {
  // The real server wraps json-patch errors into a 422 Invalid... but kubectl
  // shows them as "the server rejected our request"; 422 with the message is what
  // `kubectl patch --type json` prints for a failed test or missing path.
  return new ApiError(422, 'Invalid', msg);
}

function parentOf(doc: Json, toks: string[], path: string): { parent: JsonObject | Json[]; last: string } {
  let cur: Json = doc;
  for (const t of toks.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= cur.length) throw fail(`jsonpatch: path "${path}" does not exist`);
      cur = cur[i];
    } else if (isObject(cur)) {
      if (!Object.hasOwn(cur, t)) throw fail(`doc is missing path: "${path}": missing value`);
      cur = cur[t];
    } else {
      throw fail(`doc is missing path: "${path}": missing value`);
    }
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw fail(`doc is missing path: "${path}": missing value`);
  return { parent: cur, last: toks[toks.length - 1] };
}

function getAt(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const t of tokens(path)) {
    if (Array.isArray(cur) && /^\d+$/.test(t) && Number(t) < cur.length) cur = cur[Number(t)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw fail(`doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function add(doc: Json, path: string, value: Json): Json {
  const toks = tokens(path);
  if (toks.length === 0) return structuredClone(value);
  const { parent, last } = parentOf(doc, toks, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!/^(\d+|-)$/.test(last) || i > parent.length) throw fail(`jsonpatch add operation does not apply: index out of bounds: ${last}`);
    parent.splice(i, 0, structuredClone(value));
  } else {
    parent[last] = structuredClone(value);
  }
  return doc;
}

function remove(doc: Json, path: string): Json {
  const toks = tokens(path);
  if (toks.length === 0) throw fail('jsonpatch: cannot remove the whole document');
  const { parent, last } = parentOf(doc, toks, path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!/^\d+$/.test(last) || i >= parent.length) throw fail(`jsonpatch remove operation does not apply: doc is missing path: "${path}"`);
    parent.splice(i, 1);
  } else {
    if (!Object.hasOwn(parent, last)) throw fail(`jsonpatch remove operation does not apply: doc is missing path: "${path}"`);
    delete parent[last];
  }
  return doc;
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 6902: add, remove, replace, move, copy, test — all or nothing. */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be a JSON array of operations');
  let doc = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    if (!isObject(raw as unknown) || typeof raw.path !== 'string') throw badRequest('json patch operation needs "op" and "path"');
    switch (raw.op) {
      case 'add':
        if (!('value' in raw)) throw fail(`jsonpatch add operation does not apply: missing value`);
        doc = add(doc, raw.path, raw.value as Json);
        break;
      case 'remove':
        doc = remove(doc, raw.path);
        break;
      case 'replace':
        if (!('value' in raw)) throw fail(`jsonpatch replace operation does not apply: missing value`);
        getAt(doc, raw.path);
        if (raw.path === '') doc = structuredClone(raw.value as Json);
        else doc = add(remove(doc, raw.path), raw.path, raw.value as Json);
        break;
      case 'move': {
        if (typeof raw.from !== 'string') throw badRequest('json patch move needs "from"');
        const v = getAt(doc, raw.from);
        doc = add(remove(doc, raw.from), raw.path, v);
        break;
      }
      case 'copy': {
        if (typeof raw.from !== 'string') throw badRequest('json patch copy needs "from"');
        doc = add(doc, raw.path, getAt(doc, raw.from));
        break;
      }
      case 'test': {
        const cur = getAt(doc, raw.path);
        if (!deepEqual(cur, (raw.value ?? null) as Json)) throw fail(`testing value ${raw.path} failed: test failed`);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${String(raw.op)}`);
    }
  }
  return doc;
}
