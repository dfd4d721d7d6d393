// Bundles the plugin and the proxy with esbuild. Everything goes to dist/;
// nothing is written outside the repository.
import * as esbuild from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkCodeCache, KUBE_CHUNK, KUBE_CHUNK_CACHE, KUBE_CHUNK_EXPORTS } from '../plugin/src/kube/chunk.ts';
import { PLUGIN_NODE_FLAGS } from './plugin-flags.ts';
import { pluginSsh2, proxySsh2 } from './ssh2-constants.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
mkdirSync(join(root, 'dist'), { recursive: true });

// ssh2 tries to load an optional native crypto add-on (and cpu-features);
// a bundle cannot carry .node files, and ssh2 falls back to pure JS when
// the require fails, so both resolve to a module that throws.
const stubNative: esbuild.Plugin = {
  name: 'stub-native',
  setup(build) {
    build.onResolve({ filter: /(^cpu-features$|\.node$|crypto\/build\/Release\/sshcrypto)/ }, (args) => ({
      path: args.path,
      namespace: 'stub-native',
    }));
    build.onLoad({ filter: /.*/, namespace: 'stub-native' }, () => ({
      contents: 'throw new Error("native add-on not bundled");',
      loader: 'js',
    }));
  },
};

// Parts of ssh2 the proxy never runs but would load at start, measured in
// its idle resident memory (a bare node process: 41 MiB): ssh2's
// HTTP(S)-over-SSH agents pull in `https` and with it `tls` (about 9 MiB);
// its poly1305 WebAssembly module, instantiated when ssh2 loads, is used
// only by chacha20-poly1305, which the proxy does not offer
// (contract/ssh/algorithms.ts); its packet module makes a zlib stream when
// it loads, for compression the proxy does not offer either, and `zlib` now
// brings Node's zip modules along (2.4 MiB); its SSH agent client loads
// `child_process` (2.6 MiB) for agents only an SSH client talks to. In the
// proxy's bundle each is a module whose parts throw if ever used.
const SSH2_LIB = join('node_modules', 'ssh2', 'lib');
const UNUSED_IN_PROXY: Record<string, { importer: string; contents: string }> = {
  './http-agents.js': { importer: SSH2_LIB, contents: 'class Off { constructor() { throw new Error("ssh2 HTTP agents are not in the kt proxy"); } }\nmodule.exports = { SSHTTPAgent: Off, SSHTTPSAgent: Off };' },
  './crypto/poly1305.js': { importer: SSH2_LIB, contents: 'const off = () => { throw new Error("chacha20-poly1305 is not in the kt proxy (AES-GCM only)"); };\nmodule.exports = () => Promise.resolve({ _malloc: () => 0, cwrap: () => off });' },
  zlib: { importer: join(SSH2_LIB, 'protocol', 'zlib.js'), contents: 'function Off() { throw new Error("SSH compression is not in the kt proxy (it offers none)"); }\nmodule.exports = { createInflate: () => ({ _handle: { constructor: Off } }), constants: {} };' },
  child_process: { importer: join(SSH2_LIB, 'agent.js'), contents: 'const off = () => { throw new Error("SSH agents are not in the kt proxy"); };\nmodule.exports = { execFile: off, spawn: off };' },
};
const proxySsh2Unused: esbuild.Plugin = {
  name: 'proxy-ssh2-unused',
  setup(build) {
    build.onResolve({ filter: /^(\.\/http-agents\.js|\.\/crypto\/poly1305\.js|zlib|child_process)$/ }, (args) => {
      const stub = UNUSED_IN_PROXY[args.path];
      return stub && args.importer.includes(stub.importer) ? { path: args.path, namespace: 'proxy-ssh2-unused' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'proxy-ssh2-unused' }, (args) => ({ contents: UNUSED_IN_PROXY[args.path].contents, loader: 'js' }));
  },
};

// The Kubernetes client goes to a chunk of its own (see plugin/src/kube/chunk.ts):
// in the plugin's bundle, the package resolves to a module that loads it.
const chunkLoader = join(root, 'plugin/src/kube/chunk.ts');
const kubeChunk: esbuild.Plugin = {
  name: 'kube-chunk',
  setup(build) {
    build.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) => ({ path: args.path, namespace: 'kube-chunk' }));
    build.onLoad({ filter: /.*/, namespace: 'kube-chunk' }, () => ({
      contents: `module.exports = require(${JSON.stringify(chunkLoader)}).loadKubeChunk();`,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

const common: esbuild.BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node26',
  format: 'cjs',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [stubNative],
  define: {
    KT_VERSION: JSON.stringify(pkg.version),
  },
};

await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: [join(root, 'plugin/src/main.ts')],
    outfile: join(root, 'dist/kubectl-kt'),
    // `node --`: Node reads `--env-file` anywhere on its command line, even after the script
    // (nodejs/node#54232), and would take `exchange --env-file F` as its own.
    // Before it, the plugin's own Node options (scripts/plugin-flags.ts).
    banner: { js: `#!/usr/bin/env -S node ${PLUGIN_NODE_FLAGS.join(' ')} --` },
    plugins: [stubNative, kubeChunk, pluginSsh2],
  }),
  esbuild.build({
    ...common,
    // Named ESM exports, not require(): esbuild then keeps only what these reach.
    stdin: { contents: `export { ${KUBE_CHUNK_EXPORTS.join(', ')} } from '@kubernetes/client-node';`, resolveDir: root, loader: 'js', sourcefile: 'kt-kube.js' },
    outfile: join(root, 'dist', KUBE_CHUNK),
    // 18 MB → 6.6 MB without comments and blanks (names kept, so stacks still read), 3.1 MB
    // with only what KUBE_CHUNK_EXPORTS reaches; and pure
    // ASCII, which the loader reads as latin1: a one-byte string, not an 18 MB UTF-8 decode.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
  }),
  esbuild.build({
    ...common,
    entryPoints: [join(root, 'proxy-image/src/main.ts')],
    outfile: join(root, 'dist/kt-proxy.cjs'),
    plugins: [stubNative, proxySsh2Unused, proxySsh2],
    // V8 keeps a script's source for as long as the process runs: without
    // comments and blanks (names kept, so stacks still read), and pure ASCII,
    // so a one-byte string (one non-ASCII character in a comment made all of
    // it two-byte: 2.4 MB of the proxy's idle heap).
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
  }),
]);
chmodSync(join(root, 'dist/kubectl-kt'), 0o755);
const chunk = readFileSync(join(root, 'dist', KUBE_CHUNK));
const high = chunk.findIndex((b) => b > 0x7f);
if (high >= 0) throw new Error(`dist/${KUBE_CHUNK} has a non-ASCII byte at ${high}; the loader reads it as latin1`);
// The chunk's code cache for this Node, so the first command after a build starts warm (plugin/src/kube/chunk.ts).
writeFileSync(join(root, 'dist', KUBE_CHUNK_CACHE), chunkCodeCache(join(root, 'dist', KUBE_CHUNK)));
// dist/kubectl-kt has no extension and the repository's package.json says
// "type": "module", so Node would load the CommonJS bundle as ESM here.
writeFileSync(join(root, 'dist/package.json'), '{ "type": "commonjs" }\n');
