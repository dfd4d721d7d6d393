// Decoding of request bodies in the Kubernetes protobuf encoding
// (application/vnd.kubernetes.protobuf): kubectl's typed clients send them
// (`kubectl create namespace|configmap|secret|deployment|service ...`) and do
// not fall back to JSON. The body is "k8s\0" + runtime.Unknown{typeMeta, raw};
// raw is the object's message. Field numbers come from protobuf-schema.ts.
// Replies stay JSON: those clients accept application/json too.
import { SCHEMA } from './protobuf-schema.ts';
import { readFields, readPackedVarints, type WireField } from './protobuf-wire.ts';
import { badRequest } from './status.ts';

export const PROTOBUF_MAGIC = Buffer.from('k8s\u0000', 'latin1');

export function isProtobuf(body: Buffer): boolean {
  return body.length >= 4 && body.subarray(0, 4).equals(PROTOBUF_MAGIC);
}

/**
 * The wire format cannot tell a pointer field set to its zero value from a
 * plain field at its zero value (Go's generated marshaller writes the latter
 * too), so zero scalars are dropped — as JSON's omitempty would — except for
 * these pointer fields, where 0 or false is a real choice.
 */
const KEEP_ZERO = new Set([
  'replicas', 'terminationGracePeriodSeconds', 'automountServiceAccountToken', 'runAsUser', 'runAsGroup', 'runAsNonRoot',
  'privileged', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'immutable', 'optional', 'enableServiceLinks',
  'revisionHistoryLimit', 'progressDeadlineSeconds', 'defaultMode', 'activeDeadlineSeconds', 'gracePeriodSeconds',
  'orphanDependents', 'setHostnameAsFQDN', 'shareProcessNamespace', 'hostUsers', 'fsGroup', 'allocateLoadBalancerNodePorts',
  'ready', 'serving', 'terminating',
]);

function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function rfc3339(seconds: number, nanos: number, micro: boolean): string {
  const d = new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, '');
  return micro ? `${d}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z` : `${d}Z`;
}

/** Go's time.Duration.String() for whole seconds and below, enough for the durations kinds carry. */
function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const s = ns / 1e9;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s - h * 3600 - m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${rest}s`;
}

function scalarFields(buf: Uint8Array): Map<number, WireField> {
  return new Map(readFields(buf).map((f) => [f.number, f]));
}

const text = (f: WireField | undefined): string => (f?.bytes ? Buffer.from(f.bytes).toString('utf8') : '');

/** The message types JSON encodes as a scalar. */
export const SCALAR_MESSAGES = new Set(['meta.Time', 'meta.MicroTime', 'meta.Duration', 'resource.Quantity', 'intstr.IntOrString', 'runtime.RawExtension', 'meta.FieldsV1']);

/** The types JSON encodes specially; undefined means "omit". */
function special(type: string, buf: Uint8Array): { value: unknown } | undefined {
  const f = scalarFields(buf);
  switch (type) {
    case 'meta.Time':
    case 'meta.MicroTime': {
      const seconds = toInt(f.get(1)?.varint ?? 0n);
      const nanos = toInt(f.get(2)?.varint ?? 0n);
      return { value: seconds === 0 && nanos === 0 ? undefined : rfc3339(seconds, nanos, type === 'meta.MicroTime') };
    }
    case 'meta.Duration':
      return { value: goDuration(toInt(f.get(1)?.varint ?? 0n)) };
    case 'resource.Quantity':
      return { value: text(f.get(1)) };
    case 'intstr.IntOrString': {
      const isString = toInt(f.get(1)?.varint ?? 0n) === 1;
      const v = isString ? text(f.get(3)) : toInt(f.get(2)?.varint ?? 0n);
      return { value: v === 0 || v === '' ? undefined : v };
    }
    case 'runtime.RawExtension':
    case 'meta.FieldsV1': {
      const raw = f.get(1)?.bytes;
      if (!raw || raw.length === 0) return { value: undefined };
      try {
        return { value: JSON.parse(Buffer.from(raw).toString('utf8')) };
      } catch {
        throw badRequest(`protobuf: ${type} does not hold JSON`);
      }
    }
    default:
      return undefined;
  }
}

function decodeValue(type: string, f: WireField): unknown {
  switch (type) {
    case 's':
      return text(f);
    case 'b':
      return Buffer.from(f.bytes ?? []).toString('base64');
    case 'i':
      return toInt(f.varint ?? 0n);
    case 'z':
      return (f.varint ?? 0n) !== 0n;
    case 'd':
      return f.fixed ? Buffer.from(f.fixed).readDoubleLE(0) : 0;
  }
  if (type.startsWith('m:')) {
    const name = type.slice(2);
    const sp = special(name, f.bytes ?? new Uint8Array());
    return sp ? sp.value : decodeMessage(name, f.bytes ?? new Uint8Array());
  }
  if (type.startsWith('M:')) {
    const entry = scalarFields(f.bytes ?? new Uint8Array());
    const value = entry.get(2);
    return [text(entry.get(1)), value ? decodeValue(type.slice(2), value) : type === 'M:s' ? '' : undefined];
  }
  throw badRequest(`protobuf: unknown field type ${type}`);
}

function decodeMessage(name: string, buf: Uint8Array): Record<string, unknown> {
  const schema = SCHEMA[name];
  if (!schema) throw badRequest(`protobuf: no schema for ${name}`);
  const out: Record<string, unknown> = {};
  for (const f of readFields(buf)) {
    const spec = schema[f.number];
    if (!spec) continue;
    const [field, type, flags = 0] = spec;
    const repeated = (flags & 1) !== 0;
    if (type.startsWith('M:')) {
      const [k, v] = decodeValue(type, f) as [string, unknown];
      const m = (out[field] ??= {}) as Record<string, unknown>;
      m[k] = v;
      continue;
    }
    if (repeated && type === 'i' && f.wire === 2) {
      // A packed repeated integer field.
      const list = (out[field] ??= []) as unknown[];
      for (const n of readPackedVarints(f.bytes ?? new Uint8Array())) list.push(toInt(n));
      continue;
    }
    const v = decodeValue(type, f);
    if ((flags & 2) !== 0) Object.assign(out, v);
    else if (repeated) ((out[field] ??= []) as unknown[]).push(v);
    else if (v !== undefined) out[field] = v;
  }
  for (const [k, v] of Object.entries(out)) {
    if ((v === '' || v === 0 || v === false) && !KEEP_ZERO.has(k)) delete out[k];
  }
  return out;
}

/** The proto package of an apiVersion, as SCHEMA names messages. */
export function messageName(apiVersion: string, kind: string): string {
  if (kind === 'DeleteOptions') return 'meta.DeleteOptions';
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  const pkg = group.replace(/\.k8s\.io$/, '');
  return `${pkg}.${version}.${kind}`;
}

/** Decodes a protobuf-encoded object body into its JSON form. */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  try {
    const unknown = scalarFields(body.subarray(4));
    const tm = scalarFields(unknown.get(1)?.bytes ?? new Uint8Array());
    const apiVersion = text(tm.get(1));
    const kind = text(tm.get(2));
    const encoding = text(unknown.get(3));
    if (encoding !== '') throw badRequest(`protobuf: content encoding ${encoding} is not supported`);
    const obj = decodeMessage(messageName(apiVersion, kind), unknown.get(2)?.bytes ?? new Uint8Array());
    return { apiVersion, kind, ...obj };
  } catch (err) {
    if (err instanceof Error && !('code' in err)) throw badRequest(`protobuf: ${err.message}`);
    throw err;
  }
}
