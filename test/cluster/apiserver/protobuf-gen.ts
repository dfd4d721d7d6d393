// Generates protobuf-schema.ts: the protobuf field numbers of the kinds this
// API server serves, read from the compiled-in (gzipped FileDescriptorProto)
// descriptors of the kubectl binary, which are the k8s.io/api generated.proto
// files. Run by hand when a kind is added:
//   node test/cluster/apiserver/protobuf-gen.ts /usr/lib/google-cloud-sdk/bin/kubectl.1.32
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { readFields, type WireField } from './protobuf-wire.ts';

interface FieldDesc {
  name: string;
  number: number;
  repeated: boolean;
  type: number;
  typeName: string;
}

interface MessageDesc {
  name: string;
  fields: FieldDesc[];
  mapEntry: boolean;
}

const str = (f: WireField): string => Buffer.from(f.bytes ?? []).toString('utf8');

function parseMessage(buf: Uint8Array, prefix: string, out: Map<string, MessageDesc>): void {
  let name = '';
  const fields: FieldDesc[] = [];
  const nested: Uint8Array[] = [];
  let mapEntry = false;
  for (const f of readFields(buf)) {
    if (f.number === 1) name = str(f);
    else if (f.number === 2 && f.bytes) {
      const fd: FieldDesc = { name: '', number: 0, repeated: false, type: 0, typeName: '' };
      for (const g of readFields(f.bytes)) {
        if (g.number === 1) fd.name = str(g);
        if (g.number === 3) fd.number = Number(g.varint);
        if (g.number === 4) fd.repeated = g.varint === 3n;
        if (g.number === 5) fd.type = Number(g.varint);
        if (g.number === 6) fd.typeName = str(g).replace(/^\./, '');
      }
      fields.push(fd);
    } else if (f.number === 3 && f.bytes) nested.push(f.bytes);
    else if (f.number === 7 && f.bytes) mapEntry = readFields(f.bytes).some((g) => g.number === 7 && g.varint === 1n);
  }
  const full = `${prefix}.${name}`;
  out.set(full, { name: full, fields, mapEntry });
  for (const n of nested) parseMessage(n, full, out);
}

function findDescriptors(binary: Buffer): Map<string, MessageDesc> {
  const messages = new Map<string, MessageDesc>();
  const magic = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0]);
  for (let i = binary.indexOf(magic); i >= 0; i = binary.indexOf(magic, i + 1)) {
    let file: Buffer;
    try {
      file = gunzipSync(binary.subarray(i, i + 1_000_000), { finishFlush: 2 });
    } catch {
      continue;
    }
    const top = (() => {
      try {
        return readFields(file);
      } catch {
        return [];
      }
    })();
    const fname = top.find((f) => f.number === 1);
    if (!fname || !str(fname).endsWith('generated.proto') || !str(fname).startsWith('k8s.io/')) continue;
    const pkg = str(top.find((f) => f.number === 2) ?? { number: 2, wire: 2, bytes: new Uint8Array() });
    for (const f of top) if (f.number === 4 && f.bytes) parseMessage(f.bytes, pkg, messages);
  }
  return messages;
}

const ROOTS = [
  'k8s.io.api.core.v1.Namespace', 'k8s.io.api.core.v1.Pod', 'k8s.io.api.core.v1.Service', 'k8s.io.api.core.v1.Endpoints',
  'k8s.io.api.core.v1.ConfigMap', 'k8s.io.api.core.v1.Secret', 'k8s.io.api.core.v1.ServiceAccount', 'k8s.io.api.core.v1.Event',
  'k8s.io.api.apps.v1.Deployment', 'k8s.io.api.apps.v1.ReplicaSet', 'k8s.io.api.discovery.v1.EndpointSlice',
  'k8s.io.api.autoscaling.v1.Scale', 'k8s.io.api.authorization.v1.SelfSubjectAccessReview', 'k8s.io.api.authorization.v1.SelfSubjectRulesReview', 'k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions', 'k8s.io.apimachinery.pkg.runtime.Unknown',
];

