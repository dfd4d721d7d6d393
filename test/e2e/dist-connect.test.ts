// The linux-x64 single executable doing real work, installed the way users
// install it: the release archive and a krew manifest naming it, given to the
// real krew (built from the Go module proxy) as `kubectl krew install
// --manifest --archive`. Then `kubectl kt connect -- CMD` on the test cluster
// with only krew's installed binary as the plugin and no Node.js 26 on PATH:
// first the laptop cannot reach the Service; then, through the binary's
// tunnel, CMD reaches it by its cluster DNS name.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { ensureKrew } from '../cluster/upstream/build.ts';
import { krewManifest, toYaml } from '../../krew/manifest.ts';
import { archive, buildBinary, packageVersion, sha256 } from '../../scripts/dist.ts';
import { archiveName, findTarget } from '../../scripts/dist-targets.ts';

const NS = 'shop';
const FQDN = `web.${NS}.svc.cluster.local`;

let dir: string;
let binDir: string;
let cluster: Cluster;
/** The laptop's PATH: krew's bin directory, kubectl-krew, and the system's; nothing from this repository. */
let env: Record<string, string>;
let installed: { code: number; stdout: string; stderr: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kt-dist-connect-'));
  const target = findTarget('linux-x64');
  const version = packageVersion();
  const binary = buildBinary(target, { seaDir: join(dir, 'sea') });
  const name = archiveName(version, target);
  const archiveFile = join(dir, name);
  const bytes = archive(target, binary, { mtime: 1_700_000_000 });
  writeFileSync(archiveFile, bytes);
  const manifestFile = join(dir, 'kt.yaml');
  writeFileSync(manifestFile, toYaml(krewManifest(version, [{ os: target.os, arch: target.arch, name, sha256: sha256(bytes), binName: target.binName }])));
  // kubectl runs `kubectl krew` as the plugin kubectl-krew, as krew's own installer leaves it.
  const krewCli = join(dir, 'krew-cli');
  mkdirSync(krewCli);
  symlinkSync(await ensureKrew(), join(krewCli, 'kubectl-krew'));
  const krewRoot = join(dir, 'krew');
  binDir = join(krewRoot, 'bin');
  env = { PATH: `${binDir}:${krewCli}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, KREW_ROOT: krewRoot, HOME: dir };
  cluster = await startCluster();
  installed = await cluster.inLaptop('kubectl', ['krew', 'install', `--manifest=${manifestFile}`, `--archive=${archiveFile}`], { env: { ...env, KUBECONFIG: join(dir, 'none') } });
  // The demo app behind a Service, made the imperative way, in the cluster's
  // namespace that enforces Pod Security "restricted".
  for (const args of [
    ['create', 'deployment', 'web', '-n', NS, '--image=kt-demo/echo', '--port=8080'],
    ['expose', 'deployment', 'web', '-n', NS, '--port=80', '--target-port=8080'],
    // Ready only once the app answers, so the rollout below waits for it; and
    // admitted under "restricted", which `kubectl create deployment`'s pods are not.
    ['patch', 'deployment', 'web', '-n', NS, '--type=json', '-p', JSON.stringify([
      { op: 'add', path: '/spec/template/spec/containers/0/readinessProbe', value: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 } },
      { op: 'add', path: '/spec/template/spec/securityContext', value: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } } },
      { op: 'add', path: '/spec/template/spec/containers/0/securityContext', value: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
    ])],
  ]) {
    const r = await cluster.kubectl(args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  }
  const rollout = await cluster.kubectl(['rollout', 'status', '-n', NS, 'deploy/web', '--timeout=60s']);
  assert.equal(rollout.code, 0, rollout.stderr);
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('krew installs the release archive; kubectl finds the single executable, and it alone connects the laptop to the cluster', async () => {
  assert.equal(installed.code, 0, `kubectl krew install: ${installed.stderr}`);
  assert.match(installed.stderr, /Installed plugin: kt/);
  const version = await cluster.inLaptop('kubectl', ['kt', 'version'], { env });
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, new RegExp(`^kubectl-kt ${packageVersion().replaceAll('.', '\\.')}$`, 'm'));
  const list = await cluster.inLaptop('kubectl', ['plugin', 'list'], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout.match(/kubectl-kt$/gm)?.length, 1, list.stdout);
  assert.ok(list.stdout.includes(join(binDir, 'kubectl-kt')), list.stdout);
  const node = await cluster.inLaptop('sh', ['-c', 'node --version || true'], { env });
  assert.doesNotMatch(node.stdout, /^v26\./, 'Node.js 26 must not be on the laptop PATH');

  const without = await cluster.inLaptop('curl', ['-sS', '--max-time', '5', `http://${FQDN}/`], { env });
  assert.notEqual(without.code, 0, `the laptop reached ${FQDN} without the tool: ${without.stdout}`);

  const r = await cluster.inLaptop('kubectl', ['kt', 'connect', '-n', NS, '--', 'curl', '-sS', '--max-time', '5', `http://${FQDN}/through-sea`], { env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { path: string; namespace: string };
  assert.equal(body.path, '/through-sea');
  assert.equal(body.namespace, NS);
});
