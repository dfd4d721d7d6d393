// The release end to end: single executables for one target of each binary
// format (linux-x64 run for real, darwin-arm64 and win-x64 checked by
// header), their archives and checksums, the krew manifest made from them,
// and the real kubectl finding `kubectl kt` where krew installs it.
// Builds into a temporary directory from dist/kubectl-kt (make build);
// about 40 s, most of it compression.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { load } from 'js-yaml';
import { generate } from '../../krew/generate.ts';
import { PLUGIN_NAME, toYaml, validateManifest, type KrewPlugin } from '../../krew/manifest.ts';
import { KUBE_CHUNK } from '../../plugin/src/kube/chunk.ts';
import { ROOT, archive, buildBinary, buildRelease, packageVersion, sha256, type ReleaseArtifact } from '../../scripts/dist.ts';
import { identify } from '../../scripts/dist-format.ts';
import { certificateTable, peChecksum, storedChecksum } from '../../scripts/dist-pe.ts';
import { findTarget } from '../../scripts/dist-targets.ts';

const version = packageVersion();
/** Fixed, so a commit landing mid-test cannot change the default (the last commit's time). */
const MTIME = 1_700_000_000;
const targets = ['linux-x64', 'darwin-arm64', 'win-x64'].map(findTarget);
let dir: string;
let releaseDir: string;
let main: string;
let artifacts: ReleaseArtifact[];
const byId = (id: string): ReleaseArtifact => artifacts.find((a) => a.target.id === id)!;

