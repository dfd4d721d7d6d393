// The cluster's life: `ctl.ts demo` (what `make demo` runs) next to a second
// cluster started in-process, each with its own names and ranges;
// `ctl.ts down` (what `make cluster-down` runs) and stop() leave nothing,
// also when the cluster process was killed with SIGKILL.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { NODE26, startCluster } from './cluster.ts';
import { leftovers, netnsInodes } from './net/leftovers.ts';
import { runResult } from './net/run.ts';
import { killAndWait, readState } from './net/state.ts';

const CTL = join(import.meta.dirname, 'ctl.ts');
const LAPTOP = join(import.meta.dirname, 'laptop');

function ctl(...args: string[]): ReturnType<typeof runResult> {
  return runResult(NODE26, [CTL, ...args], { timeoutMs: 180_000 });
}

function laptop(dir: string, ...args: string[]): ReturnType<typeof runResult> {
  return runResult(LAPTOP, args, { env: { ...process.env, KT_CLUSTER_DIR: dir }, timeoutMs: 60_000 });
}

describe('cluster lifecycle', { timeout: 600_000 }, () => {
  test('demo and a second cluster run side by side; down and stop leave nothing', async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'kt-demo-'));
    const demo = await ctl('demo', '--dir', dirA);
    assert.equal(demo.code, 0, demo.stderr);
    assert.match(demo.stdout, /deployment "web" successfully rolled out/);
    assert.match(demo.stdout, /test\/cluster\/laptop kubectl get pods -n shop/);
    const a = readState(dirA);
    assert.ok(a, 'the demo cluster keeps running after ctl returns');
    const inodesA = netnsInodes(a.prefix);
    let b;
    try {
      b = await startCluster();
      const inodesB = netnsInodes(b.name);
      assert.notEqual(b.name, a.name);
      assert.notEqual(b.podCidr, `10.${64 + a.index}.0.0/16`);
      assert.notEqual(b.apiPort, a.apiPort);

      const shop = await laptop(dirA, 'kubectl', 'get', 'pods', '-n', 'shop', '--no-headers');
      assert.equal(shop.code, 0, shop.stderr);
      assert.equal(shop.stdout.trim().split('\n').filter((l) => /1\/1\s+Running/.test(l)).length, 2, shop.stdout);
      const bDns = await b.kubectl(['get', 'pods', '-n', 'kube-system', '--no-headers']);
      assert.match(bDns.stdout, /coredns-\S+\s+1\/1\s+Running/);
      // Each laptop sees its own API only.
      const cross = await b.inLaptop('curl', ['-sS', '--max-time', '5', `https://127.0.0.1:${a.apiPort}/version`, '-k']);
      assert.equal(cross.code, 7, cross.stderr);

      const down = await ctl('down', '--dir', dirA);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(await leftovers(a.prefix, dirA, inodesA), []);
      const still = await b.kubectl(['get', 'namespaces']);
      assert.equal(still.code, 0, still.stderr);

      const dirB = b.dir;
      await b.stop();
      assert.deepEqual(await leftovers(b.name, dirB, inodesB), []);
    } finally {
      await b?.stop();
      await ctl('down', '--dir', dirA);
    }
  });

  test('down after kill -9 of the cluster process leaves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kt-killed-'));
    try {
      const up = await ctl('up', '--dir', dir);
      assert.equal(up.code, 0, up.stderr);
      const s = readState(dir);
      assert.ok(s);
      const run = await laptop(dir, 'kubectl', 'run', 'sleeper', '--image=shell', '--restart=Never', '--command', '--', 'sleep', 'infinity');
      assert.equal(run.code, 0, run.stderr);
      const wait = await laptop(dir, 'kubectl', 'wait', '--for=condition=Ready', 'pod/sleeper', '--timeout=60s');
      assert.equal(wait.code, 0, wait.stderr);
      const inodes = netnsInodes(s.prefix);
      await killAndWait([s.clusterPid]);
      // Without down, the namespaces and the pods' processes outlive the cluster process.
      const orphans = await leftovers(s.prefix, dir, inodes);
      assert.ok(orphans.some((l) => l.startsWith('netns ')), orphans.join('\n'));
      assert.ok(orphans.some((l) => l.startsWith('process ') && l.includes('sleep infinity')), orphans.join('\n'));
      const down = await ctl('down', '--dir', dir);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(await leftovers(s.prefix, dir, inodes), []);
    } finally {
      await ctl('down', '--dir', dir);
    }
  });
});
