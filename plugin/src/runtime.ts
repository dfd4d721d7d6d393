// The Node that runs the bundle must be new enough for what the bundle
// carries. The single executable brings its own Node 26; `node
// dist/kubectl-kt` (or the shebang on PATH) runs on whatever `node` the
// machine has. An old one starts (the bundle's own syntax is plain), prints
// `version`, and then fails deep inside the Kubernetes client on the first
// cluster command (undici 8 binds zlib's zstd decompressor, which Node 20
// lacks: "Cannot read properties of undefined (reading 'bind')"). So the
// version is checked first, in main.ts, before any command runs.

/**
 * The oldest Node the bundle runs on: the highest `engines.node` lower bound
 * among the packages it bundles (undici 8, the Kubernetes client's HTTP
 * stack: >=22.19.0). test/unit/runtime.test.ts checks it against
 * package-lock.json, so a dependency that raises the bar fails the tests.
 */
export const MIN_NODE = '22.19.0';

function parts(v: string): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  if (!m) return [0, 0, 0];
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** a < b, comparing major.minor.patch (a leading "v" and any suffix are ignored). */
export function olderThan(a: string, b: string): boolean {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

export interface RuntimeFacts {
  /** process.versions.node */
  version: string;
  /** process.execPath: which node this is, for the message. */
  execPath: string;
}

/** Undefined when the runtime will do, else what is wrong, for KT_ERR_NODE_TOO_OLD. Pure. */
export function runtimeProblem(facts: RuntimeFacts, min: string = MIN_NODE): { version: string; execPath: string; min: string } | undefined {
  if (!olderThan(facts.version, min)) return undefined;
  return { version: facts.version.replace(/^v?/, 'v'), execPath: facts.execPath, min };
}
