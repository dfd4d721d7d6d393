// Start-up and size of what users install: the linux-x64 single executable
// (`kubectl kt version`, `--help`) against `node -e 0`, with and without
// the SEA code cache; the binary's size raw, stripped, as tar.gz and as xz;
// and the proxy image's size. Builds everything fresh into a temporary
// directory from dist/ (make build). Goal: within 1.5x of `node -e 0`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KUBE_CHUNK } from '../../plugin/src/kube/chunk.ts';
import { ROOT, archive, buildBinary, sourceDateEpoch } from '../../scripts/dist.ts';
import { findTarget } from '../../scripts/dist-targets.ts';
import { buildImage } from '../../scripts/image.ts';
import { PLUGIN_NODE_FLAGS } from '../../scripts/plugin-flags.ts';
import { buildSea } from '../../scripts/sea.ts';
import type { BenchRow } from './run.ts';

const RUNS = 30;
const WARMUP = 3;

type Cmd = [file: string, args: string[]];

/** Median wall time of each command, runs interleaved so load drifts hit all alike. */
function medians(cmds: Record<string, Cmd>): Record<string, number> {
  const env = { PATH: '/usr/bin:/bin', HOME: tmpdir(), LANG: 'C' };
  const times: Record<string, number[]> = {};
  for (const name of Object.keys(cmds)) times[name] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const [name, [file, args]] of Object.entries(cmds)) {
      const start = process.hrtime.bigint();
      const r = spawnSync(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`${name}: exit ${r.status}: ${r.stderr}`);
      if (i >= WARMUP) times[name].push(ms);
    }
  }
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(times)) {
    v.sort((a, b) => a - b);
    out[name] = v[Math.floor(v.length / 2)];
  }
  return out;
}

const MB = 1e6;

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kt-bench-startup-'));
  try {
    const t = findTarget('linux-x64');
    const bin = buildBinary(t, { seaDir: join(dir, 'sea') });
    const base = join(ROOT, 'build/node-base/linux-x64/node.stripped');
    const noCache = buildSea({ main: join(ROOT, 'dist/kubectl-kt'), executable: base, output: join(dir, 'nocache/kubectl-kt'), useCodeCache: false, execArgv: PLUGIN_NODE_FLAGS, assets: { [KUBE_CHUNK]: join(ROOT, 'dist', KUBE_CHUNK) } });

    const m = medians({
      node: [process.execPath, ['-e', '0']],
      version: [bin, ['version']],
      help: [bin, ['--help']],
      versionNoCache: [noCache, ['version']],
      bundle: [process.execPath, [...PLUGIN_NODE_FLAGS, join(ROOT, 'dist/kubectl-kt'), 'version']],
    });
    const ref = 'node -e 0';
    const rows: BenchRow[] = [
      { name: 'startup: kubectl-kt version (SEA, code cache)', value: m.version, unit: 'ms', reference: ref, refValue: m.node, note: `median of ${RUNS}; goal ≤ 1.5×` },
      { name: 'startup: kubectl-kt --help (SEA, code cache)', value: m.help, unit: 'ms', reference: ref, refValue: m.node, note: `median of ${RUNS}; goal ≤ 1.5×` },
      { name: 'startup: kubectl-kt version (SEA, no code cache)', value: m.versionNoCache, unit: 'ms', reference: ref, refValue: m.node },
      { name: 'startup: node dist/kubectl-kt version (bundle)', value: m.bundle, unit: 'ms', reference: ref, refValue: m.node },
    ];

    const shipped = statSync(process.execPath).size;
    const raw = statSync(bin).size;
    const tgz = archive(t, bin, { mtime: sourceDateEpoch() }).length;
    const xz = execFileSync('xz', ['-6', '-T0', '-c', bin], { maxBuffer: 512 * MB }).length;
    const shippedRef = 'node binary as shipped';
    rows.push(
      { name: 'size: stripped node base', value: statSync(base).size / MB, unit: 'MB', reference: shippedRef, refValue: shipped / MB },
      { name: 'size: kubectl-kt linux-x64 binary', value: raw / MB, unit: 'MB', reference: shippedRef, refValue: shipped / MB, note: 'stripped base + bundle + code cache' },
      { name: 'size: kubectl-kt linux-x64 .tar.gz', value: tgz / MB, unit: 'MB', reference: shippedRef, refValue: shipped / MB, note: 'what krew downloads' },
      { name: 'size: kubectl-kt linux-x64 .xz', value: xz / MB, unit: 'MB', reference: shippedRef, refValue: shipped / MB, note: 'xz -6; krew takes only tar.gz and zip' },
    );

    const image = buildImage({ out: join(dir, 'image.tar'), workDir: join(dir, 'image') });
    for (const p of image.image.platforms) {
      const packed = p.layers.reduce((s, l) => s + l.size, 0);
      const unpacked = p.layers.reduce((s, l) => s + l.diffSize, 0);
      rows.push(
        { name: `size: proxy image linux/${p.architecture}, compressed`, value: packed / MB, unit: 'MB', reference: 'uncompressed', refValue: unpacked / MB, note: `${image.name}, ${p.layers.length} layers` },
        { name: `size: proxy binary linux/${p.architecture}`, value: readFileSync(image.binaries[p.architecture]).length / MB, unit: 'MB', reference: 'image uncompressed', refValue: unpacked / MB },
      );
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
