// The shared libraries a single executable needs in an otherwise empty
// image, and the Debian copyright files that come with them. The host's
// own architecture asks `ldd`; another architecture walks DT_NEEDED with
// that architecture's readelf through Debian's cross libraries (the
// *-arm64-cross packages hold the same files as the arm64 packages, under
// /usr/aarch64-linux-gnu).
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

export interface Library {
  /** The file on this machine. */
  source: string;
  /** Where the loader looks for it inside the image. */
  path: string;
}

/** Paths the dynamic loader opens for a binary, as `ldd` prints them (vdso excluded). */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) paths.push(m[1]);
    else if (/=>\s+not found/.test(line)) throw new Error(`ldd: ${line.trim()}`);
  }
  return paths;
}

export function hostLibraries(binary: string): Library[] {
  return parseLdd(execFileSync('ldd', [binary], { encoding: 'utf8' })).map((p) => ({ source: p, path: p }));
}

export interface CrossOptions {
  /** e.g. aarch64-linux-gnu-readelf (binutils-aarch64-linux-gnu). */
  readelf: string;
  /** e.g. /usr/aarch64-linux-gnu; libraries are in <sysroot>/lib. */
  sysroot: string;
  /** The image's multiarch library directory, e.g. /lib/aarch64-linux-gnu. */
  libDir: string;
}

/** DT_NEEDED entries and the PT_INTERP path, from readelf's text output. */
export function parseReadelf(dynamic: string, headers: string): { needed: string[]; interpreter: string | null } {
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(headers);
  return { needed, interpreter: interp ? interp[1] : null };
}

export function crossLibraries(binary: string, o: CrossOptions): Library[] {
  const read = (file: string): ReturnType<typeof parseReadelf> =>
    parseReadelf(execFileSync(o.readelf, ['-d', file], { encoding: 'utf8' }), execFileSync(o.readelf, ['-l', file], { encoding: 'utf8' }));
  const first = read(binary);
  if (!first.interpreter) throw new Error(`${binary}: no program interpreter`);
  const interpName = first.interpreter.split('/').at(-1)!;
  const libs = new Map<string, Library>();
  libs.set(interpName, { source: join(o.sysroot, 'lib', interpName), path: first.interpreter });
  const queue = [...first.needed];
  while (queue.length) {
    const name = queue.shift()!;
    if (libs.has(name)) continue;
    const source = join(o.sysroot, 'lib', name);
    if (!existsSync(source)) throw new Error(`${name} (needed by ${binary}) is not in ${o.sysroot}/lib: install its *-cross package`);
    libs.set(name, { source, path: `${o.libDir}/${name}` });
    queue.push(...read(source).needed);
  }
  return [...libs.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** The Debian copyright file of the package that owns `path`. */
export function copyrightOf(path: string): string {
  let out: string;
  try {
    out = execFileSync('dpkg-query', ['-S', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    // Merged /usr, or a symlink: dpkg may know the file only under its other name.
    out = execFileSync('dpkg-query', ['-S', realpathSync(path)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
  const pkg = out.split(':')[0].trim();
  return `/usr/share/doc/${pkg}/copyright`;
}
