// The shapes of the command table (flags, positional arguments, commands),
// the builders cli.ts uses to write it, and the one parser that turns argv
// into a command name plus typed options. Option types are inferred from the
// table, so a command body's options type cannot drift from its flags.
import type { Deps } from './deps.ts';
import { forCommand, isKtError, ktError } from './errors.ts';
import { parseBool, parseChoice } from './values.ts';

export type OutputFormat = 'text' | 'json' | 'yaml';

/** A value parser: raw string and the flag/argument name for the message. */
export type Parse<T> = (raw: string, what: string) => T;

export interface Flag<T> {
  /** Booleans never take the next word as their value. */
  readonly kind: 'bool' | 'value';
  readonly short?: string;
  readonly summary: string;
  /** What the value looks like in help (PORT, LOCAL[:REMOTE]). */
  readonly placeholder: string;
  /** Closed set of values, for help and completion. */
  readonly choices?: readonly string[];
  readonly default: T;
  /** Default as help shows it, when it is worth showing. */
  readonly defaultText?: string;
  readonly repeatable: boolean;
  readonly required: boolean;
  /** Folds one occurrence into the value so far (method syntax: the table stores Flag<unknown>). */
  fold(raw: string, prev: T, what: string): T;
}

export interface Positional<T> {
  readonly placeholder: string;
  readonly summary: string;
  readonly required: boolean;
  readonly choices?: readonly string[];
  parse(raw: string, what: string): T;
}

export type FlagMap = Readonly<Record<string, Flag<unknown>>>;
export type ArgMap = Readonly<Record<string, Positional<unknown>>>;

type FlagValues<F extends FlagMap> = { readonly [K in keyof F]: F[K] extends Flag<infer T> ? T : never };
type ArgValues<A extends ArgMap> = {
  readonly [K in keyof A]: A[K] extends Positional<infer T> ? (A[K]['required'] extends true ? T : T | undefined) : never;
};

/** The flags every command accepts (kubectl's global flags, plus -o). */
export interface GlobalOptions {
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
  readonly namespace: string | undefined;
  readonly image: string;
  readonly debug: boolean;
  readonly output: OutputFormat;
  readonly help: boolean;
}

export type Options<F extends FlagMap, A extends ArgMap> = FlagValues<F> & ArgValues<A> & GlobalOptions & {
  /** The words after `--` (only commands with `rest` accept any). */
  readonly rest: readonly string[];
};

/** What a command file exports. */
export interface CommandModule<O> {
  /** Does the work and returns data; never prints results itself. */
  run(opts: O, deps: Deps): Promise<unknown>;
  /** The text (-o text) form of run's result; without it, text output is YAML. */
  text?(data: unknown, opts: O): string;
  /** The exit status for a result (e.g. `connect -- CMD` exits with CMD's); default 0. */
  exitCode?(data: unknown): number;
}

export interface Example {
  readonly command: string;
  readonly comment: string;
}

export interface CommandSpec<F extends FlagMap = FlagMap, A extends ArgMap = ArgMap> {
  readonly summary: string;
  /** A paragraph for `kubectl kt help CMD`. */
  readonly description: string;
  readonly flags: F;
  readonly args: A;
  readonly rest?: { readonly placeholder: string; readonly summary: string };
  /** Which -o values make sense; the first is the default. */
  readonly outputs: readonly OutputFormat[];
  readonly examples: readonly Example[];
  /** Left out of help and completion. */
  readonly hidden?: boolean;
  /** Every word after the command goes to `rest` unparsed (for `__complete`, which sees half-typed lines). */
  readonly passthrough?: boolean;
}

/** Identity, for inference: `command({...})` keeps the exact flag and argument types. */
export function command<F extends FlagMap, A extends ArgMap>(spec: CommandSpec<F, A>): CommandSpec<F, A> {
  return spec;
}

// ---- builders -----------------------------------------------------------------

interface FlagOpts {
  readonly short?: string;
  readonly required?: boolean;
}

export function bool(summary: string, opts: FlagOpts = {}): Flag<boolean> {
  return {
    kind: 'bool', summary, placeholder: '', default: false, repeatable: false, required: false, short: opts.short,
    fold: (raw, _prev, what) => parseBool(raw, what),
  };
}

/** A single value; the last occurrence wins, as in kubectl. */
export function value<T>(
  summary: string,
  placeholder: string,
  parse: Parse<T>,
  opts: FlagOpts & { default: T; defaultText?: string; choices?: readonly string[] },
): Flag<T> {
  return {
    kind: 'value', summary, placeholder, repeatable: false, required: opts.required ?? false,
    short: opts.short, default: opts.default, defaultText: opts.defaultText, choices: opts.choices,
    fold: (raw, _prev, what) => parse(raw, what),
  };
}

