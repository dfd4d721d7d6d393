// The proxy image (linux/amd64 and linux/arm64 under one index), built
// without a registry: skopeo reads the OCI archive and picks a platform as a
// runtime would, umoci unpacks it, and the proxy starts from the unpacked
// root file system alone, as uid 65532, and serves SSH: amd64 in a chroot,
// arm64 under qemu-aarch64 with the root file system as its library prefix.
// Builds from dist/kt-proxy.cjs (make build); about 60 s.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ssh2 from 'ssh2';
import { DEFAULT_IMAGE } from '../../contract/protocol.ts';
import { ROOT, packageVersion, sha256 } from '../../scripts/dist.ts';
import { PROXY_PATH, PROXY_UID, buildImage, imageName, type ImageBuild } from '../../scripts/image.ts';

const version = packageVersion();
/** Fixed, so a commit landing between the two builds cannot change the default (the last commit's time). */
const CREATED = 1_700_000_000;
let dir: string;
let main: string;
let built: ImageBuild;

function skopeo(...args: string[]): Record<string, unknown> {
  return JSON.parse(execFileSync('skopeo', [...args, `oci-archive:${built.file}:${version}`], { encoding: 'utf8' })) as Record<string, unknown>;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kt-image-e2e-'));
  // A copy of the bundle: a `make build` running meanwhile must not change what the two builds embed.
  main = join(dir, 'kt-proxy.cjs');
  copyFileSync(join(ROOT, 'dist/kt-proxy.cjs'), main);
  built = buildImage({ out: join(dir, 'kt-proxy-image.tar'), workDir: join(dir, 'work'), main, created: CREATED });
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('the image is named like the plugin\'s default --image, with this version as tag', () => {
  assert.equal(built.name, `ghcr.io/kubectl-kt/kt-proxy:${version}`);
  assert.equal(imageName(version).split(':')[0], DEFAULT_IMAGE.split(':')[0]);
  const index = JSON.parse(execFileSync('tar', ['-xOf', built.file, 'index.json'], { encoding: 'utf8' })) as {
    manifests: { digest: string; annotations: Record<string, string> }[];
  };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].digest, built.image.digest);
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], version);
  assert.equal(index.manifests[0].annotations['io.containerd.image.name'], built.name);
});

test('skopeo reads one index with amd64 and arm64, each non-root with the proxy as entrypoint', () => {
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${built.file}:${version}`], { encoding: 'utf8' })) as {
    manifests: { platform: { architecture: string; os: string } }[];
  };
  assert.deepEqual(raw.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ['linux/amd64', 'linux/arm64']);
  for (const arch of ['amd64', 'arm64']) {
    const inspect = skopeo('inspect', '--override-arch', arch) as { Architecture: string; Os: string; Layers: string[]; Labels: Record<string, string> };
    assert.equal(inspect.Architecture, arch);
    assert.equal(inspect.Os, 'linux');
    assert.equal(inspect.Layers.length, 2);
    assert.equal(inspect.Labels['org.opencontainers.image.version'], version);
    assert.equal(inspect.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
    const config = skopeo('inspect', '--config', '--override-arch', arch) as { config: { User: string; Entrypoint: string[] } };
    assert.equal(config.config.User, `${PROXY_UID}:${PROXY_UID}`);
    assert.deepEqual(config.config.Entrypoint, [PROXY_PATH]);
  }
});

test('building it again gives the same bytes', () => {
  const again = buildImage({ out: join(dir, 'again.tar'), workDir: join(dir, 'work-again'), main, created: CREATED });
  assert.equal(again.image.digest, built.image.digest);
  // Hashes, not the buffers: a failing deepEqual would render 90 MB of diff.
  assert.equal(sha256(readFileSync(again.file)), sha256(readFileSync(built.file)));
});

/** The platform's image as a runtime gets it: skopeo picks the manifest, umoci unpacks it. Returns the rootfs. */
function unpack(arch: string): string {
  const layout = join(dir, `layout-${arch}`);
  execFileSync('skopeo', ['copy', '-q', '--override-arch', arch, `oci-archive:${built.file}:${version}`, `oci:${layout}:${version}`]);
  const bundle = join(dir, `bundle-${arch}`);
  execFileSync('umoci', ['unpack', '--image', `${layout}:${version}`, bundle]);
  const runtime = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { user: { uid: number }; args: string[] } };
  assert.equal(runtime.process.user.uid, PROXY_UID);
  assert.deepEqual(runtime.process.args, [PROXY_PATH]);
  const rootfs = join(bundle, 'rootfs');
  assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(statSync(join(rootfs, 'home/nonroot')).uid, PROXY_UID);
  // The kubelet mounts resolv.conf into every container; the DNS forwarder reads it.
  writeFileSync(join(rootfs, 'etc/resolv.conf'), 'nameserver 127.0.0.1\n');
  return rootfs;
}

/** Starts the shadow role, waits for its SSH port, checks the user and the SSH banner, stops it with SIGTERM. */
async function serveSsh(cmd: string, args: string[]): Promise<void> {
  const { public: publicKey } = ssh2.utils.generateKeyPairSync('ed25519');
  const proxy: ChildProcess = spawn(cmd, args, {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', KT_ROLE: 'shadow', KT_SSH_PORT: '0', KT_DNS_PORT: '0', KT_AUTHORIZED_KEYS: publicKey },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    let stderr = '';
    const port = await new Promise<number>((resolve, reject) => {
      proxy.stderr!.setEncoding('utf8');
      proxy.stderr!.on('data', (chunk: string) => {
        stderr += chunk;
        const m = /ssh on 127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      proxy.once('exit', (code) => reject(new Error(`proxy exited ${code}: ${stderr}`)));
    });
    assert.match(stderr, new RegExp(`kt-proxy ${version.replaceAll('.', '\\.')} shadow`));
    const status = readFileSync(`/proc/${proxy.pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${PROXY_UID}\\s`, 'm'));

    const sock = connect(port, '127.0.0.1');
    const [banner] = (await once(sock, 'data')) as [Buffer];
    sock.destroy();
    assert.match(banner.toString('latin1'), /^SSH-2\.0-/);

    proxy.kill('SIGTERM');
    const [code] = (await once(proxy, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
  } finally {
    if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
  }
}

test('amd64: unpacked by umoci, the proxy runs from the image alone as uid 65532 and serves SSH', async () => {
  const rootfs = unpack('amd64');
  // chroot: the loader, libc and libstdc++ all come from rootfs, none from the host.
  await serveSsh('chroot', [`--userspec=${PROXY_UID}:${PROXY_UID}`, rootfs, PROXY_PATH]);
});

test('arm64: unpacked by umoci, the proxy runs under qemu-aarch64 with only the image\'s libraries and serves SSH', async () => {
  const rootfs = unpack('arm64');
  // mkdtemp and umoci make their directories 0700; the unprivileged qemu process must reach rootfs.
  chmodSync(dir, 0o755);
  chmodSync(join(rootfs, '..'), 0o755);
  // -L: the interpreter and every library path resolve inside rootfs (the host has no arm64 libraries there).
  await serveSsh('setpriv', [`--reuid=${PROXY_UID}`, `--regid=${PROXY_UID}`, '--clear-groups', '/usr/bin/qemu-aarch64', '-L', rootfs, join(rootfs, PROXY_PATH)]);
});
