// The Kubernetes client as a chunk of its own, loaded on first use.
//
// @kubernetes/client-node is 16 MB of the plugin's 19 MB bundle (a class and
// a serializer entry for every API type), and V8 reads all of a script
// before running a line of it, so `kubectl kt version` and `--help` paid
// for it on every start. The build (scripts/build.ts) therefore puts the
// client in dist/kt-kube.cjs and makes `import('@kubernetes/client-node')`
// in the plugin's bundle call loadKubeChunk() instead. The single executable
// carries the chunk as a SEA asset; the shebang bundle reads it from beside
// itself. The source tree (tests, `tsc`) imports the package as usual.
//
// Compiling and running the chunk costs about half a second; V8's code
// cache takes a third of that off. The build makes one beside the chunk
// (KUBE_CHUNK_CACHE; an asset of the single executable built for this
// machine), so even the first command after an install starts warm when it
// runs on the Node that built it; V8 refuses it on any other (another
// version or flags), and then the cache is made on the first run and kept in
// the user's cache directory, keyed by the file the chunk came from (size
// and mtime) and the Node version: V8 itself only checks the source's
// length, so the key must tell two chunks apart.
import { mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';

/** The chunk's file name in dist/ and its asset key in the single executable. */
export const KUBE_CHUNK = 'kt-kube.cjs';
/** The code cache the build makes, beside the chunk and as an asset. */
export const KUBE_CHUNK_CACHE = 'kt-kube.v8cache';

/**
 * What the plugin takes from the client (kube/api.ts), and all the chunk
 * exports: the build makes the chunk from these names alone, so esbuild
 * leaves out the API groups, models and helpers nothing reaches from them
 * (6.6 MB → 3.1 MB: half the bytes to read and compile on a cold start).
 * kube/api.ts's ClientModule is typed from this list, so using another name
 * fails to compile instead of being undefined in the bundle.
 */
export const KUBE_CHUNK_EXPORTS = ['KubeConfig', 'CoreV1Api', 'AppsV1Api', 'Watch', 'setHeaderOptions', 'PatchStrategy', 'makeInformer', 'PortForward'] as const;

/** The chunk has every package bundled in, so it only ever asks for Node's builtins. */
function builtinRequire(id: string): unknown {
  const m = process.getBuiltinModule(id);
  if (m === undefined) throw new Error(`${KUBE_CHUNK}: require(${JSON.stringify(id)}) is not a Node builtin; the chunk must bundle it`);
  return m;
}

interface ChunkSource {
  source: string;
  filename: string;
  /** The file the source comes from (the executable, or the chunk file): its size and mtime key the cache. */
  origin: string;
  /** The build's code cache of it, when there is one. */
  shipped: () => Buffer | undefined;
}

export function chunkSource(): ChunkSource {
  const sea = process.getBuiltinModule('node:sea');
  // The build makes the chunk pure ASCII, so latin1 gives the same text as UTF-8, as a one-byte string and much faster.
  if (sea.isSea()) {
    const shipped = (): Buffer | undefined => {
      try {
        return Buffer.from(sea.getAsset(KUBE_CHUNK_CACHE));
      } catch {
        return undefined; // an executable built for another machine carries none
      }
    };
    return { source: Buffer.from(sea.getAsset(KUBE_CHUNK)).toString('latin1'), filename: join(dirname(process.execPath), KUBE_CHUNK), origin: process.execPath, shipped };
  }
  // The bundle runs as `node dist/kubectl-kt` (or through a symlink on PATH): the chunk is its neighbour.
  const filename = join(dirname(realpathSync(process.argv[1])), KUBE_CHUNK);
  return { source: readFileSync(filename, 'latin1'), filename, origin: filename, shipped: () => readCache(join(dirname(filename), KUBE_CHUNK_CACHE)) };
}

/** The chunk as a function of CommonJS's five arguments, compiled with a code cache when given. */
function compileChunk(source: string, filename: string, cachedData: Buffer | undefined): { script: Script; run: () => unknown } {
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename, ...(cachedData ? { cachedData } : {}) });
  const run = (): unknown => {
    const fn = script.runInThisContext() as (e: unknown, r: unknown, m: unknown, f: string, d: string) => void;
    const mod = { exports: {} as unknown };
    fn.call(mod.exports, mod.exports, builtinRequire, mod, filename, dirname(filename));
    return mod.exports;
  };
  return { script, run };
}

/**
 * For the build: the code cache of the chunk file, made after running it
 * (as loadKubeChunk does), so what the client runs while loading is in it.
 */
export function chunkCodeCache(chunkFile: string): Buffer {
  const { script, run } = compileChunk(readFileSync(chunkFile, 'latin1'), chunkFile, undefined);
  run();
  return script.createCachedData();
}

/** Where the code cache of this chunk lives, or undefined when there is no cache directory. */
export function cachePath(origin: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  let base: string | undefined;
  if (platform === 'win32') base = env.LOCALAPPDATA;
  else if (platform === 'darwin') base = join(homedir(), 'Library', 'Caches');
  else base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  if (!base) return undefined;
  const st = statSync(origin);
  return join(base, 'kubectl-kt', `kube-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}.v8cache`);
}

function readCache(path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Best effort: a cache that cannot be written costs the next start its speed, nothing else. */
function writeCache(path: string, data: Buffer): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path);
    // Caches of other builds are dead weight now.
    for (const f of readdirSync(dirname(path))) {
      if (/^kube-.*\.v8cache$/.test(f) && f !== basename(path)) rmSync(join(dirname(path), f), { force: true });
    }
  } catch {
    // read-only home, full disk: run without a cache
  }
}

let loaded: unknown;

/** The client's module.exports: evaluated once, like require() would. */
export function loadKubeChunk(): unknown {
  if (loaded !== undefined) return loaded;
  const { source, filename, origin, shipped } = chunkSource();
  let cache: string | undefined;
  try {
    cache = cachePath(origin);
  } catch {
    cache = undefined;
  }
  const cachedData = readCache(cache) ?? shipped();
  const { script, run } = compileChunk(source, filename, cachedData);
  loaded = run();
  // After the run, so the functions the client ran while loading are in the cache too.
  if (cache !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) writeCache(cache, script.createCachedData());
  return loaded;
}
