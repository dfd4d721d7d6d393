// `kubectl kt version` and `--help` must not load client-node or ssh2: the
// bundle is CommonJS without splitting, and esbuild runs a module that is
// only reached through `import()` when that import runs. So the rule is:
// from the entry, client-node and ssh2 must be reachable through dynamic
// imports only. This test builds the plugin with a metafile and walks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { CacheWarmth, KUBE_CHUNK, KUBE_CHUNK_CACHE } from '../../plugin/src/kube/chunk.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HEAVY = /(^|\/)node_modules\/(@kubernetes\/client-node|ssh2)\//;

async function metafile(entry: string): Promise<esbuild.Metafile> {
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: 'node26',
    format: 'cjs',
    write: false,
    metafile: true,
    logLevel: 'silent',
    // ssh2's optional native add-ons; the walk does not need them.
    external: ['*.node', 'cpu-features'],
  });
  return result.metafile;
}

/** Inputs reachable from the entry without crossing an `import()`. */
function staticallyReachable(meta: esbuild.Metafile, entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length) {
    const input = meta.inputs[queue.pop()!];
    for (const imp of input?.imports ?? []) {
      if (imp.kind === 'dynamic-import' || imp.external || seen.has(imp.path)) continue;
      seen.add(imp.path);
      queue.push(imp.path);
    }
  }
  return seen;
}

function heavyStatic(meta: esbuild.Metafile, entry: string): string[] {
  return [...staticallyReachable(meta, entry)].filter((p) => HEAVY.test(p));
}

