// What a cluster instance has created, written to <dir>/state.json before
// each thing is created, so `down` can remove all of it even when the cluster
// process was killed with SIGKILL half-way through.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, closeSync, unlinkSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { runResult } from './run.ts';

export interface ClusterState {
  name: string;
  prefix: string;
  /** The range index: pods 10.(64+i).0.0/16, services 10.(96+i).0.0/16. */
  index: number;
  dir: string;
  /** True when startCluster made `dir` itself (then stop removes it). */
  ownsDir: boolean;
  clusterPid: number;
  apiPort: number;
  netns: string[];
  etcNetns: string[];
  lockFile?: string;
  /** Processes outside the namespaces (the control plane), each started with the cluster's directory in its arguments. */
  pids?: number[];
}

export const LOCK_DIR = '/run/kt-test-clusters';
export const MAX_CLUSTERS = 32;

export function statePath(dir: string): string {
  return join(dir, 'state.json');
}

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(dir), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** The state of one cluster, kept on disk as it changes. */
export class StateRecord {
  readonly state: ClusterState;

  constructor(state: ClusterState) {
    this.state = state;
    this.save();
  }

  save(): void {
    const p = statePath(this.state.dir);
    writeFileSync(p + '.tmp', JSON.stringify(this.state, null, 2));
    // rename is atomic: a reader sees the old or the new record, never half.
    renameSync(p + '.tmp', p);
  }

  addPid(pid: number): void {
    this.state.pids = [...(this.state.pids ?? []), pid];
    this.save();
  }

  addNetns(name: string): void {
    if (!this.state.netns.includes(name)) this.state.netns.push(name);
    this.save();
  }

  removeNetns(name: string): void {
    this.state.netns = this.state.netns.filter((n) => n !== name);
    this.save();
  }

  addEtcNetns(path: string): void {
    if (!this.state.etcNetns.includes(path)) this.state.etcNetns.push(path);
    this.save();
  }

  removeEtcNetns(path: string): void {
    this.state.etcNetns = this.state.etcNetns.filter((n) => n !== path);
    this.save();
  }
}

/**
 * Take a free range index: a lock file per index under /run. A lock whose
 * cluster directory is gone is stale (its cluster was removed by hand) and is
 * taken over.
 */
export function lockIndex(dir: string): { index: number; lockFile: string } {
  mkdirSync(LOCK_DIR, { recursive: true });
  for (let i = 0; i < MAX_CLUSTERS; i++) {
    const lockFile = join(LOCK_DIR, String(i));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(lockFile, 'wx');
        writeFileSync(fd, dir);
        closeSync(fd);
        return { index: i, lockFile };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let owner = '';
        try {
          owner = readFileSync(lockFile, 'utf8');
        } catch {
          continue;
        }
        if (owner && existsSync(statePath(owner))) break;
        // Stale: its owner wrote no state (crashed before) or was removed.
        try {
          unlinkSync(lockFile);
        } catch {
          // Someone else took it over first; try the next index.
        }
      }
    }
  }
  throw new Error(`all ${MAX_CLUSTERS} test cluster slots in ${LOCK_DIR} are taken; run \`make cluster-down\` or remove stale clusters`);
}

/** Processes whose network namespace is `ns`. */
export async function netnsPids(ns: string): Promise<number[]> {
  const r = await runResult('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => n !== process.pid);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie is dead already; only its parent's wait() is missing.
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** SIGKILL the processes and wait until the kernel has removed them. */
export async function killAndWait(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  // There is no portable "process exited" event for a non-child; the kernel
  // takes a few milliseconds to tear a killed process down.
  const deadline = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Is `pid` the cluster process of `dir` (and not a reused pid)? */
export function isClusterProcess(pid: number, dir: string): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('cluster.ts') && cmd.includes(dir);
  } catch {
    return false;
  }
}

function namesDir(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/**
 * Remove everything the state names: processes in its namespaces, the
 * namespaces (which takes their interfaces and nftables tables with them),
 * the /etc/netns entries and the range lock. Idempotent.
 */
export async function teardown(state: ClusterState): Promise<void> {
  const pids: number[] = [];
  for (const ns of state.netns) pids.push(...(await netnsPids(ns)));
  if (state.clusterPid !== process.pid && isClusterProcess(state.clusterPid, state.dir)) pids.push(state.clusterPid);
  // The control plane, if it outlived the cluster process; a recycled pid runs without our directory in its arguments.
  for (const pid of state.pids ?? []) if (namesDir(pid, state.dir)) pids.push(pid);
  await killAndWait(pids);
  // A second pass catches children spawned while the first were dying.
  const late: number[] = [];
  for (const ns of state.netns) late.push(...(await netnsPids(ns)));
  if (late.length > 0) await killAndWait(late);
  for (const ns of state.netns) {
    await runResult('ip', ['netns', 'delete', ns]);
  }
  for (const p of state.etcNetns) rmSync(p, { recursive: true, force: true });
  if (state.lockFile) {
    try {
      if (readFileSync(state.lockFile, 'utf8') === state.dir) unlinkSync(state.lockFile);
    } catch {
      // Already removed.
    }
  }
}

/**
 * Remove the clusters whose process is gone (a test runner killed on a
 * timeout, a crash): their namespaces, processes and range locks would
 * otherwise stay until someone runs `ctl.ts sweep`. A cluster directory the
 * caller did not create (.cluster of `make cluster-up`) is kept, so `down`
 * still finds it.
 */
export async function sweepDead(): Promise<void> {
  if (!existsSync(LOCK_DIR)) return;
  for (const f of readdirSync(LOCK_DIR)) {
    let dir = '';
    try {
      dir = readFileSync(join(LOCK_DIR, f), 'utf8');
    } catch {
      continue;
    }
    const s = readState(dir);
    if (!s || existsSync(`/proc/${s.clusterPid}`)) continue;
    await teardown(s);
    if (s.ownsDir) rmSync(dir, { recursive: true, force: true });
    else rmSync(statePath(dir), { force: true });
  }
}
