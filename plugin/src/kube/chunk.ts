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
// version or flags). That cache holds what loading the client compiles, not
// what a request, a watch or a port-forward compiles later (V8 compiles a
// function on its first call): a mesh join compiled those on its critical
// path (from the warmer cache a join's p50 is about 50 ms less of 0.28 s:
// test/e2e/mesh-twenty.test.ts). So the process that got further writes a
// warmer cache when its work is done (keepChunkCache): a command that talked to the
// cluster, and better, a session whose tunnel came up; every later start
// reads it. It lives in the user's cache directory, keyed by the file the
// chunk came from (size and mtime) and the Node version (V8 itself only
// checks the source's length, so the key must tell two chunks apart), its
// first byte saying how far the process that made it got (CacheWarmth).
import { mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { debuglog } from 'node:util';
import { Script } from 'node:vm';

/** What the loader did with the code cache, under NODE_DEBUG=kt-cache (its own section: NODE_DEBUG=kt turns on SSH's packet log too). */
const debug = debuglog('kt-cache');

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

/** How far the process that made a code cache got: the further, the more of the client's functions it holds. */
export const CacheWarmth = {
  /** The build's, or one made right after loading. */
  loaded: 0,
  /** After a command that talked to the API server. */
  command: 1,
  /** After a session's tunnel came up (port-forward, watches, patches). */
  session: 2,
} as const;
export type CacheWarmth = (typeof CacheWarmth)[keyof typeof CacheWarmth];

/** A code cache file in the user's cache directory: one byte of warmth, then V8's data. */
function readUserCache(path: string | undefined): { warmth: number; data: Buffer } | undefined {
  const file = readCache(path);
  if (file === undefined || file.length < 2) return undefined;
  return { warmth: file[0], data: file.subarray(1) };
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
function writeCache(path: string, warmth: number, data: Buffer): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat([Buffer.from([warmth]), data]), { mode: 0o600 });
    renameSync(tmp, path);
    // Caches of other builds are dead weight now.
    for (const f of readdirSync(dirname(path))) {
      if (/^kube-.*\.v8cache$/.test(f) && f !== basename(path)) rmSync(join(dirname(path), f), { force: true });
    }
  } catch {
    // read-only home, full disk: run without a cache
  }
}

/** The loaded chunk: its exports, its script, where its cache goes, and how warm the cache it started from was (-1: none taken). */
let kept: { exports: unknown; script: Script; path: string | undefined; warmth: number } | undefined;

/** The client's module.exports: evaluated once, like require() would. */
export function loadKubeChunk(): unknown {
  if (kept !== undefined) return kept.exports;
  const { source, filename, origin, shipped } = chunkSource();
  let path: string | undefined;
  try {
    path = cachePath(origin);
  } catch {
    path = undefined;
  }
  const user = readUserCache(path);
  const cachedData = user?.data ?? shipped();
  const { script, run } = compileChunk(source, filename, cachedData);
  const exports = run();
  const taken = cachedData !== undefined && script.cachedDataRejected !== true;
  kept = { exports, script, path, warmth: taken ? (user?.warmth ?? CacheWarmth.loaded) : -1 };
  const from = user ? `the user's (warmth ${user.warmth})` : "the build's";
  debug(`kube client: ${cachedData === undefined ? 'no code cache' : `code cache ${from} ${taken ? 'taken' : 'refused by V8'}`}`);
  // None taken: one now, so the next start is warm even if this process never gets further.
  if (!taken) keepChunkCache(CacheWarmth.loaded);
  return exports;
}

/**
 * Writes the loaded chunk's code cache, holding every client function this
 * process has run so far, when it is warmer than the one this process
 * started from. Nothing when the client was never loaded. About 20 ms of
 * CPU, once per install and Node.
 */
export function keepChunkCache(warmth: CacheWarmth): void {
  if (kept === undefined || kept.path === undefined || warmth <= kept.warmth) return;
  const data = kept.script.createCachedData();
  writeCache(kept.path, warmth, data);
  kept.warmth = warmth;
  debug(`kube client: code cache of warmth ${warmth} written (${data.length} bytes)`);
}
