// `kubectl kt completion bash|zsh|fish`: completion scripts generated from the
// command table, so every command, flag and closed set of values is offered.
// Namespaces and contexts are asked from kubectl when completing -n/--context.
import { flagName, type CommandSpec, type Flag, type FlagMap, type Table } from '../args.ts';
import type { OptionsOf, Shell } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { visibleCommands } from './help.ts';

const PROG = 'kubectl-kt';

export type Hint = { kind: 'choices'; values: readonly string[] } | { kind: 'file' | 'namespace' | 'context' | 'none' };

/** What to offer as a flag's value. */
export function hint(key: string, f: Flag<unknown>): Hint {
  if (f.choices) return { kind: 'choices', values: f.choices };
  if (f.placeholder === 'FILE') return { kind: 'file' };
  if (key === 'namespace' || key === 'namespaces') return { kind: 'namespace' };
  if (key === 'context') return { kind: 'context' };
  return { kind: 'none' };
}

/** Values to offer for the command's positional argument number `index`. */
export function argChoices(table: Table, spec: CommandSpec, index = 0): readonly string[] {
  const a = Object.values(spec.args)[index];
  return a?.choices ?? (a?.placeholder === 'COMMAND' ? visibleCommands(table).map(([n]) => n) : []);
}

const KUBECTL_NAMESPACES = 'kubectl get namespaces -o name 2>/dev/null';
const KUBECTL_CONTEXTS = 'kubectl config get-contexts -o name 2>/dev/null';

export async function run(opts: OptionsOf<'completion'>, deps: Deps): Promise<string> {
  const make: Record<Shell, (table: Table) => string> = { bash, zsh, fish };
  return make[opts.shell](deps.table);
}

export function text(data: unknown): string {
  return String(data);
}

// ---- bash ---------------------------------------------------------------------

function bashWords(flags: FlagMap): string {
  return Object.entries(flags).flatMap(([k, f]) => (f.short ? [`-${f.short}`, flagName(k)] : [flagName(k)])).join(' ');
}

function bashValueCase(scope: string, flags: FlagMap): string[] {
  const out: string[] = [];
  for (const [k, f] of Object.entries(flags)) {
    if (f.kind !== 'value') continue;
    const names = [flagName(k), ...(f.short ? [`-${f.short}`] : [])].map((n) => `${scope}:${n}`).join('|');
    const h = hint(k, f);
    const action = h.kind === 'choices' ? `COMPREPLY=($(compgen -W "${h.values.join(' ')}" -- "$cur"))`
      : h.kind === 'file' ? 'COMPREPLY=($(compgen -f -- "$cur"))'
      : h.kind === 'namespace' ? `COMPREPLY=($(compgen -W "$(${KUBECTL_NAMESPACES} | sed 's|^namespace/||')" -- "$cur"))`
      : h.kind === 'context' ? `COMPREPLY=($(compgen -W "$(${KUBECTL_CONTEXTS})" -- "$cur"))`
      : 'COMPREPLY=()';
    out.push(`    ${names}) ${action}; return ;;`);
  }
  return out;
}

function bash(table: Table): string {
  const cmds = visibleCommands(table);
  const names = cmds.map(([n]) => n);
  const lines = [
    `# bash completion for ${PROG}; load it with: source <(kubectl kt completion bash)`,
    '_kubectl_kt() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i n=0',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in',
    `      ${names.join('|')}) cmd="\${COMP_WORDS[i]}"; break ;;`,
    '    esac',
    '  done',
    '  case "${cmd}:${prev}" in',
    ...bashValueCase('*', table.globals),
    ...cmds.flatMap(([n, c]) => bashValueCase(n, c.flags)),
    '  esac',
    `  local globals="${bashWords(table.globals)}"`,
    '  if [[ -z "$cmd" ]]; then',
    `    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$globals" -- "$cur")); else COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur")); fi`,
    '    return',
    '  fi',
    '  local flags="" args=""',
    '  case "$cmd" in',
    ...cmds.map(([n, c]) => `    ${n}) flags="${bashWords(c.flags)}"; args="${argChoices(table, c).join(' ')}" ;;`),
    '  esac',
    '  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags $globals" -- "$cur")); else COMPREPLY=($(compgen -W "$args" -- "$cur")); fi',
    '}',
    `complete -o default -F _kubectl_kt ${PROG}`,
    '',
  ];
  return lines.join('\n');
}

// ---- zsh ----------------------------------------------------------------------

const zq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const zdesc = (s: string): string => s.replace(/([[\]\\:])/g, '\\$1');

function zshAction(key: string, f: Flag<unknown>): string {
  const h = hint(key, f);
  const what = f.placeholder.toLowerCase() || 'value';
  switch (h.kind) {
    case 'choices': return `:${zdesc(what)}:(${h.values.join(' ')})`;
    case 'file': return `:${what}:_files`;
    case 'namespace': return `:namespace:_kubectl_kt_namespaces`;
    case 'context': return `:context:_kubectl_kt_contexts`;
    case 'none': return `:${zdesc(what)}: `;
  }
}

