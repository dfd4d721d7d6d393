// `make image`: the proxy image as an OCI layout archive, built without a
// registry or a container engine (no base image can be pulled here).
//
//   node scripts/image.ts [--out dist/kt-proxy-image.tar] [--platforms amd64,arm64]
//
// The same image proxy-image/Dockerfile describes, for linux/amd64 and
// linux/arm64 under one image index: the proxy as one Node SEA binary
// (stripped base), the glibc libraries it links with their Debian copyright
// files, passwd/group entries for uid 65532, and /tmp. Two layers, so a new
// proxy version re-ships only the binary.
// Publish with `skopeo copy --all oci-archive:dist/kt-proxy-image.tar:<version> docker://…`.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_IMAGE } from '../contract/protocol.ts';
import { HOMEPAGE } from '../krew/manifest.ts';
import { baseBinary } from './dist-base.ts';
import { ROOT, packageVersion, sourceDateEpoch } from './dist.ts';
import { findTarget, hostTargetId } from './dist-targets.ts';
import type { TarEntry } from './dist-tar.ts';
import { copyrightOf, crossLibraries, hostLibraries, type Library } from './image-libs.ts';
import { ociImage, splitReference, type OciImage, type PlatformInput } from './image-oci.ts';
import { buildSea } from './sea.ts';

export const PROXY_UID = 65532;
export const PROXY_PATH = '/usr/local/bin/kt-proxy';

/** The published name of this version's image: DEFAULT_IMAGE's repository, the package's version as tag. */
export function imageName(version: string): string {
  return `${splitReference(DEFAULT_IMAGE).repository}:${version}`;
}

