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
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { compileFunction } from 'node:vm';

/** The chunk's file name in dist/ and its asset key in the single executable. */
export const KUBE_CHUNK = 'kt-kube.cjs';

/** The chunk has every package bundled in, so it only ever asks for Node's builtins. */
function builtinRequire(id: string): unknown {
  const m = process.getBuiltinModule(id);
  if (m === undefined) throw new Error(`${KUBE_CHUNK}: require(${JSON.stringify(id)}) is not a Node builtin; the chunk must bundle it`);
  return m;
}

export function chunkSource(): { source: string; filename: string } {
  const sea = process.getBuiltinModule('node:sea');
  if (sea.isSea()) return { source: sea.getAsset(KUBE_CHUNK, 'utf8'), filename: join(dirname(process.execPath), KUBE_CHUNK) };
  // The bundle runs as `node dist/kubectl-kt` (or through a symlink on PATH): the chunk is its neighbour.
  const filename = join(dirname(realpathSync(process.argv[1])), KUBE_CHUNK);
  return { source: readFileSync(filename, 'utf8'), filename };
}

let loaded: unknown;

/** The client's module.exports: evaluated once, like require() would. */
export function loadKubeChunk(): unknown {
  if (loaded !== undefined) return loaded;
  const { source, filename } = chunkSource();
  const fn = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename });
  const mod = { exports: {} as unknown };
  fn.call(mod.exports, mod.exports, builtinRequire, mod, filename, dirname(filename));
  loaded = mod.exports;
  return loaded;
}
