// Base node binaries for the single executables, from the npm registry.
// The platform packages declare os/cpu, so npm refuses to install the
// foreign ones; `npm pack` downloads the tarball without installing it.
// Everything is cached under build/ (git-ignored), so a second run is offline.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeAuthenticode } from './dist-pe.ts';
import { NODE_VERSION, hostTargetId, type Target } from './dist-targets.ts';

export interface BaseOptions {
  /** Repository root; caches go to <root>/build. */
  root: string;
  /** Progress lines; silent when absent. */
  log?: (line: string) => void;
}

function run(cmd: string, args: string[], cwd?: string): void {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The npm tarball of the target's node package, downloading it once. */
export function packageTarball(t: Target, opts: BaseOptions): string {
  const dir = join(opts.root, 'build/node-dist');
  const file = join(dir, `${t.npmPackage}-${NODE_VERSION}.tgz`);
  if (existsSync(file)) return file;
  const tmp = join(dir, `pack.${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  opts.log?.(`npm pack ${t.npmPackage}@${NODE_VERSION}`);
  try {
    run('npm', ['pack', `${t.npmPackage}@${NODE_VERSION}`, '--pack-destination', tmp, '--silent']);
    renameSync(join(tmp, `${t.npmPackage}-${NODE_VERSION}.tgz`), file);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return file;
}

/**
 * The node binary a target's executable is built from: the shipped one, a
 * stripped copy where the target has a strip tool, or for Windows a copy
 * without its (soon invalid) Authenticode signature. The host's own binary
 * comes from node_modules (installed by npm ci) rather than a download.
 */
export function baseBinary(t: Target, opts: BaseOptions): string {
  const dir = join(opts.root, 'build/node-base', t.id);
  const name = t.os === 'windows' ? 'node.exe' : 'node';
  const out = join(dir, t.strip ? `${name}.stripped` : t.format === 'pe' ? 'node.unsigned.exe' : name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });

  let shipped: string;
  const installed = join(opts.root, 'node_modules', t.npmPackage, 'bin', name);
  if (t.id === hostTargetId() && existsSync(installed)) {
    shipped = installed;
  } else {
    const tgz = packageTarball(t, opts);
    const unpack = join(dir, `unpack.${process.pid}`);
    rmSync(unpack, { recursive: true, force: true });
    mkdirSync(unpack);
    run('tar', ['-xzf', tgz, '-C', unpack, t.nodeInPackage]);
    shipped = join(unpack, t.nodeInPackage);
  }

  // Write under a temporary name and rename, so an interrupted run (or two
  // builds at once) never leaves a half-written file that existsSync() trusts.
  const tmp = `${out}.${process.pid}.tmp`;
  if (t.strip) {
    opts.log?.(`${t.strip} ${t.id} node`);
    try {
      run(t.strip, ['--strip-all', '-o', tmp, shipped]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new Error(`${t.strip} not found: install the Debian package ${t.strip === 'strip' ? 'binutils' : 'binutils-aarch64-linux-gnu'}`);
      }
      throw err;
    }
  } else if (t.format === 'pe') {
    // Node's SEA docs: remove the signature before injecting (signtool remove /s).
    writeFileSync(tmp, removeAuthenticode(readFileSync(shipped)));
  } else {
    // Mach-O: --build-sea drops LC_CODE_SIGNATURE itself.
    copyFileSync(shipped, tmp);
  }
  renameSync(tmp, out);
  rmSync(join(dir, `unpack.${process.pid}`), { recursive: true, force: true });
  return out;
}