test('client-node and ssh2 are reachable from main.ts only through dynamic imports', async () => {
  const entry = 'plugin/src/main.ts';
  const meta = await metafile(entry);
  assert.deepEqual(heavyStatic(meta, entry), []);
  // The walk sees the lazy edge (kube/config.ts imports client-node on
  // demand), so an empty list above is not an empty bundle.
  const all = Object.keys(meta.inputs);
  assert.ok(all.some((p) => /node_modules\/@kubernetes\/client-node\//.test(p)), 'client-node is in the bundle');
  assert.ok(staticallyReachable(meta, entry).has('plugin/src/kube/config.ts'));
});

test('the check catches a top-level import of client-node or ssh2', async () => {
  // A file next to main.ts, so its imports resolve the same way; removed at the end.
  const dir = await mkdtemp(join(root, 'plugin', 'src', '.bundle-probe-'));
  try {
    const probe = join(dir, 'probe.ts');
    await writeFile(probe, "import '../cli.ts';\nimport { KubeConfig } from '@kubernetes/client-node';\nexport const k = KubeConfig;\n");
    const rel = relative(root, probe);
    const bad = heavyStatic(await metafile(rel), rel);
    assert.ok(bad.some((p) => p.includes('@kubernetes/client-node')), 'a static client-node import is reported');
    await writeFile(probe, "import { Client } from 'ssh2';\nexport const c = Client;\n");
    assert.ok(heavyStatic(await metafile(rel), rel).some((p) => p.includes('node_modules/ssh2/')), 'a static ssh2 import is reported');
    await writeFile(probe, "export const load = () => import('@kubernetes/client-node');\n");
    assert.deepEqual(heavyStatic(await metafile(rel), rel), [], 'a dynamic import is fine');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const bundle = join(root, 'dist', 'kubectl-kt');

test('the built bundle runs: version, help, exit codes (make build first)', { skip: !existsSync(bundle) && 'dist/kubectl-kt not built' }, () => {
  const runBundle = (...args: string[]) => spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const v = runBundle('version', '-o', 'json');
  assert.equal(v.status, 0, v.stderr);
  const info = JSON.parse(v.stdout) as { plugin: string; node: string };
  assert.equal(info.node, process.version);
  assert.notEqual(info.plugin, '0.0.0-dev', 'esbuild defines the release version');
  const h = runBundle('exchange', '--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /kubectl kt exchange deploy\/NAME\|svc\/NAME --expose/);
  const bad = runBundle('conect');
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^error KT_ERR_UNKNOWN_COMMAND: unknown command "conect"; did you mean "connect"\? — .+\n$/);
  // A command that needs the cluster, with no kubeconfig anywhere: one line, exit 1, no silent fallback.
  const nk = runBundle('status');
  assert.equal(nk.status, 1);
  assert.match(nk.stderr, /^error KT_ERR_KUBECONFIG_NOT_FOUND: [^\n]+\n$/);
});

test('at run time, version and --help load no HTTPS/TLS stack (what client-node and ssh2 need first)', { skip: !existsSync(bundle) && 'dist/kubectl-kt not built' }, async () => {
  const dir = await mkdtemp(join(root, 'dist', '.require-probe-'));
  try {
    // Records every require() the bundle makes; bundled code only requires Node built-ins.
    const preload = join(dir, 'record.cjs');
    await writeFile(preload, `const M = require('node:module'); const orig = M.prototype.require; const seen = new Set();
M.prototype.require = function (id) { seen.add(id); return orig.apply(this, arguments); };
process.on('exit', () => process.stderr.write('REQUIRES ' + JSON.stringify([...seen]) + '\\n'));\n`);
    const requires = (...args: string[]): string[] => {
      const r = spawnSync(process.execPath, ['--require', preload, bundle, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const line = r.stderr.split('\n').find((l) => l.startsWith('REQUIRES '));
      assert.ok(line, r.stderr);
      return JSON.parse(line.slice('REQUIRES '.length)) as string[];
    };
    for (const args of [['version'], ['--help'], ['exchange', '--help']]) {
      const seen = requires(...args);
      assert.ok(seen.includes('node:path'), `the probe records requires: ${seen}`);
      for (const heavy of ['https', 'tls', 'http2', 'crypto', 'zlib']) {
        assert.ok(!seen.includes(heavy) && !seen.includes(`node:${heavy}`), `${args.join(' ')} required ${heavy}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the Kubernetes client is a chunk of its own: version, help and completion run without it; cluster commands load it', { skip: !existsSync(bundle) && 'dist/kubectl-kt not built' }, async () => {
  const size = (await stat(bundle)).size;
  assert.ok(size < 4_000_000, `dist/kubectl-kt is ${size} bytes: has client-node slipped back into the main bundle?`);
  const dir = await mkdtemp(join(tmpdir(), 'kt-chunk-'));
  try {
    // The bundle alone, without dist/kt-kube.cjs beside it.
    const alone = join(dir, 'kubectl-kt');
    await copyFile(bundle, alone);
    await writeFile(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    const kt = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [alone, ...args], { encoding: 'utf8', env: { PATH: '/nonexistent', HOME: dir, ...env } });
    for (const args of [['version'], ['--help'], ['exchange', '--help'], ['completion', 'bash']]) {
      const r = kt(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    // A command that talks to the cluster needs the client, so it reaches for the chunk (and here finds none).
    // A plain-HTTP server (as `kubectl proxy` serves) on a port nothing listens on.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const kubeconfig = join(dir, 'config');
    await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {}}]\n`);
    const r = kt(['status', '--kubeconfig', kubeconfig]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /kt-kube\.cjs/, r.stderr);
    // With the chunk beside it, the same command gets as far as the (absent) API server.
    // NODE_DEBUG=kt-cache: the loader says what it did with the code cache.
    await copyFile(join(root, 'dist', KUBE_CHUNK), join(dir, KUBE_CHUNK));
    const status = () => {
      const out = kt(['status', '--kubeconfig', kubeconfig], { NODE_DEBUG: 'kt-cache' });
      assert.match(out.stderr, /^error KT_ERR_API_UNREACHABLE/m, out.stderr);
      return out.stderr;
    };
    const cacheDir = join(dir, '.cache', 'kubectl-kt');
    const cacheFiles = async () => (await readdir(cacheDir)).filter((f) => f.endsWith('.v8cache'));
    /** The user's cache: its warmth (first byte) and size. */
    const userCache = async () => {
      const [f] = await cacheFiles();
      const b = await readFile(join(cacheDir, f));
      return { warmth: b[0], size: b.length };
    };
    // No cache anywhere: the first load makes one (HOME is dir here), and the
    // command, having talked to the cluster, leaves a warmer one.
    let said = status();
    assert.match(said, /kube client: no code cache/, said);
    assert.match(said, new RegExp(`code cache of warmth ${CacheWarmth.command} written`), said);
    const caches = await cacheFiles();
    assert.equal(caches.length, 1, `one cache file in ${cacheDir}: ${caches}`);
    assert.deepEqual({ warmth: (await userCache()).warmth, big: (await userCache()).size > 100_000 }, { warmth: CacheWarmth.command, big: true });
    // The next start takes it, and writes none: it got no further than the one that made it.
    said = status();
    assert.match(said, new RegExp(`code cache the user's \\(warmth ${CacheWarmth.command}\\) taken`), said);
    assert.doesNotMatch(said, /written/, said);
    // A damaged cache is refused by V8 and replaced; the command works all the same.
    await writeFile(join(cacheDir, caches[0]), 'garbage');
    said = status();
    assert.match(said, /refused by V8/, said);
    assert.deepEqual({ warmth: (await userCache()).warmth, big: (await userCache()).size > 100_000 }, { warmth: CacheWarmth.command, big: true }, 'the damaged cache was replaced');
    // A cache of another build is removed when this one is written.
    await writeFile(join(cacheDir, 'kube-v0-x64-1-1.v8cache'), 'old');
    await rm(join(cacheDir, caches[0]));
    status();
    assert.deepEqual(await cacheFiles(), caches);
    // The build's code cache beside the chunk: a first run takes it (this Node made it), then leaves its warmer one.
    await rm(cacheDir, { recursive: true });
    await copyFile(join(root, 'dist', KUBE_CHUNK_CACHE), join(dir, KUBE_CHUNK_CACHE));
    said = status();
    assert.match(said, /code cache the build's taken/, said);
    assert.equal((await userCache()).warmth, CacheWarmth.command);
    // One V8 refuses (another Node's; here a damaged one) counts as none.
    await rm(cacheDir, { recursive: true });
    await writeFile(join(dir, KUBE_CHUNK_CACHE), 'garbage');
    said = status();
    assert.match(said, /code cache the build's refused by V8/, said);
    assert.deepEqual(await cacheFiles(), caches);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