/** Types encoded specially in JSON (protobuf.ts handles them by name). */
const OPAQUE = new Set([
  'k8s.io.apimachinery.pkg.apis.meta.v1.Time', 'k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime', 'k8s.io.apimachinery.pkg.apis.meta.v1.Duration',
  'k8s.io.apimachinery.pkg.api.resource.Quantity', 'k8s.io.apimachinery.pkg.util.intstr.IntOrString', 'k8s.io.apimachinery.pkg.runtime.RawExtension',
  'k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1',
]);

/**
 * Go structs embedded with `json:",inline"`: a field in protobuf, their
 * fields flattened into the parent in JSON.
 */
const INLINE = new Set([
  'core.v1.Probe.handler', 'core.v1.Volume.volumeSource', 'core.v1.EphemeralContainer.ephemeralContainerCommon',
  'core.v1.ConfigMapEnvSource.localObjectReference', 'core.v1.ConfigMapKeySelector.localObjectReference',
  'core.v1.ConfigMapProjection.localObjectReference', 'core.v1.ConfigMapVolumeSource.localObjectReference',
  'core.v1.SecretEnvSource.localObjectReference', 'core.v1.SecretKeySelector.localObjectReference',
  'core.v1.SecretProjection.localObjectReference',
]);

const SHORT: [string, string][] = [
  ['k8s.io.apimachinery.pkg.apis.meta.v1.', 'meta.'], ['k8s.io.apimachinery.pkg.api.resource.', 'resource.'],
  ['k8s.io.apimachinery.pkg.util.intstr.', 'intstr.'], ['k8s.io.apimachinery.pkg.runtime.', 'runtime.'], ['k8s.io.api.', ''],
];
const short = (n: string): string => {
  for (const [p, r] of SHORT) if (n.startsWith(p)) return r + n.slice(p.length);
  return n;
};

/** Field types: s string, b bytes, i integer, z bool, d double, m:<msg> message, M:<type> map<string, type>. */
function fieldType(fd: FieldDesc, messages: Map<string, MessageDesc>, queue: string[]): string {
  switch (fd.type) {
    case 9:
      return 's';
    case 12:
      return 'b';
    case 8:
      return 'z';
    case 1:
      return 'd';
    case 11: {
      const m = messages.get(fd.typeName);
      if (m?.mapEntry) {
        const value = m.fields.find((f) => f.number === 2);
        if (!value) throw new Error(`map entry without value: ${fd.typeName}`);
        return `M:${fieldType(value, messages, queue)}`;
      }
      if (!OPAQUE.has(fd.typeName)) queue.push(fd.typeName);
      return `m:${short(fd.typeName)}`;
    }
    default:
      return 'i';
  }
}

const REPEATED = 1;
const INLINED = 2;

function main(): void {
  const binary = readFileSync(process.argv[2] ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32');
  const messages = findDescriptors(binary);
  const schema: Record<string, Record<number, [string, string, number?]>> = {};
  const queue = [...ROOTS];
  while (queue.length > 0) {
    const name = queue.shift() ?? '';
    if (schema[short(name)]) continue;
    const m = messages.get(name);
    if (!m) throw new Error(`no descriptor for ${name}`);
    const fields: Record<number, [string, string, number?]> = {};
    for (const fd of m.fields) {
      const type = fieldType(fd, messages, queue);
      const flags = (fd.repeated && !type.startsWith('M:') ? REPEATED : 0) | (INLINE.has(`${short(name)}.${fd.name}`) ? INLINED : 0);
      fields[fd.number] = flags ? [fd.name, type, flags] : [fd.name, type];
    }
    schema[short(name)] = fields;
  }
  const names = Object.keys(schema).sort();
  const lines = names.map((n) => `  ${JSON.stringify(n)}: ${JSON.stringify(schema[n])},`);
  const out = `// Generated by protobuf-gen.ts from the k8s.io/api protobuf descriptors; do not edit.
// message → field number → [json name, type, flags?]; types: s string, b bytes,
// i integer, z bool, d double, m:<message>, M:<type> map<string, type>;
// flags: 1 repeated, 2 inline (an embedded struct whose fields JSON flattens).
export const SCHEMA: Record<string, Record<number, [string, string, number?]>> = {
${lines.join('\n')}
};
`;
  writeFileSync(fileURLToPath(new URL('./protobuf-schema.ts', import.meta.url)), out);
  process.stdout.write(`${names.length} messages\n`);
}

main();
