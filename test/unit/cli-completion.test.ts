// The completion scripts run in the real shells: bash by calling the
// completion function with COMP_WORDS set, fish with `complete -C`, zsh by
// loading the script under compinit. zsh and fish tests skip where the shell
// is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
    assert.deepEqual(complete('kubectl-kt', ''), Object.keys(COMMANDS).sort());
    assert.deepEqual(complete('kubectl-kt', 'con'), ['connect']);
    assert.deepEqual(complete('kubectl-kt', 'connect', '--mo'), ['--mode']);
    assert.deepEqual(complete('kubectl-kt', 'connect', '--mode', ''), ['route', 'socks']);
    assert.deepEqual(complete('kubectl-kt', 'exchange', '--mode', ''), ['scale', 'selector']);
    assert.deepEqual(complete('kubectl-kt', '-n', 'shop', 'exchange', '--e'), ['--env-file', '--expose']);
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
    const out = sh('zsh', `autoload -U compinit && compinit -u -D -d /dev/null; source ${file}; print -r -- $_comps[kubectl-kt]`);
    assert.equal(out.trim(), '_kubectl_kt');
  });
});