function dirsOf(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

/** Layer 1: what the binary needs from an OS. Layer 2: the binary. */
export function rootfsLayers(binary: Buffer, libraries: readonly Library[]): { base: TarEntry[]; app: TarEntry[] } {
  const docs = [...new Set(libraries.map((l) => copyrightOf(l.source)))].sort();
  const files: TarEntry[] = [
    { path: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from(`root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${PROXY_UID}:${PROXY_UID}:nonroot:/home/nonroot:/sbin/nologin\n`) },
    { path: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from(`root:x:0:\nnonroot:x:${PROXY_UID}:\n`) },
    // No nsswitch.conf means glibc's built-in order; say "files, then DNS" as every distro does.
    { path: 'etc/nsswitch.conf', type: 'file', mode: 0o644, data: Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n') },
    ...libraries.map((l): TarEntry => ({ path: l.path.slice(1), type: 'file', mode: 0o755, data: readFileSync(l.source) })),
    ...docs.map((p): TarEntry => ({ path: p.slice(1), type: 'file', mode: 0o644, data: readFileSync(p) })),
  ];
  const dirs: TarEntry[] = [
    ...dirsOf(files.map((f) => `/${f.path}`)).map((d): TarEntry => ({ path: d, type: 'dir', mode: 0o755 })),
    { path: 'home', type: 'dir', mode: 0o755 },
    { path: 'home/nonroot', type: 'dir', mode: 0o700, uid: PROXY_UID, gid: PROXY_UID },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ];
  // Sorted by path, so every directory comes before what it holds.
  const base = [...dirs, ...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const app: TarEntry[] = [
    ...dirsOf([PROXY_PATH]).map((d): TarEntry => ({ path: d, type: 'dir', mode: 0o755 })),
    { path: PROXY_PATH.slice(1), type: 'file', mode: 0o755, data: binary },
  ];
  return { base, app };
}

export type ImageArch = 'amd64' | 'arm64';

/** How each architecture's binary is made and where its libraries come from. */
const PLATFORMS: Record<ImageArch, { target: string; libraries: (binary: string) => Library[] }> = {
  amd64: { target: 'linux-x64', libraries: hostLibraries },
  arm64: {
    target: 'linux-arm64',
    // apt: binutils-aarch64-linux-gnu, libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross, libatomic1-arm64-cross
    libraries: (binary) => crossLibraries(binary, { readelf: 'aarch64-linux-gnu-readelf', sysroot: '/usr/aarch64-linux-gnu', libDir: '/lib/aarch64-linux-gnu' }),
  },
};

export interface ImageBuild {
  file: string;
  name: string;
  /** The proxy executable of each architecture. */
  binaries: Record<string, string>;
  image: OciImage;
}

export interface ImageOptions {
  root?: string;
  /** The OCI layout tar; default <root>/dist/kt-proxy-image.tar. */
  out?: string;
  /** The proxy bundle; default <root>/dist/kt-proxy.cjs (make build). */
  main?: string;
  /** Where the proxy executables are built (<workDir>/<arch>/kt-proxy); default <root>/build/image. */
  workDir?: string;
  /** Default both: amd64 and arm64 (kind and minikube on Apple silicon, Graviton nodes). */
  platforms?: readonly ImageArch[];
  /** Seconds since the epoch for `created` and layer mtimes; default sourceDateEpoch(). */
  created?: number;
  log?: (l: string) => void;
}

export function buildImage(opts: ImageOptions = {}): ImageBuild {
  const root = opts.root ?? ROOT;
  if (hostTargetId() !== 'linux-x64') throw new Error(`the amd64 image takes this host's libraries, so the host must be linux-x64 (this is ${hostTargetId()})`);
  const main = opts.main ?? join(root, 'dist/kt-proxy.cjs');
  statSync(main); // ENOENT names the file: run `make build` first
  const version = packageVersion(root);
  const name = imageName(version);
  const created = opts.created ?? sourceDateEpoch(root);

  const binaries: Record<string, string> = {};
  const platforms = (opts.platforms ?? ['amd64', 'arm64']).map((arch): PlatformInput => {
    const p = PLATFORMS[arch];
    opts.log?.(`sea kt-proxy ${arch}`);
    const binary = buildSea({
      main,
      executable: baseBinary(findTarget(p.target), { root, log: opts.log }),
      output: join(opts.workDir ?? join(root, 'build/image'), arch, 'kt-proxy'),
      // V8's code cache differs from build to build (and a cache made with a
      // fixed --hash-seed/--random-seed is rejected at run time), so it would
      // make the image irreproducible; a long-running server gains little
      // from it, and it cannot be made for another architecture anyway.
      useCodeCache: false,
    });
    binaries[arch] = binary;
    const libraries = p.libraries(binary);
    const { base, app } = rootfsLayers(readFileSync(binary), libraries);
    return {
      architecture: arch,
      layers: [
        { entries: base, createdBy: `scripts/image.ts: ${libraries.length} glibc libraries, passwd and group for ${PROXY_UID}, /tmp` },
        { entries: app, createdBy: `scripts/image.ts: ${PROXY_PATH}, Node ${process.version} single executable of dist/kt-proxy.cjs` },
      ],
    };
  });

  const labels: Record<string, string> = {
    'org.opencontainers.image.title': 'kt-proxy',
    'org.opencontainers.image.description': 'In-cluster proxy of kubectl-kt: SSH tunnel end, DNS forwarder and header-aware router',
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.source': HOMEPAGE,
    'org.opencontainers.image.url': HOMEPAGE,
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.ref.name': name,
  };
  opts.log?.(`oci ${name}`);
  const image = ociImage({
    name,
    created,
    user: `${PROXY_UID}:${PROXY_UID}`,
    entrypoint: [PROXY_PATH],
    env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/home/nonroot'],
    workingDir: '/home/nonroot',
    labels,
    platforms,
  });
  const file = opts.out ?? join(root, 'dist/kt-proxy-image.tar');
  writeFileSync(file, image.archive);
  return { file, name, binaries, image };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, platforms: { type: 'string' } } });
  const started = Date.now();
  const b = buildImage({
    out: values.out,
    platforms: values.platforms?.split(',').map((s) => {
      if (s !== 'amd64' && s !== 'arm64') throw new Error(`--platforms: ${JSON.stringify(s)} is not amd64 or arm64`);
      return s;
    }),
    log: (l) => process.stderr.write(`image: ${l}\n`),
  });
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  process.stdout.write(`${b.file}: ${b.name} ${b.image.digest} (archive ${mb(b.image.archive.length)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  for (const p of b.image.platforms) {
    const packed = p.layers.reduce((s, l) => s + l.size, 0);
    const unpacked = p.layers.reduce((s, l) => s + l.diffSize, 0);
    process.stdout.write(`  linux/${p.architecture}: ${mb(packed)} MB compressed, ${mb(unpacked)} MB uncompressed\n`);
  }
}
