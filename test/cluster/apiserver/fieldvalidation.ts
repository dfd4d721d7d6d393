// Server-side field validation (the `fieldValidation` query parameter, which
// kubectl sets to Strict because our OpenAPI document declares it): fields
// the kind does not have are rejected (Strict), reported in a Warning header
// (Warn, the default) or ignored (Ignore). The kinds' fields are known from
// their protobuf schema, whose field names are the JSON names.
import type { ServerResponse } from 'node:http';
import { SCHEMA } from './protobuf-schema.ts';
import { messageName, SCALAR_MESSAGES } from './protobuf.ts';
import { apiVersionOf, type ResourceDef } from './resources.ts';
import { badRequest } from './status.ts';

interface FieldInfo {
  type: string;
  repeated: boolean;
}

const fieldCache = new Map<string, Map<string, FieldInfo>>();

/** The JSON fields of a message, with inline (embedded) structs flattened in. */
function fieldsOf(message: string): Map<string, FieldInfo> | undefined {
  const cached = fieldCache.get(message);
  if (cached) return cached;
  const schema = SCHEMA[message];
  if (!schema) return undefined;
  const out = new Map<string, FieldInfo>();
  for (const [name, type, flags = 0] of Object.values(schema)) {
    if ((flags & 2) !== 0 && type.startsWith('m:')) {
      for (const [k, v] of fieldsOf(type.slice(2)) ?? []) out.set(k, v);
    } else {
      out.set(name, { type, repeated: (flags & 1) !== 0 });
    }
  }
  fieldCache.set(message, out);
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function walk(message: string, value: unknown, path: string, patch: boolean, out: string[]): void {
  const fields = fieldsOf(message);
  if (!fields || !isObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    // Strategic merge patch directives ($patch, $retainKeys, $setElementOrder/...).
    if (patch && k.startsWith('$')) continue;
    const p = path ? `${path}.${k}` : k;
    const f = fields.get(k);
    if (!f) {
      out.push(p);
      continue;
    }
    if (v === null) continue;
    if (f.type.startsWith('m:') && !SCALAR_MESSAGES.has(f.type.slice(2))) {
      const m = f.type.slice(2);
      if (f.repeated && Array.isArray(v)) v.forEach((item, i) => walk(m, item, `${p}[${i}]`, patch, out));
      else walk(m, v, p, patch, out);
    } else if (f.type.startsWith('M:m:') && !SCALAR_MESSAGES.has(f.type.slice(4)) && isObject(v)) {
      for (const [mk, mv] of Object.entries(v)) walk(f.type.slice(4), mv, `${p}[${mk}]`, patch, out);
    }
  }
}

/** The unknown fields of an object (or a merge/strategic patch) of a kind, as paths. */
export function unknownFields(def: ResourceDef, body: unknown, patch = false): string[] {
  const out: string[] = [];
  if (!isObject(body)) return out;
  const { apiVersion: _v, kind: _k, ...rest } = body;
  walk(messageName(apiVersionOf(def), def.kind), rest, '', patch, out);
  return out;
}

/** Applies the request's fieldValidation directive to the unknown fields of `body`. */
export function validateFields(def: ResourceDef, query: URLSearchParams, res: ServerResponse, body: unknown, patch = false): void {
  const mode = query.get('fieldValidation') ?? 'Warn';
  if (mode === 'Ignore') return;
  if (mode !== 'Strict' && mode !== 'Warn') {
    throw badRequest(`fieldValidation: Unsupported value: ${JSON.stringify(mode)}: supported values: "Ignore", "Strict", "Warn"`);
  }
  const unknown = unknownFields(def, body, patch);
  if (unknown.length === 0) return;
  if (mode === 'Strict') {
    throw badRequest(
      `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`,
    );
  }
  res.setHeader('Warning', unknown.map((u) => `299 - ${JSON.stringify(`unknown field "${u}"`)}`));
}
