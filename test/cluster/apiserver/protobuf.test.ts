import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeProtobuf, PROTOBUF_MAGIC } from './protobuf.ts';

// A minimal protobuf writer, for building request bodies as Go's generated marshaller does.
function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const num = (field: number, n: number): Buffer => Buffer.concat([varint(field << 3), varint(n)]);
const bytes = (field: number, b: Buffer | string): Buffer => {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
  return Buffer.concat([varint((field << 3) | 2), varint(buf.length), buf]);
};
const msg = (field: number, ...parts: Buffer[]): Buffer => bytes(field, Buffer.concat(parts));
const entry = (field: number, k: string, v: Buffer | string): Buffer => msg(field, bytes(1, k), bytes(2, v));

function unknown(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([PROTOBUF_MAGIC, msg(1, bytes(1, apiVersion), bytes(2, kind)), bytes(2, raw), bytes(3, ''), bytes(4, '')]);
}

test('protobuf: a Secret, with bytes data, labels, a zero time and empty strings omitted', () => {
  const meta = Buffer.concat([bytes(1, 's1'), bytes(2, ''), bytes(3, 'default'), msg(8), entry(11, 'app', 'x')]);
  const raw = Buffer.concat([msg(1, meta), entry(2, 'key', Buffer.from([0, 1, 2])), bytes(3, 'Opaque')]);
  assert.deepEqual(decodeProtobuf(unknown('v1', 'Secret', raw)), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's1', namespace: 'default', labels: { app: 'x' } },
    data: { key: 'AAEC' },
    type: 'Opaque',
  });
});

test('protobuf: a Deployment keeps replicas 0 and decodes IntOrString and repeated messages', () => {
  const container = Buffer.concat([bytes(1, 'web'), bytes(2, 'img:1'), msg(6, bytes(1, 'http'), num(3, 8080), bytes(4, 'TCP'))]);
  const template = Buffer.concat([msg(1, entry(11, 'app', 'web')), msg(2, msg(2, container))]);
  const strategy = Buffer.concat([bytes(1, 'RollingUpdate'), msg(2, msg(1, num(1, 1), bytes(3, '50%')), msg(2, num(1, 0), num(2, 2)))]);
  const spec = Buffer.concat([num(1, 0), msg(2, entry(1, 'app', 'web')), msg(3, template), msg(4, strategy), num(7, 0)]);
  const obj = decodeProtobuf(unknown('apps/v1', 'Deployment', Buffer.concat([msg(1, bytes(1, 'web')), msg(2, spec), msg(3)])));
  assert.deepEqual(obj.spec, {
    replicas: 0,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'img:1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '50%', maxSurge: 2 } },
  });
  assert.deepEqual(obj.status, {});
});

test('protobuf: a body that does not parse is a 400', () => {
  assert.throws(
    () => decodeProtobuf(Buffer.concat([PROTOBUF_MAGIC, Buffer.from([0x0a, 0x50, 0x01])])),
    (e: unknown) => (e as { code?: number }).code === 400,
  );
});