/** An optional value with no default. */
export function optional<T>(summary: string, placeholder: string, parse: Parse<T>, opts: FlagOpts = {}): Flag<T | undefined> {
  return value<T | undefined>(summary, placeholder, parse, { ...opts, default: undefined });
}

export function choice<const T extends string>(summary: string, choices: readonly T[], opts: FlagOpts & { default: T }): Flag<T> {
  return value(summary, choices.join('|'), parseChoice(choices), { ...opts, defaultText: opts.default, choices });
}

/** Repeatable; each occurrence parses to a list that is appended. */
export function list<T>(summary: string, placeholder: string, parse: Parse<T[]>, opts: FlagOpts = {}): Flag<T[]> {
  return {
    kind: 'value', summary, placeholder, default: [], repeatable: true, required: opts.required ?? false,
    short: opts.short, fold: (raw, prev, what) => [...prev, ...parse(raw, what)],
  };
}

export function arg<T>(placeholder: string, summary: string, parse: Parse<T>, choices?: readonly string[]): Positional<T> & { required: true } {
  return { placeholder, summary, required: true, parse, choices };
}

export function optionalArg<T>(placeholder: string, summary: string, parse: Parse<T>, choices?: readonly string[]): Positional<T> & { required: false } {
  return { placeholder, summary, required: false, parse, choices };
}

/** `socksPort` → `--socks-port`: option keys are camelCase, flags kebab-case. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

// ---- suggestions --------------------------------------------------------------

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** The candidate a typo most likely meant: a unique prefix, else the nearest within 2 edits. */
/**
 * Flags named otherwise than a user might expect, and why: a Node single
 * executable (and `node script`) takes `--env-file` anywhere on its command
 * line as Node's own option (nodejs/node#54232), so ours is `--env-out`.
 */
