// `make dist`: the plugin as one executable per platform, each in a release
// archive with LICENSE, plus <archive>.sha256 files and SHA256SUMS.
//
//   node scripts/dist.ts [--targets linux-x64,win-x64,...] [--out dist/release]
//
// Needs dist/kubectl-kt (make build). Binaries stay in build/sea/<target>/.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { baseBinary } from './dist-base.ts';
import { identify } from './dist-format.ts';
import { fixChecksum } from './dist-pe.ts';
import { TARGETS, archiveName, findTarget, hostTargetId, type Target } from './dist-targets.ts';
import { gzip, tar } from './dist-tar.ts';
import { zip } from './dist-zip.ts';
import { KUBE_CHUNK, KUBE_CHUNK_CACHE } from '../plugin/src/kube/chunk.ts';
import { PLUGIN_NODE_FLAGS } from './plugin-flags.ts';
import { buildSea } from './sea.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ReleaseOptions {
  root?: string;
  targets?: readonly Target[];
  /** Where archives and checksums go; default <root>/dist/release. */
  outDir?: string;
  /** Where the executables go; default <root>/build/sea (one directory per target). */
  seaDir?: string;
  /** The bundle to embed; default <root>/dist/kubectl-kt. */
  main?: string;
  /** Archive entry time; default sourceDateEpoch(). */
  mtime?: number;
  log?: (line: string) => void;
}

export interface ReleaseArtifact {
  target: Target;
  /** The executable, under <seaDir>/<target>/. */
  binary: string;
  archive: string;
  sha256: string;
}

export function packageVersion(root: string = ROOT): string {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Timestamp for every archive entry: SOURCE_DATE_EPOCH when set
 * (reproducible-builds.org convention), else the last commit's time, so two
 * builds of one commit give byte-identical archives.
 */
export function sourceDateEpoch(root: string = ROOT): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw new Error(`SOURCE_DATE_EPOCH must be a non-negative integer, got ${JSON.stringify(env)}`);
    return n;
  }
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) || 0;
  } catch {
    return 0;
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface BinaryOptions {
  root?: string;
  /** The CommonJS bundle to embed, with the Kubernetes client chunk beside it; default <root>/dist/kubectl-kt (make build). */
  main?: string;
  /** The executable goes to <seaDir>/<target>/; default <root>/build/sea. */
  seaDir?: string;
  log?: (line: string) => void;
}

/** Builds the single executable for one target (no archive). */
export function buildBinary(t: Target, opts: BinaryOptions = {}): string {
  const root = opts.root ?? ROOT;
  const log = opts.log;
  const main = opts.main ?? join(root, 'dist/kubectl-kt');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`make build\` first`);
  const base = baseBinary(t, { root, log });
  const dir = join(opts.seaDir ?? join(root, 'build/sea'), t.id);
  log?.(`sea ${t.id}`);
  // The Kubernetes client rides along as an asset, read on first use (plugin/src/kube/chunk.ts).
  const chunk = join(dirname(main), KUBE_CHUNK);
  if (!existsSync(chunk)) throw new Error(`${chunk} is missing: run \`make build\` first (it writes the chunk beside the bundle)`);
  // The chunk's code cache (made by `make build` for this machine's Node) is of use to this machine's target only.
  const host = t.id === hostTargetId();
  const codeCache = join(dirname(main), KUBE_CHUNK_CACHE);
  const assets = { [KUBE_CHUNK]: chunk, ...(host && existsSync(codeCache) ? { [KUBE_CHUNK_CACHE]: codeCache } : {}) };
  const out = buildSea({ main, executable: base, output: join(dir, t.binName), useCodeCache: host, execArgv: PLUGIN_NODE_FLAGS, workDir: dir, assets });
  let bytes: Buffer = readFileSync(out);
  if (t.format === 'pe') {
    // Injection leaves the base binary's CheckSum; signtool would fix it when signing, we do it either way.
    bytes = fixChecksum(bytes);
    writeFileSync(out, bytes);
  }
  const info = identify(bytes);
  if (info.format !== t.format || info.arch !== t.arch || !info.seaInjected) {
    throw new Error(`${out}: expected an injected ${t.format}/${t.arch} executable, got ${JSON.stringify(info)}`);
  }
  return out;
}

/** The release archive of one binary: the executable and LICENSE, every entry dated `mtime`. */
export function archive(t: Target, binary: string, opts: { mtime: number; root?: string }): Buffer {
  const bin = readFileSync(binary);
  const license = readFileSync(join(opts.root ?? ROOT, 'LICENSE'));
  const mtime = opts.mtime;
  if (t.archive === 'zip') {
    return zip([
      { path: t.binName, data: bin, mode: 0o755 },
      { path: 'LICENSE', data: license, mode: 0o644 },
    ]);
  }
  return gzip(tar([
    { path: t.binName, type: 'file', mode: 0o755, data: bin },
    { path: 'LICENSE', type: 'file', mode: 0o644, data: license },
  ], { mtime }));
}

export function buildRelease(opts: ReleaseOptions = {}): ReleaseArtifact[] {
  const root = opts.root ?? ROOT;
  const targets = opts.targets ?? TARGETS;
  const outDir = opts.outDir ?? join(root, 'dist/release');
  const version = packageVersion(root);
  const mtime = opts.mtime ?? sourceDateEpoch(root);

  // Old archives of another version would end up in SHA256SUMS and the krew manifest.
  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outDir)) {
    if (/^kubectl-kt_.*\.(tar\.gz|zip)(\.sha256)?$/.test(f) || f === 'SHA256SUMS') rmSync(join(outDir, f));
  }

  const artifacts: ReleaseArtifact[] = [];
  for (const t of targets) {
    const binary = buildBinary(t, { root, main: opts.main, seaDir: opts.seaDir, log: opts.log });
    const name = archiveName(version, t);
    opts.log?.(`archive ${name}`);
    const data = archive(t, binary, { root, mtime });
    const file = join(outDir, name);
    writeFileSync(file, data);
    const sum = sha256(data);
    writeFileSync(`${file}.sha256`, `${sum}  ${name}\n`);
    artifacts.push({ target: t, binary, archive: file, sha256: sum });
  }
  const sums = artifacts
    .map((a) => `${a.sha256}  ${a.archive.slice(outDir.length + 1)}\n`)
    .sort((a, b) => a.slice(66).localeCompare(b.slice(66)))
    .join('');
  writeFileSync(join(outDir, 'SHA256SUMS'), sums);
  return artifacts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { targets: { type: 'string' }, out: { type: 'string' } },
  });
  const targets = values.targets ? values.targets.split(',').map((s) => findTarget(s.trim())) : TARGETS;
  const started = Date.now();
  const artifacts = buildRelease({ targets, outDir: values.out, log: (l) => process.stderr.write(`dist: ${l}\n`) });
  for (const a of artifacts) {
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    process.stdout.write(`${a.archive}  ${mb(statSync(a.archive).size)} MB (binary ${mb(statSync(a.binary).size)} MB)\n`);
  }
  process.stdout.write(`dist: ${artifacts.length} archives in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
