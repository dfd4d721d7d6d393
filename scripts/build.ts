// Bundles the plugin and the proxy with esbuild. Everything goes to dist/;
// nothing is written outside the repository.
import * as esbuild from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KUBE_CHUNK } from '../plugin/src/kube/chunk.ts';

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
    plugins: [stubNative, kubeChunk],
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
  }),
]);
chmodSync(join(root, 'dist/kubectl-kt'), 0o755);
const chunk = readFileSync(join(root, 'dist', KUBE_CHUNK));
const high = chunk.findIndex((b) => b > 0x7f);
if (high >= 0) throw new Error(`dist/${KUBE_CHUNK} has a non-ASCII byte at ${high}; the loader reads it as latin1`);
// dist/kubectl-kt has no extension and the repository's package.json says
// "type": "module", so Node would load the CommonJS bundle as ESM here.
writeFileSync(join(root, 'dist/package.json'), '{ "type": "commonjs" }\n');
