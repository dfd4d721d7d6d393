// The completion scripts run in the real shells: bash by calling the
// completion function with COMP_WORDS set, fish with `complete -C`, zsh by
// loading the script under compinit. zsh and fish tests skip where the shell
// is not installed. Last, real kubectl completes `kubectl kt` through the
// kubectl_complete-kt wrapper and `__complete`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../plugin/src/app.ts';
import { COMMANDS } from '../../plugin/src/cli.ts';

async function script(shell: string): Promise<string> {
  let out = '';
  const code = await run(['completion', shell], {
    out: { write: (s: string) => (out += s) },
    err: { write: () => true },
    env: {}, signal: new AbortController().signal, clock: { now: () => 0 },
  });
  assert.equal(code, 0);
  return out;
}

const has = (shell: string): boolean => spawnSync(shell, ['-c', 'exit 0']).status === 0;

async function withScript(shell: string, fn: (file: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kt-completion-'));
  try {
    const file = join(dir, `kt.${shell}`);
    await writeFile(file, await script(shell));
    fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function sh(shell: string, code: string): string {
  // PATH without kubectl: namespace completion must fail quietly, not hang.
  const r = spawnSync(shell, ['-c', code], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: tmpdir() }, timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'no errors from the script');
  return r.stdout;
}

test('bash: commands, flags of the command, global flags, and flag values from the table', async () => {
  await withScript('bash', (file) => {
    const complete = (...words: string[]): string[] => sh('bash', `source ${file}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _kubectl_kt; printf '%s\\n' "\${COMPREPLY[@]}"`)
      .split('\n').filter(Boolean).sort();
    assert.deepEqual(complete('kubectl-kt', ''), Object.keys(COMMANDS).filter((n) => n !== '__complete').sort());
    assert.deepEqual(complete('kubectl-kt', 'con'), ['connect']);
    assert.deepEqual(complete('kubectl-kt', 'connect', '--mo'), ['--mode']);
    assert.deepEqual(complete('kubectl-kt', 'connect', '--mode', ''), ['route', 'socks']);
    assert.deepEqual(complete('kubectl-kt', 'exchange', '--mode', ''), ['scale', 'selector']);
    assert.deepEqual(complete('kubectl-kt', '-n', 'shop', 'exchange', '--e'), ['--env-out', '--expose']);
    assert.deepEqual(complete('kubectl-kt', 'status', '-o', ''), ['json', 'text', 'yaml']);
    assert.deepEqual(complete('kubectl-kt', 'completion', ''), ['bash', 'fish', 'zsh']);
    assert.deepEqual(complete('kubectl-kt', 'help', 'ex'), ['exchange']);
    assert.deepEqual(complete('kubectl-kt', 'status', '--a'), ['--all-namespaces']);
    assert.deepEqual(complete('kubectl-kt', 'version', '--a'), [], 'no flag of another command');
    assert.deepEqual(complete('kubectl-kt', '--deb'), ['--debug']);
    assert.deepEqual(complete('kubectl-kt', 'status', '-n', ''), [], 'no kubectl on PATH: no namespaces, no error');
  });
});

test('fish: complete -C offers commands, flags and values', { skip: !has('fish') && 'fish not installed' }, async () => {
  await withScript('fish', (file) => {
    const complete = (line: string): string[] =>
      sh('fish', `source ${file}; complete -C '${line}'`).split('\n').filter(Boolean).map((l) => l.split('\t')[0]).sort();
    assert.deepEqual(complete('kubectl-kt con'), ['connect']);
    assert.deepEqual(complete('kubectl-kt connect --mode '), ['route', 'socks']);
    assert.deepEqual(complete('kubectl-kt completion '), ['bash', 'fish', 'zsh']);
    assert.ok(complete('kubectl-kt -n x exchange --').includes('--expose'));
    assert.ok(!complete('kubectl-kt version --').includes('--expose'));
  });
});

test('zsh: the script parses and registers for kubectl-kt under compinit', { skip: !has('zsh') && 'zsh not installed' }, async () => {
  await withScript('zsh', (file) => {
    sh('zsh', `zsh -n ${file}`);
    const out = sh('zsh', `autoload -U compinit && compinit -u -D; source ${file}; print -r -- $_comps[kubectl-kt]`);
    assert.equal(out.trim(), '_kubectl_kt');
  });
});

async function completeLine(words: string[], env: Record<string, string> = {}): Promise<{ values: string[]; directive: string }> {
  let out = '';
  const code = await run(['__complete', ...words], {
    out: { write: (s: string) => (out += s) },
    err: { write: () => true },
    env, signal: new AbortController().signal, clock: { now: () => 0 },
  });
  assert.equal(code, 0);
  const lines = out.trimEnd().split('\n');
  const directive = lines.pop() ?? '';
  return { values: lines.map((l) => l.split('\t')[0]), directive };
}

test('__complete: cobra-format candidates for a half-typed line', async () => {
  assert.deepEqual(await completeLine(['con']), { values: ['connect'], directive: ':4' });
  assert.deepEqual(await completeLine(['-n', 'shop', 'connect', '--mode', '']), { values: ['socks', 'route'], directive: ':4' });
  assert.deepEqual(await completeLine(['exchange', '--mode=s']), { values: ['--mode=selector', '--mode=scale'], directive: ':4' });
  assert.deepEqual(await completeLine(['exchange', '--e']), { values: ['--expose', '--env-out'], directive: ':4' });
  assert.deepEqual(await completeLine(['exchange', '--env-out', '']), { values: [], directive: ':0' }, 'file names: left to the shell');
  assert.deepEqual(await completeLine(['completion', '']), { values: ['bash', 'zsh', 'fish'], directive: ':4' });
  assert.deepEqual(await completeLine(['completion', 'bash', '']), { values: [], directive: ':4' }, 'no second argument');
  assert.deepEqual(await completeLine(['connect', '--', 'cu']), { values: [], directive: ':0' });
  assert.ok(!(await completeLine([''])).values.includes('__complete'), 'hidden commands are not offered');
  const dir = await mkdtemp(join(tmpdir(), 'kt-complete-'));
  try {
    const cfg = join(dir, 'config');
    await writeFile(cfg, 'contexts: [{name: dev, context: {cluster: c}}, {name: prod, context: {cluster: c}}]\n');
    assert.deepEqual(await completeLine(['--context', ''], { KUBECONFIG: cfg }), { values: ['dev', 'prod'], directive: ':4' });
    assert.deepEqual(await completeLine(['--kubeconfig', cfg, '--context', 'p']), { values: ['prod'], directive: ':4' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const bundle = join(import.meta.dirname, '..', '..', 'dist', 'kubectl-kt');
const kubectlReady = spawnSync('kubectl', ['version', '--client']).status === 0 && existsSync(bundle);

test('real kubectl completes `kubectl kt ...` through kubectl_complete-kt', { skip: !kubectlReady && 'needs kubectl and dist/kubectl-kt' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kt-kubectl-'));
  try {
    // What a user installs: kubectl-kt (here: the bundle) and the two-line completion wrapper.
    await writeFile(join(dir, 'kubectl-kt'), `#!/bin/sh\nexec '${process.execPath}' '${bundle}' "$@"\n`, { mode: 0o755 });
    await writeFile(join(dir, 'kubectl_complete-kt'), '#!/bin/sh\nexec kubectl kt __complete "$@"\n', { mode: 0o755 });
    const env = { PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: dir };
    const ask = (...words: string[]) => {
      const r = spawnSync('kubectl', ['__complete', 'kt', ...words], { encoding: 'utf8', env, timeout: 30000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trimEnd().split('\n');
    };
    assert.deepEqual(ask('exc'), ['exchange\tSend all traffic of a Service to a local port', ':4']);
    assert.deepEqual(ask('-n', 'shop', 'connect', '--mode', ''), ['socks', 'route', ':4']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
