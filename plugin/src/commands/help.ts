// `kubectl kt help [COMMAND]` and `--help`: text made from the command table,
// so help cannot disagree with what the parser accepts.
import { flagName, type CommandSpec, type Flag, type FlagMap, type Table } from '../args.ts';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';

const WIDTH = 80;

export async function run(opts: OptionsOf<'help'>, deps: Deps): Promise<string> {
  const name = opts.command;
  return name === undefined ? topHelp(deps.table) : commandHelp(deps.table, name, deps.table.commands[name]);
}

export function text(data: unknown): string {
  return String(data);
}

/** The commands a user is shown (not the hidden ones), in table order. */
export function visibleCommands(table: Table): [string, CommandSpec][] {
  return Object.entries(table.commands).filter(([, c]) => !c.hidden);
}

function topHelp(cli: Table): string {
  const cmds = visibleCommands(cli);
  const w = Math.max(...cmds.map(([n]) => n.length));
  return [
    'kubectl kt: run one service on this machine while the rest runs in Kubernetes.',
    '',
    'Usage:',
    '  kubectl kt COMMAND [ARGS] [flags]',
    '',
    'Commands:',
    ...cmds.map(([n, c]) => `  ${n.padEnd(w)}  ${c.summary}`),
    '',
    'Global flags:',
    ...flagLines(cli.globals),
    '',
    'Run `kubectl kt help COMMAND` (or `kubectl kt COMMAND --help`) for its flags and an example.',
    '',
  ].join('\n');
}

function usageLine(name: string, spec: CommandSpec): string {
  const parts = [`kubectl kt ${name}`];
  for (const a of Object.values(spec.args)) parts.push(a.required ? a.placeholder : `[${a.placeholder}]`);
  for (const [k, f] of Object.entries(spec.flags)) if (f.required) parts.push(`${flagName(k)} ${f.placeholder}`);
  parts.push('[flags]');
  if (spec.rest) parts.push(`[-- ${spec.rest.placeholder}]`);
  return parts.join(' ');
}

function commandHelp(cli: Table, name: string, spec: CommandSpec): string {
  const lines = [spec.summary + '.', '', ...wrap(spec.description, WIDTH), '', 'Usage:', `  ${usageLine(name, spec)}`];
  const args = Object.values(spec.args).map((a) => [a.placeholder, a.summary] as const);
  if (spec.rest) args.push([`-- ${spec.rest.placeholder}`, spec.rest.summary]);
  if (args.length) lines.push('', 'Arguments:', ...table(args));
  if (Object.keys(spec.flags).length) lines.push('', 'Flags:', ...flagLines(spec.flags));
  lines.push('', 'Global flags:', ...flagLines(cli.globals));
  lines.push('', `Output (-o): ${spec.outputs.join(', ')} (default ${spec.outputs[0]})`);
  lines.push('', spec.examples.length > 1 ? 'Examples:' : 'Example:');
  for (const e of spec.examples) lines.push(`  # ${e.comment}`, `  ${e.command}`);
  lines.push('');
  return lines.join('\n');
}

function flagLines(flags: FlagMap): string[] {
  return table(Object.entries(flags).map(([k, f]) => [flagLabel(k, f), flagNote(f)] as const));
}

function flagLabel(key: string, f: Flag<unknown>): string {
  const long = f.placeholder ? `${flagName(key)} ${f.placeholder}` : flagName(key);
  return f.short ? `-${f.short}, ${long}` : `    ${long}`;
}

function flagNote(f: Flag<unknown>): string {
  const notes: string[] = [];
  if (f.required) notes.push('required');
  if (f.repeatable) notes.push('repeatable');
  if (f.defaultText !== undefined) notes.push(`default ${f.defaultText}`);
  return notes.length ? `${f.summary} (${notes.join('; ')})` : f.summary;
}

function table(rows: readonly (readonly [string, string])[]): string[] {
  const w = Math.min(36, Math.max(...rows.map(([l]) => l.length)));
  return rows.map(([l, r]) => (l.length > w ? `  ${l}\n  ${' '.repeat(w)}  ${r}` : `  ${l.padEnd(w)}  ${r}`));
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
