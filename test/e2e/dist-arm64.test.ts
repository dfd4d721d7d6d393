// The linux-arm64 single executable run for real, under qemu-user with
// Debian's arm64 cross libraries as its root (apt: qemu-user,
// libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross,
// libatomic1-arm64-cross). Slow (V8 under emulation): version and --help only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KUBE_CHUNK } from '../../plugin/src/kube/chunk.ts';
import { ROOT, buildBinary, packageVersion } from '../../scripts/dist.ts';
import { identify } from '../../scripts/dist-format.ts';
import { findTarget } from '../../scripts/dist-targets.ts';

const SYSROOT = '/usr/aarch64-linux-gnu';
let dir: string;
let bin: string;

function qemu(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // Absolute: the child's PATH is empty on purpose, and spawn looks commands up in it.
  return spawnSync('/usr/bin/qemu-aarch64', ['-L', SYSROOT, bin, ...args], { env: { PATH: '/nonexistent', HOME: dir, LANG: 'C' }, encoding: 'utf8', timeout: 120_000 });
}

before(() => {
  assert.ok(existsSync('/usr/bin/qemu-aarch64'), 'no qemu-aarch64: apt-get install qemu-user');
  assert.ok(existsSync(join(SYSROOT, 'lib/ld-linux-aarch64.so.1')), `no arm64 sysroot at ${SYSROOT}: apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross libatomic1-arm64-cross`);
  dir = mkdtempSync(join(tmpdir(), 'kt-dist-arm64-'));
  const main = join(dir, 'kubectl-kt.cjs');
  copyFileSync(join(ROOT, 'dist/kubectl-kt'), main);
  copyFileSync(join(ROOT, 'dist', KUBE_CHUNK), join(dir, KUBE_CHUNK));
  bin = buildBinary(findTarget('linux-arm64'), { main, seaDir: join(dir, 'sea') });
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('it is an aarch64 ELF that this host cannot run directly', () => {
  const info = identify(readFileSync(bin));
  assert.deepEqual([info.format, info.arch, info.machine, info.seaInjected], ['elf', 'arm64', 0xb7, true]);
  const direct = spawnSync(bin, ['version']);
  assert.ok(direct.error || direct.status !== 0, 'an arm64 binary ran natively on this host');
});

test('under qemu-aarch64 `version` and `--help` run and exit 0', () => {
  const v = qemu(['version']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^kubectl-kt ${packageVersion().replaceAll('.', '\\.')}\\n`));
  assert.match(v.stdout, /^node:\s+v26\.10\.0$/m);
  assert.equal(v.stderr, '');
  const h = qemu(['--help']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /Usage:/);
  const bad = qemu(['no-such-command']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /KT_ERR_[A-Z_]+/);
});
