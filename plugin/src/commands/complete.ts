// `kubectl-kt __complete WORDS... CURRENT`: completion candidates for a
// half-typed line, in the format of cobra's __complete (one `value\tdescription`
// per line, then `:DIRECTIVE`). kubectl (1.26+) runs an executable named
// `kubectl_complete-kt` to complete `kubectl kt ...` and expects exactly this
// (kubernetes/kubernetes#105867); the README shows the two-line wrapper.
import { flagName, isFlag, lookup, splitToken, type Flag, type FlagMap, type Table } from '../args.ts';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { loadKubeconfig } from '../kube/config.ts';
import { argChoices, hint } from './completion.ts';
import { visibleCommands } from './help.ts';

/** cobra's ShellCompDirective values. */
const DIRECTIVE = { default: 0, noFileComp: 4 } as const;

interface Candidate {
  readonly value: string;
  readonly description?: string;
}

interface Completion {
  readonly items: readonly Candidate[];
  /** Let the shell complete file names instead. */
  readonly files: boolean;
}

const none: Completion = { items: [], files: false };

function flagsOf(table: Table, cmd: string | undefined): FlagMap {
  return cmd ? { ...table.globals, ...table.commands[cmd].flags } : table.globals;
}

async function valuesOf(key: string, f: Flag<unknown>, deps: Deps, opts: { kubeconfig?: string }): Promise<Completion> {
  const h = hint(key, f);
  if (h.kind === 'choices') return { items: h.values.map((value) => ({ value })), files: false };
  if (h.kind === 'file') return { items: [], files: true };
  if (h.kind === 'context') {
    // Read from the kubeconfig, as kubectl does; no cluster call.
    const kc = await loadKubeconfig({ kubeconfig: opts.kubeconfig, env: deps.env }).catch(() => undefined);
    return { items: [...(kc?.contexts.keys() ?? [])].map((value) => ({ value })), files: false };
  }
  return none;
}

/** What may follow `words` at the position of `current`. */
export async function complete(words: readonly string[], current: string, deps: Deps): Promise<Completion> {
  let cmd: string | undefined;
  let pending: { key: string; flag: Flag<unknown> } | undefined;
  let positional = 0;
  let kubeconfig: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (pending) {
      if (pending.key === 'kubeconfig') kubeconfig = w;
      pending = undefined;
    } else if (w === '--') {
      return { items: [], files: true }; // a command to run: the shell knows best
    } else if (isFlag(w)) {
      const { name, inline } = splitToken(w);
      const found = lookup(flagsOf(deps.table, cmd), name);
      if (found?.key === 'kubeconfig' && inline !== undefined) kubeconfig = inline;
      if (found?.flag.kind === 'value' && inline === undefined) pending = found;
    } else if (!cmd && Object.hasOwn(deps.table.commands, w)) {
      cmd = w;
    } else {
      positional++;
    }
  }
  if (pending) return valuesOf(pending.key, pending.flag, deps, { kubeconfig });
  const eq = current.indexOf('=');
  if (current.startsWith('--') && eq > 0) {
    const found = lookup(flagsOf(deps.table, cmd), current.slice(0, eq));
    if (!found || found.flag.kind !== 'value') return none;
    const c = await valuesOf(found.key, found.flag, deps, { kubeconfig });
    return { ...c, items: c.items.map((it) => ({ ...it, value: `${current.slice(0, eq + 1)}${it.value}` })) };
  }
  if (current.startsWith('-')) {
    const items = Object.entries(flagsOf(deps.table, cmd)).flatMap(([k, f]) => [
      { value: flagName(k), description: f.summary },
      ...(f.short ? [{ value: `-${f.short}`, description: f.summary }] : []),
    ]);
    return { items, files: false };
  }
  if (!cmd) return { items: visibleCommands(deps.table).map(([value, c]) => ({ value, description: c.summary })), files: false };
  return { items: argChoices(deps.table, deps.table.commands[cmd], positional).map((value) => ({ value })), files: false };
}

export async function run(opts: OptionsOf<'__complete'>, deps: Deps): Promise<string> {
  const words = opts.rest.slice(0, -1);
  const current = opts.rest.at(-1) ?? '';
  const c = await complete(words, current, deps);
  const lines = c.items
    .filter((it) => it.value.startsWith(current))
    .map((it) => (it.description ? `${it.value}\t${it.description}` : it.value));
  lines.push(`:${c.files ? DIRECTIVE.default : DIRECTIVE.noFileComp}`);
  return `${lines.join('\n')}\n`;
}

export function text(data: unknown): string {
  return String(data);
}
