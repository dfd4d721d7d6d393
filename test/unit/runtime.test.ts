// The runtime check of the bundle (plugin/src/runtime.ts): the rule, the
// minimum against what the bundled packages declare, and the real old Node
// of this machine (/usr/bin/node, Node 20) running the built bundle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIN_NODE, olderThan, runtimeProblem } from '../../plugin/src/runtime.ts';

const root = join(import.meta.dirname, '..', '..');
const bundle = join(root, 'dist', 'kubectl-kt');
const OLD_NODE = '/usr/bin/node';

test('olderThan compares major.minor.patch', () => {
  assert.equal(olderThan('20.20.2', '22.19.0'), true);
  assert.equal(olderThan('v22.18.9', '22.19.0'), true);
  assert.equal(olderThan('22.19.0', '22.19.0'), false);
  assert.equal(olderThan('22.19.1', '22.19.0'), false);
  assert.equal(olderThan('26.10.0', '22.19.0'), false);
  assert.equal(olderThan('23.0.0-pre', '22.19.0'), false);
  assert.equal(runtimeProblem({ version: process.versions.node, execPath: process.execPath }), undefined, 'the Node the tests run on is new enough');
  assert.deepEqual(runtimeProblem({ version: '20.20.2', execPath: '/usr/bin/node' }), { version: 'v20.20.2', execPath: '/usr/bin/node', min: MIN_NODE });
});

/** The lower bound of an `engines.node` range (">=22.19.0", ">= 10.16.0", "^18 || >=20"): its smallest version. */
function lowerBound(range: string): string {
  const versions = [...range.matchAll(/(\d+)(?:\.(\d+))?(?:\.(\d+))?/g)].map((m) => `${m[1]}.${m[2] ?? 0}.${m[3] ?? 0}`);
  return versions.reduce((a, b) => (olderThan(b, a) ? b : a));
}

test('MIN_NODE is the highest engines.node lower bound of the packages the plugin bundles', () => {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } }> };
  let highest = '0.0.0';
  let who = '';
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === '' || p.dev || !p.engines?.node) continue;
    const lb = lowerBound(p.engines.node);
    if (olderThan(highest, lb)) [highest, who] = [lb, path];
  }
  assert.equal(MIN_NODE, highest, `the highest bound is ${highest} (${who}); set MIN_NODE in plugin/src/runtime.ts to it`);
});

test('the bundle on the machine\'s old Node says in one line what it needs, before any command', {
  skip: (!existsSync(bundle) && 'dist/kubectl-kt not built') || (!existsSync(OLD_NODE) && `${OLD_NODE} not installed`),
}, () => {
  const v = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(olderThan(v, MIN_NODE), `${OLD_NODE} is ${v}: not an old Node, nothing to show`);
  for (const args of [['version'], ['status', '-n', 'shop'], ['exchange', 'svc/web', '--expose', '8080']]) {
    const r = spawnSync(OLD_NODE, [bundle, ...args], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '/nonexistent' } });
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stdout, '', 'nothing of the command ran');
    assert.equal(r.stderr, `error KT_ERR_NODE_TOO_OLD: kubectl-kt needs Node >= ${MIN_NODE}, and ${OLD_NODE} is Node ${v} — use the single executable (\`kubectl krew install kt\`, or the release archive for your platform), or run the bundle with Node >= ${MIN_NODE}\n`);
  }
  // The same bundle on the Node the tests run on is fine.
  const ok = spawnSync(process.execPath, [bundle, 'version'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});
