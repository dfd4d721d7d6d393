// Bundles the plugin and the proxy with esbuild. Everything goes to dist/;
// nothing is written outside the repository.
import * as esbuild from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkCodeCache, KUBE_CHUNK, KUBE_CHUNK_CACHE } from '../plugin/src/kube/chunk.ts';
import { pluginSshWindow } from './ssh-window.ts';

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

// Two parts of ssh2 the proxy never runs but would load at start, measured
// in its idle resident memory (a bare node process: 41 MiB): ssh2's
// HTTP(S)-over-SSH agents pull in `https` and with it `tls` (about 9 MiB),
// and its poly1305 WebAssembly module, instantiated when ssh2 loads, is
// used only by chacha20-poly1305, which the proxy does not offer
// (contract/ssh/algorithms.ts). In the proxy's bundle both are
// modules whose parts throw if ever used.
const proxySsh2Unused: esbuild.Plugin = {
  name: 'proxy-ssh2-unused',
  setup(build) {
    build.onResolve({ filter: /^\.\/(http-agents|crypto\/poly1305)\.js$/ }, (args) =>
      args.importer.includes(`${join('node_modules', 'ssh2', 'lib')}`) ? { path: args.path, namespace: 'proxy-ssh2-unused' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'proxy-ssh2-unused' }, (args) => ({
      contents: args.path.includes('poly1305')
        ? 'const off = () => { throw new Error("chacha20-poly1305 is not in the kt proxy (AES-GCM only)"); };\nmodule.exports = () => Promise.resolve({ _malloc: () => 0, cwrap: () => off });'
        : 'class Off { constructor() { throw new Error("ssh2 HTTP agents are not in the kt proxy"); } }\nmodule.exports = { SSHTTPAgent: Off, SSHTTPSAgent: Off };',
      loader: 'js',
    }));
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
    banner: { js: '#!/usr/bin/env -S node --' },
    plugins: [stubNative, kubeChunk, pluginSshWindow],
  }),
  esbuild.build({
    ...common,
    stdin: { contents: "module.exports = require('@kubernetes/client-node');", resolveDir: root, loader: 'js', sourcefile: 'kt-kube.js' },
    outfile: join(root, 'dist', KUBE_CHUNK),
    // 18 MB → 6.6 MB without comments and blanks (names kept, so stacks still read); and pure
    // ASCII, which the loader reads as latin1: a one-byte string, not an 18 MB UTF-8 decode.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
  }),
  esbuild.build({
    ...common,
    entryPoints: [join(root, 'proxy-image/src/main.ts')],
    outfile: join(root, 'dist/kt-proxy.cjs'),
    plugins: [stubNative, proxySsh2Unused],
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
