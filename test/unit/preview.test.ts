// Which pod port stands behind each Service port of a preview: the proxy is
// non-root (no ports below 1024) and keeps its own SSH and DNS ports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podPorts } from '../../plugin/src/commands/preview.ts';
import { PORTS } from '../../contract/protocol.ts';

test('preview pod ports: high ports as they are; low ports and the proxy\'s own ports moved, never onto each other', () => {
  assert.deepEqual([...podPorts([8080, 80])], [[8080, 8080], [80, 20080]]);
  const own = podPorts([PORTS.ssh, PORTS.dns, 443]);
  assert.equal(own.get(PORTS.ssh), 20000 + PORTS.ssh);
  assert.equal(own.get(PORTS.dns), 20000 + PORTS.dns);
  assert.equal(own.get(443), 20443);
  // 80 would become 20080, which the Service's own 20080 already is.
  const clash = podPorts([20080, 80]);
  assert.equal(clash.get(20080), 20080);
  assert.equal(clash.get(80), 20081);
  // Every pod port distinct, none of them the proxy's own.
  const many = podPorts([80, 20080, 20081, 2222, 22222, 10053, 30053, 1, 65535]);
  const values = [...many.values()];
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.ok(v !== PORTS.ssh && v !== PORTS.dns && v >= 1024 && v <= 65535, String(v));
});