const RENAMED: Readonly<Record<string, string>> = { '--env-file': '--env-out' };

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const renamed = RENAMED[word.split('=')[0]];
  if (renamed !== undefined && candidates.includes(renamed)) return renamed;
  const prefixed = candidates.filter((c) => word.length >= 2 && c.startsWith(word));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Math.min(2, Math.max(1, Math.floor(word.length / 3)));
  for (const c of candidates) {
    const d = distance(word, c);
    if (d <= bestD && (best === undefined || d < bestD)) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

// ---- the parser ---------------------------------------------------------------

export type Loader = () => Promise<CommandModule<Options<FlagMap, ArgMap>>>;

export interface Table {
  readonly globals: FlagMap;
  readonly commands: Readonly<Record<string, CommandSpec>>;
  /** One per command (cli.ts's LOADERS is typed so that none can be missing). */
  readonly loaders: Readonly<Record<string, Loader>>;
}

export interface Parsed {
  readonly name: string;
  readonly spec: CommandSpec;
  readonly options: Options<FlagMap, ArgMap>;
}

export interface Found {
  readonly key: string;
  readonly flag: Flag<unknown>;
  readonly display: string;
}

export function lookup(flags: FlagMap, token: string): Found | undefined {
  for (const [key, flag] of Object.entries(flags)) {
    if (token === flagName(key) || (flag.short && token === `-${flag.short}`)) return { key, flag, display: flagName(key) };
  }
  return undefined;
}

export function allFlagNames(flags: FlagMap): string[] {
  return Object.entries(flags).flatMap(([k, f]) => (f.short ? [flagName(k), `-${f.short}`] : [flagName(k)]));
}

/** Splits `--name=value`, `-nvalue`, `-n=value` into the flag token and its inline value. */
export function splitToken(token: string): { name: string; inline?: string } {
  if (token.startsWith('--')) {
    const eq = token.indexOf('=');
    return eq < 0 ? { name: token } : { name: token.slice(0, eq), inline: token.slice(eq + 1) };
  }
  if (token.length > 2) return { name: token.slice(0, 2), inline: token.slice(token[2] === '=' ? 3 : 2) };
  return { name: token };
}

export const isFlag = (t: string): boolean => t.length > 1 && t.startsWith('-');

/**
 * argv (without node and script) → the command and its typed options.
 * `CMD --help` and `--help` become the `help` command. Global flags may stand
 * before or after the command; the command's own flags only after it.
 */
export function parseArgv(argv: readonly string[], table: Table): Parsed {
  // Find the command: the first word that is not a global flag or its value.
  let i = 0;
  for (; i < argv.length; i++) {
    const t = argv[i];
    if (t === '--' || !isFlag(t)) break;
    const { name, inline } = splitToken(t);
    const found = lookup(table.globals, name);
    if (!found) {
      // A command's own flag before the command is refused too: it would be
      // ambiguous which command it belongs to.
      throw ktError('KT_ERR_UNKNOWN_FLAG', { flag: name, suggestion: suggest(name, allFlagNames(table.globals)) });
    }
    if (found.flag.kind === 'value' && inline === undefined) i++;
  }
  const word = i < argv.length && argv[i] !== '--' ? argv[i] : undefined;
  const names = Object.keys(table.commands).filter((n) => !table.commands[n].hidden);
  if (word !== undefined && !Object.hasOwn(table.commands, word)) {
    throw ktError('KT_ERR_UNKNOWN_COMMAND', { name: word, suggestion: suggest(word, names) });
  }
  const rest = [...argv.slice(0, i), ...argv.slice(i + 1)];
  const name = word ?? 'help';
  let parsed: Parsed;
  try {
    parsed = parseCommand(name, table.commands[name], rest, table.globals);
  } catch (e) {
    throw isKtError(e) && word !== undefined ? forCommand(e, word) : e;
  }
  if (!parsed.options.help) return parsed;
  // `CMD --help` is `help CMD`.
  const spec = table.commands.help;
  return { name: 'help', spec, options: { ...parsed.options, output: spec.outputs[0], command: word, rest: [] } };
}

function parseCommand(name: string, spec: CommandSpec, argv: readonly string[], globals: FlagMap): Parsed {
  const flags: FlagMap = { ...globals, ...spec.flags };
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const [k, f] of Object.entries(flags)) values[k] = f.default;
  // The values are built key by key from the same table the options type is derived from.
  const done = (more: Record<string, unknown>): Parsed => ({ name, spec, options: { ...values, ...more } as unknown as Options<FlagMap, ArgMap> });
  const positionals: string[] = [];
  let rest: string[] = [];
  if (spec.passthrough) return done({ output: spec.outputs[0], rest: [...argv] });
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    if (t === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    if (!isFlag(t)) {
      positionals.push(t);
      continue;
    }
    const { name: fname, inline } = splitToken(t);
    const found = lookup(flags, fname);
    if (!found) {
      throw ktError('KT_ERR_UNKNOWN_FLAG', { flag: fname, command: name, suggestion: suggest(fname, allFlagNames(flags)) });
    }
    let raw = inline;
    if (found.flag.kind === 'bool') raw ??= 'true';
    else if (raw === undefined) {
      if (i + 1 >= argv.length || argv[i + 1] === '--') {
        throw ktError('KT_ERR_MISSING_FLAG_VALUE', { flag: found.display, placeholder: found.flag.placeholder });
      }
      raw = argv[++i];
    }
    values[found.key] = found.flag.fold(raw, values[found.key], found.display);
    given.add(found.key);
  }
  // --help wins over every other check, so a half-typed command still gets its help.
  if (values.help === true) return done({ rest });

  const argEntries = Object.entries(spec.args);
  argEntries.forEach(([key, a], idx) => {
    const raw = positionals[idx];
    if (raw === undefined) {
      if (a.required) throw ktError('KT_ERR_MISSING_ARGUMENT', { command: name, argument: a.placeholder });
      values[key] = undefined;
      return;
    }
    values[key] = a.parse(raw, key);
  });
  if (positionals.length > argEntries.length) {
    throw ktError('KT_ERR_TOO_MANY_ARGUMENTS', { command: name, extra: positionals[argEntries.length] });
  }
  if (rest.length && !spec.rest) throw ktError('KT_ERR_TOO_MANY_ARGUMENTS', { command: name, extra: rest[0] });
  for (const [k, f] of Object.entries(spec.flags)) {
    if (f.required && !given.has(k)) throw ktError('KT_ERR_MISSING_FLAG', { flag: `${flagName(k)} ${f.placeholder}`, command: name });
  }
  if (given.has('output') && !spec.outputs.includes(values.output as OutputFormat)) {
    throw ktError('KT_ERR_BAD_VALUE', {
      what: '--output', value: String(values.output), reason: `"${name}" prints ${spec.outputs.join(' or ')}`,
    });
  }
  if (!given.has('output')) values.output = spec.outputs[0];
  return done({ rest });
}
