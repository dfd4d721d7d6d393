import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateIp, allocateNodePort, checkRequestedIp, parseCidr } from './ipalloc.ts';

test('ClusterIPs come from above the reserved low band, skipping taken ones', () => {
  assert.deepEqual(parseCidr('10.96.3.7/16'), { base: (10 << 24 | 96 << 16) >>> 0, bits: 16, size: 65536 });
  // A /16 reserves min(max(16, 65536/16), 256) = 256 low addresses for requested IPs.
  assert.equal(allocateIp('10.96.0.0/16', new Set()), '10.96.1.1');
  assert.equal(allocateIp('10.96.0.0/16', new Set(['10.96.1.1', '10.96.1.2'])), '10.96.1.3');
  // A /24 reserves 16: dynamic addresses start at .17.
  assert.equal(allocateIp('10.0.0.0/24', new Set()), '10.0.0.17');
  // Full upper band: wrap into the reserved band rather than fail.
  const upper = new Set(Array.from({ length: 238 }, (_, i) => `10.0.0.${i + 17}`));
  assert.equal(allocateIp('10.0.0.0/24', upper), '10.0.0.1');
  // A range too small for a band: from the first address.
  assert.equal(allocateIp('10.0.0.0/27', new Set()), '10.0.0.1');
  const full = new Set(Array.from({ length: 30 }, (_, i) => `10.0.0.${i + 1}`));
  assert.equal(allocateIp('10.0.0.0/27', full), undefined);
});

test('a requested ClusterIP must be in range, not the network or broadcast address, and free', () => {
  assert.deepEqual(checkRequestedIp('10.96.0.0/16', '10.96.0.10', new Set()), { ok: true });
  assert.equal(checkRequestedIp('10.96.0.0/16', '10.96.0.10', new Set(['10.96.0.10'])).ok, false);
  const out = checkRequestedIp('10.96.0.0/16', '10.97.0.1', new Set());
  assert.equal(out.ok, false);
  assert.match(out.ok ? '' : out.message, /not in the valid range. The range of valid IPs is 10\.96\.0\.0\/16/);
  assert.equal(checkRequestedIp('10.96.0.0/16', '10.96.0.0', new Set()).ok, false);
  assert.equal(checkRequestedIp('10.96.0.0/16', '10.96.255.255', new Set()).ok, false);
  assert.equal(checkRequestedIp('10.96.0.0/16', 'nonsense', new Set()).ok, false);
});

test('node ports: the lowest free one in 30000-32767', () => {
  assert.equal(allocateNodePort(new Set()), 30000);
  assert.equal(allocateNodePort(new Set([30000, 30001])), 30002);
});