/** A clean environment: no node, no NODE_OPTIONS, nothing from this shell. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: '/nonexistent', HOME: dir, LANG: 'C', ...extra };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kt-dist-e2e-'));
  releaseDir = join(dir, 'release');
  // A copy of the bundle: a `make build` running meanwhile must not change what the two Windows builds embed.
  main = join(dir, 'kubectl-kt.cjs');
  copyFileSync(join(ROOT, 'dist/kubectl-kt'), main);
  copyFileSync(join(ROOT, 'dist', KUBE_CHUNK), join(dir, KUBE_CHUNK));
  artifacts = buildRelease({ targets, outDir: releaseDir, seaDir: join(dir, 'sea'), main, mtime: MTIME });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('linux-x64 single executable', () => {
  test('`version` runs without node on PATH, prints plugin and proxy versions, and nothing on stderr', () => {
    const bin = byId('linux-x64').binary;
    const r = spawnSync(bin, ['version'], { cwd: dir, env: bareEnv(), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^kubectl-kt ${version.replaceAll('.', '\\.')}\\n`));
    assert.ok(r.stdout.includes(`ghcr.io/kubectl-kt/kt-proxy:${version}`), r.stdout);
    // No "Code cache data rejected" and no SEA experimental warning.
    assert.equal(r.stderr, '');
  });

  test('`--help` exits 0 with the usage, an unknown command exits non-zero with an error code', () => {
    const bin = byId('linux-x64').binary;
    const help = spawnSync(bin, ['--help'], { cwd: dir, env: bareEnv(), encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage:/);
    assert.match(help.stdout, /connect/);
    const bad = spawnSync(bin, ['no-such-command'], { cwd: dir, env: bareEnv(), encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /KT_ERR_[A-Z_]+/);
  });

  test('it is a stripped x86-64 ELF with the SEA blob, smaller than the shipped node', () => {
    const file = byId('linux-x64').binary;
    const info = identify(readFileSync(file));
    assert.deepEqual([info.format, info.arch, info.seaInjected], ['elf', 'amd64', true]);
    const kind = execFileSync('file', ['-b', file], { encoding: 'utf8' });
    assert.match(kind, /, stripped$/m);
    assert.doesNotMatch(kind, /debug_info/);
    // The shipped node carries ~34 MB of symbols and debug info; the bundle and its code cache add less.
    assert.ok(statSync(file).size < statSync(process.execPath).size, `${statSync(file).size} bytes`);
  });
});

describe('the other formats', () => {
  test('darwin-arm64 is an arm64 Mach-O with a NODE_SEA segment and no signature (users sign it ad hoc)', () => {
    const info = identify(readFileSync(byId('darwin-arm64').binary));
    assert.equal(info.format, 'macho');
    assert.equal(info.arch, 'arm64');
    assert.equal(info.machine, 0x0100000c);
    assert.ok(info.seaInjected);
    assert.ok(info.segments?.includes('NODE_SEA'), String(info.segments));
    assert.equal(info.segments?.at(-1), '__LINKEDIT');
    // --build-sea drops the now-invalid signature; macOS on arm64 runs only
    // signed code, hence the README's and the krew caveat's codesign step.
    assert.equal(info.codeSignature, false);
  });

  test('win-x64 is an x86-64 PE with the SEA blob, no stale signature and a valid checksum', () => {
    const exe = readFileSync(byId('win-x64').binary);
    const info = identify(exe);
    assert.deepEqual([info.format, info.arch, info.machine, info.seaInjected], ['pe', 'amd64', 0x8664, true]);
    // node.exe is signed by the OpenJS Foundation; injection would leave that signature broken.
    assert.deepEqual(certificateTable(exe), [0, 0]);
    assert.equal(storedChecksum(exe), peChecksum(exe));
    assert.match(execFileSync('file', ['-b', byId('win-x64').binary], { encoding: 'utf8' }), /PE32\+ executable \(console\) x86-64/);
  });
});

describe('archives', () => {
  test('each holds exactly the binary and LICENSE, and the files list their sha256', () => {
    const linux = byId('linux-x64').archive;
    assert.deepEqual(execFileSync('tar', ['-tzf', linux], { encoding: 'utf8' }).trim().split('\n'), ['kubectl-kt', 'LICENSE']);
    assert.match(execFileSync('tar', ['-tvzf', linux], { encoding: 'utf8' }), /^-rwxr-xr-x 0\/0 /);
    const win = byId('win-x64').archive;
    assert.match(execFileSync('unzip', ['-t', win], { encoding: 'utf8' }), /No errors detected/);
    assert.deepEqual(execFileSync('unzip', ['-Z1', win], { encoding: 'utf8' }).trim().split('\n'), ['kubectl-kt.exe', 'LICENSE']);
    assert.deepEqual(execFileSync('unzip', ['-p', win, 'LICENSE']), readFileSync(join(ROOT, 'LICENSE')));

    const files = readdirSync(releaseDir).sort();
    assert.deepEqual(files, ['SHA256SUMS', ...artifacts.flatMap((a) => [basename(a.archive), `${basename(a.archive)}.sha256`])].sort());
    for (const a of artifacts) {
      assert.equal(a.sha256, sha256(readFileSync(a.archive)));
      assert.equal(readFileSync(`${a.archive}.sha256`, 'utf8'), `${a.sha256}  ${basename(a.archive)}\n`);
    }
    // The way users check a download.
    const check = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: releaseDir, encoding: 'utf8' });
    assert.equal(check.match(/: OK$/gm)?.length, artifacts.length);
  });

  test('rebuilding the Windows binary and archive gives the same bytes', () => {
    const t = findTarget('win-x64');
    const again = buildBinary(t, { main, seaDir: join(dir, 'sea-again') });
    // Hashes, not the buffers: a failing deepEqual would render 100 MB of diff.
    assert.equal(sha256(readFileSync(again)), sha256(readFileSync(byId('win-x64').binary)));
    const bytes = archive(t, again, { mtime: MTIME });
    assert.equal(sha256(bytes), byId('win-x64').sha256);
  });
});

describe('krew', () => {
  let manifest: KrewPlugin;
  before(() => {
    manifest = generate({ releaseDir, version, targets });
  });

  test('the manifest passes krew\'s rules and names the archives by their sha256', () => {
    const parsed = load(toYaml(manifest)) as KrewPlugin;
    assert.deepEqual(validateManifest(parsed, PLUGIN_NAME), []);
    assert.equal(parsed.spec.version, `v${version}`);
    assert.equal(parsed.spec.platforms.length, targets.length);
    for (const a of artifacts) {
      const pl = parsed.spec.platforms.find((p) => p.selector.matchLabels.os === a.target.os && p.selector.matchLabels.arch === a.target.arch);
      assert.ok(pl, a.target.id);
      assert.equal(pl.sha256, sha256(readFileSync(a.archive)));
      assert.ok(pl.uri.endsWith(`/v${version}/${basename(a.archive)}`), pl.uri);
      assert.equal(pl.bin, a.target.binName);
    }
  });

  test('a tampered archive stops generation', () => {
    const tampered = join(dir, 'tampered');
    mkdirSync(tampered);
    for (const f of readdirSync(releaseDir)) writeFileSync(join(tampered, f), readFileSync(join(releaseDir, f)));
    const zip = join(tampered, basename(byId('win-x64').archive));
    writeFileSync(zip, Buffer.concat([readFileSync(zip), Buffer.from('x')]));
    assert.throws(() => generate({ releaseDir: tampered, version, targets }), /\.sha256 says/);
  });

  test('installed the way krew does it, the real kubectl finds and runs `kubectl kt`', () => {
    const krewRoot = join(dir, 'krew');
    const env = { PATH: `${join(krewRoot, 'bin')}:/usr/local/bin:/usr/bin:/bin`, HOME: dir, KUBECONFIG: join(dir, 'no-kubeconfig') };

    // Without it, kubectl has no such command.
    const missing = spawnSync('kubectl', ['kt', 'version'], { env, encoding: 'utf8' });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /unknown command "kt"/);

    // krew: unpack the platform's archive, apply `files`, put it in
    // store/<name>/<version>/, link bin/kubectl-<name> to `bin`.
    const pl = manifest.spec.platforms.find((p) => p.selector.matchLabels.os === 'linux' && p.selector.matchLabels.arch === 'amd64')!;
    const unpack = join(dir, 'krew-download');
    mkdirSync(unpack);
    execFileSync('tar', ['-xzf', join(releaseDir, basename(pl.uri)), '-C', unpack]);
    const store = join(krewRoot, 'store', PLUGIN_NAME, manifest.spec.version);
    mkdirSync(store, { recursive: true });
    for (const op of pl.files) renameSync(join(unpack, op.from), join(store, op.to === '.' ? op.from : op.to));
    mkdirSync(join(krewRoot, 'bin'));
    symlinkSync(join(store, pl.bin), join(krewRoot, 'bin', `kubectl-${PLUGIN_NAME}`));

    const list = spawnSync('kubectl', ['plugin', 'list', '--name-only'], { env, encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^kubectl-kt$/m);
    const r = spawnSync('kubectl', ['kt', 'version'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^kubectl-kt ${version.replaceAll('.', '\\.')}$`, 'm'));
    const help = spawnSync('kubectl', ['kt', '--help'], { env, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /kubectl kt/);
  });
});