function zshSpecs(flags: FlagMap): string[] {
  return Object.entries(flags).flatMap(([k, f]) => {
    const rep = f.repeatable ? '*' : '';
    const desc = `[${zdesc(f.summary)}]`;
    const action = f.kind === 'value' ? zshAction(k, f) : '';
    const specs = [zq(`${rep}${flagName(k)}${f.kind === 'value' ? '=' : ''}${desc}${action}`)];
    if (f.short) specs.push(zq(`${rep}-${f.short}${f.kind === 'value' ? '+' : ''}${desc}${action}`));
    return specs;
  });
}

function zsh(table: Table): string {
  const cmds = visibleCommands(table);
  const lines = [
    `#compdef ${PROG}`,
    `# zsh completion for ${PROG}; load it with: source <(kubectl kt completion zsh)`,
    '_kubectl_kt_namespaces() {',
    `  local -a ns; ns=(\${(f)"$(${KUBECTL_NAMESPACES})"}); compadd -- \${ns#namespace/}`,
    '}',
    '_kubectl_kt_contexts() {',
    `  local -a ctx; ctx=(\${(f)"$(${KUBECTL_CONTEXTS})"}); compadd -- $ctx`,
    '}',
    '_kubectl_kt() {',
    '  local curcontext="$curcontext" state line',
    '  local -a globals commands',
    `  globals=(${zshSpecs(table.globals).join(' ')})`,
    `  commands=(${cmds.map(([n, c]) => zq(`${n}:${c.summary}`)).join(' ')})`,
    `  _arguments -C $globals '1: :->cmd' '*:: :->args' && return`,
    '  case $state in',
    `    cmd) _describe -t commands 'kubectl kt command' commands ;;`,
    '    args)',
    '      case $words[1] in',
    ...cmds.map(([n, c]) => {
      const choices = argChoices(table, c);
      const pos = choices.length ? [zq(`1:${zdesc(Object.values(c.args)[0].placeholder)}:(${choices.join(' ')})`)] : [];
      return `        ${n}) _arguments $globals ${[...zshSpecs(c.flags), ...pos].join(' ')} ;;`;
    }),
    '      esac ;;',
    '  esac',
    '}',
    // Sourced (not autoloaded from fpath): register the function directly.
    `if [[ "\${funcstack[1]}" = _kubectl_kt ]]; then _kubectl_kt "$@"; else compdef _kubectl_kt ${PROG}; fi`,
    '',
  ];
  return lines.join('\n');
}

// ---- fish ---------------------------------------------------------------------

const fq = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fishFlags(flags: FlagMap, cond: string): string[] {
  return Object.entries(flags).map(([k, f]) => {
    const parts = [`complete -c ${PROG}`];
    if (cond) parts.push(`-n ${fq(cond)}`);
    if (f.short) parts.push(`-s ${f.short}`);
    parts.push(`-l ${flagName(k).slice(2)}`);
    if (f.kind === 'value') {
      const h = hint(k, f);
      if (h.kind === 'file') parts.push('-r -F');
      else {
        parts.push('-x');
        if (h.kind === 'choices') parts.push(`-a ${fq(h.values.join(' '))}`);
        if (h.kind === 'namespace') parts.push(`-a ${fq(`(${KUBECTL_NAMESPACES} | string replace namespace/ '')`)}`);
        if (h.kind === 'context') parts.push(`-a ${fq(`(${KUBECTL_CONTEXTS})`)}`);
      }
    }
    parts.push(`-d ${fq(f.summary)}`);
    return parts.join(' ');
  });
}

function fish(table: Table): string {
  const cmds = visibleCommands(table);
  const names = cmds.map(([n]) => n).join(' ');
  return [
    `# fish completion for ${PROG}; load it with: kubectl kt completion fish | source`,
    '# Succeeds when the command on the line is $argv[1] (or any command, without an argument).',
    'function __kubectl_kt_command',
    '  for w in (commandline -opc)[2..-1]',
    `    if contains -- $w ${names}`,
    '      test (count $argv) -eq 0; or test $w = $argv[1]',
    '      return',
    '    end',
    '  end',
    '  return 1',
    'end',
    `complete -c ${PROG} -f`,
    ...cmds.map(([n, c]) => `complete -c ${PROG} -n 'not __kubectl_kt_command' -a ${n} -d ${fq(c.summary)}`),
    ...fishFlags(table.globals, ''),
    ...cmds.flatMap(([n, c]) => {
      const cond = `__kubectl_kt_command ${n}`;
      const choices = argChoices(table, c);
      return [
        ...fishFlags(c.flags, cond),
        ...(choices.length ? [`complete -c ${PROG} -n ${fq(cond)} -a ${fq(choices.join(' '))}`] : []),
      ];
    }),
    '',
  ].join('\n');
}
