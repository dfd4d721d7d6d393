// Node's own single-executable applications (SEA): `node --build-sea`
// injects a CommonJS bundle into a copy of a node binary of the same
// version. Since Node 25 the config's `executable` may name another
// platform's binary, which is how every target is built on this Linux host.
// https://nodejs.org/api/single-executable-applications.html
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface SeaOptions {
  /** The CommonJS bundle to run; SEA's require() sees only builtins, so it must be self-contained. */
  main: string;
  /** The node binary to inject into (any platform, same Node version as the running one). */
  executable: string;
  output: string;
  /**
   * Embed V8's code cache for main. The cache is made by the running node,
   * so only use it when `executable` is the host's own platform; it also
   * rules out a real import() in main (esbuild turns the bundle's dynamic
   * imports of its own modules into require calls, so none is left).
   */
  useCodeCache: boolean;
  /** Node options the executable always runs with (before any from NODE_OPTIONS). */
  execArgv?: readonly string[];
  /** Files the program reads with `sea.getAsset(key)`: key → path. */
  assets?: Record<string, string>;
  /** Where the config file is written; defaults to beside the output. */
  workDir?: string;
}

/** The --build-sea config, as the Node 26 docs list its fields. */
export function seaConfig(o: SeaOptions): Record<string, unknown> {
  return {
    main: o.main,
    mainFormat: 'commonjs',
    executable: o.executable,
    output: o.output,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: o.useCodeCache,
    // Node options from NODE_OPTIONS are honoured as in plain node, after
    // the binary's own (execArgv).
    ...(o.execArgv?.length ? { execArgv: [...o.execArgv] } : {}),
    execArgvExtension: 'env',
    ...(o.assets ? { assets: o.assets } : {}),
  };
}

export function buildSea(o: SeaOptions): string {
  const workDir = o.workDir ?? dirname(o.output);
  mkdirSync(workDir, { recursive: true });
  mkdirSync(dirname(o.output), { recursive: true });
  const configPath = join(workDir, 'sea-config.json');
  writeFileSync(configPath, JSON.stringify(seaConfig(o), null, 2) + '\n');
  rmSync(o.output, { force: true });
  execFileSync(process.execPath, ['--build-sea', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(o.output, 0o755);
  return o.output;
}
