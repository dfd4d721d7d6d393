// The command table, and nothing else: names, summaries, flags with their
// types and defaults, examples, and a lazy loader per built command
// (changesets' packages/cli/src/cli.ts keeps the same split). Command bodies
// live in commands/: building a command is one line in LOADERS and one file.
// Loaders are `import()` so that `kubectl kt version` and `--help` never load
// client-node or ssh2 (test/unit/cli-bundle.test.ts checks the bundle).
import { DEFAULT_IMAGE, DEFAULT_MESH_HEADER } from '../../contract/protocol.ts';
import { arg, bool, choice, command, list, optional, optionalArg, suggest, value, type CommandModule, type Flag, type Options, type Table } from './args.ts';
import { ktError } from './errors.ts';
import {
  parseBaggageMember, parseDnsLabel, parseExpose, parseForwardTarget, parseHeader, parseHeaderToAdd, parseNamespaces, parseNonEmpty, parsePort,
  checkUniqueRemotes, parseChoice, parsePortMapping, parseServiceAccount, parseWorkloadRef, type PortMapping,
} from './values.ts';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export const GLOBAL_FLAGS = {
  kubeconfig: optional('Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)', 'FILE', parseNonEmpty),
  context: optional('The kubeconfig context to use (default: current-context)', 'NAME', parseNonEmpty),
  namespace: optional("Namespace to work in (default: the context's namespace, then default)", 'NAME', parseDnsLabel, { short: 'n' }),
  image: value('The kt-proxy image to run in the cluster', 'IMAGE', parseNonEmpty, { default: DEFAULT_IMAGE, defaultText: DEFAULT_IMAGE }),
  debug: bool('Print debug logs and full stack traces to stderr'),
  // No default shown: each command has its own (the first of its outputs).
  output: value('Output format, where the command offers it', 'text|json|yaml', parseChoice(['text', 'json', 'yaml'] as const), {
    short: 'o', default: 'text', choices: ['text', 'json', 'yaml'],
  }),
  help: bool('Show help for the command', { short: 'h' }),
};

/** `--expose`, repeatable; a remote port may appear once across all occurrences. */
function expose(summary: string, placeholder = 'LOCAL[:REMOTE][,...]'): Flag<PortMapping[]> {
  return {
    ...list(summary, placeholder, parseExpose, { required: true }),
    fold(raw: string, prev: PortMapping[], what: string): PortMapping[] {
      const all = [...prev, ...parseExpose(raw, what)];
      checkUniqueRemotes(all, what, raw);
      return all;
    },
  };
}

const target = arg('deploy/NAME|svc/NAME', 'The Deployment or Service to take over (a bare NAME is a Service)',
  (raw, what) => parseWorkloadRef(raw, what));

export const COMMANDS = {
  connect: command({
    summary: 'Reach pod IPs, Service IPs and cluster DNS names from this machine',
    description: 'Starts a shadow proxy pod and tunnels to it. --mode socks (no root) runs a local SOCKS5 and HTTP proxy; '
      + 'with `-- CMD` it runs CMD with the proxy in its environment. --mode route (root) makes cluster addresses and '
      + 'names reachable for every process on this machine. Everything is undone on exit (Ctrl-C).',
    flags: {
      mode: choice('socks: local proxy, no root; route: system-wide, needs root', ['socks', 'route'], { default: 'socks' }),
      socksPort: value('Local SOCKS5 port (socks mode)', 'PORT', parsePort, { default: 1080, defaultText: '1080' }),
      httpPort: value('Local HTTP proxy port (socks mode)', 'PORT', parsePort, { default: 1081, defaultText: '1081' }),
      namespaces: list('Also resolve short Service names of these namespaces (default: -n only)', 'NS[,NS...]', parseNamespaces),
      allNamespaces: bool('Resolve short Service names of every namespace', { short: 'A' }),
      header: list('Set header NAME to VALUE on every plain-HTTP request through the HTTP proxy (socks mode; HTTPS passes untouched)',
        'NAME=VALUE', (raw, what) => [parseHeaderToAdd(raw, what)]),
      baggage: list('Add member KEY=VALUE to the W3C baggage header of every plain-HTTP request through the HTTP proxy (socks mode; ours win over the same key)',
        'KEY=VALUE', (raw, what) => [parseBaggageMember(raw, what)]),
    },
    args: {},
    rest: { placeholder: 'CMD...', summary: 'Run CMD through the proxy (socks mode) and disconnect when it exits' },
    outputs: ['text', 'json'],
    examples: [
      { command: 'kubectl kt connect -n shop -- curl http://web:8080/', comment: 'run one command with cluster access' },
      { command: 'sudo kubectl kt connect --mode route', comment: 'every local process reaches the cluster until Ctrl-C' },
      { command: 'kubectl kt connect --header x-kt-version=alice -- curl http://web/', comment: 'the request carries x-kt-version: alice (reaches a mesh on that value)' },
    ],
  }),
  exchange: command({
    summary: 'Send all traffic of a Service to a local port',
    description: 'A router takes over the Service: while your tunnel is up, traffic goes to the local port; when it '
      + 'drops, traffic goes back to the original pods. --mode scale also scales the workload to 0 (queue consumers).',
    flags: {
      expose: expose('Local port and the Service port it stands for'),
      mode: choice('selector: route around the pods; scale: also scale the workload to 0', ['selector', 'scale'], { default: 'selector' }),
      // Not --env-file: Node takes that as its own option anywhere on the command line (nodejs/node#54232).
      envOut: optional("Write the workload's environment (env, ConfigMaps, Secrets) to FILE, as KEY=VALUE lines", 'FILE', parseNonEmpty),
    },
    args: { target },
    outputs: ['text', 'json'],
    examples: [{ command: 'kubectl kt exchange svc/web --expose 8080:80 -n shop', comment: 'web:80 in the cluster reaches localhost:8080' }],
  }),
  mesh: command({
    summary: 'Send only requests with your header or baggage value to a local port',
    description: 'Requests that match every --header and --baggage go to this machine; all others go to the original pods. '
      + 'Several developers share one router per Service, each with their own header value. '
      + `Without --header or --baggage, a random value of ${DEFAULT_MESH_HEADER} is chosen and printed.`,
    flags: {
      expose: expose('Local port and the Service port it stands for'),
      header: list('Match NAME=VALUE exactly, or NAME~=REGEX; repeat to require several', 'NAME=VALUE', (raw, what) => [parseHeader(raw, what)]),
      baggage: list('Match a member of the W3C baggage header: KEY whose decoded value is VALUE; combines with --header',
        'KEY=VALUE', (raw, what) => [parseBaggageMember(raw, what)]),
    },
    args: { target },
    outputs: ['text', 'json'],
    examples: [
      { command: 'kubectl kt mesh svc/web --expose 8080:80 --header x-kt-version=alice', comment: 'requests with x-kt-version: alice reach localhost:8080' },
      { command: 'kubectl kt mesh svc/back --expose 8080:80 --baggage kt=alice', comment: 'requests whose baggage has kt=alice reach localhost:8080' },
    ],
  }),
  preview: command({
    summary: 'Publish a local port as a new Service in the cluster',
    description: 'Creates Service NAME backed by this machine while the command runs.',
    flags: { expose: expose('Local port and the Service port', 'LOCAL[:PORT][,...]') },
    args: { name: arg('NAME', 'Name of the Service to create', parseDnsLabel) },
    outputs: ['text', 'json'],
    examples: [{ command: 'kubectl kt preview web-alice --expose 8080:80', comment: 'web-alice:80 in the cluster reaches localhost:8080' }],
  }),
  forward: command({
    summary: 'Make a cluster address reachable on a local port',
    description: 'Like kubectl port-forward, but to any Service or host the cluster reaches, and it reconnects.',
    flags: {},
    args: {
      target: arg('svc/NAME|HOST', 'A Service, or a host name or IP as seen from the cluster', parseForwardTarget),
      ports: arg('LOCAL:REMOTE', 'Local port and remote port (one PORT for both)', parsePortMapping),
    },
    outputs: ['text', 'json'],
    examples: [{ command: 'kubectl kt forward svc/postgres 5432:5432 -n shop', comment: 'postgres on localhost:5432' }],
  }),
  status: command({
    summary: 'Show who connects, exchanges, meshes and previews what, since when',
    description: 'Lists the sessions and objects kubectl-kt created in the namespace (or in all, with -A).',
    flags: { allNamespaces: bool('List sessions in every namespace', { short: 'A' }) },
    args: {},
    outputs: ['text', 'json', 'yaml'],
    examples: [{ command: 'kubectl kt status -A -o json', comment: 'every session, as JSON' }],
  }),
  clean: command({
    summary: 'Remove what dead sessions left behind',
    description: 'Deletes proxy pods, routers and previews whose session stopped renewing its heartbeat, and puts '
      + 'their Services back. --local undoes local changes (routes, DNS) a crashed `connect --mode route` left.',
    flags: {
      dryRun: bool('Only print what would be removed'),
      local: bool('Also undo local network changes left by a crash (needs root)'),
    },
    args: {},
    outputs: ['text', 'json'],
    examples: [{ command: 'kubectl kt clean --dry-run -n shop', comment: 'see what would be removed' }],
  }),
  recover: command({
    summary: 'Put a Service back as it was before exchange or mesh',
    description: 'Restores the original selector (and replicas, after --mode scale) and removes the router.',
    flags: {},
    args: { service: arg('svc/NAME', 'The Service to restore', (raw, what) => parseWorkloadRef(raw, what, ['service']).name) },
    outputs: ['text', 'json'],
    examples: [{ command: 'kubectl kt recover svc/web -n shop', comment: 'web is served by its own pods again' }],
  }),
  dashboard: command({
    summary: 'Open a local web page with the live status',
    description: 'Serves the status of the namespace on 127.0.0.1 and opens it in the browser.',
    flags: {
      port: optional('Local port (default: a free one)', 'PORT', parsePort),
      noOpen: bool('Do not open a browser, only print the URL'),
      allNamespaces: bool('Show every namespace', { short: 'A' }),
    },
    args: {},
    outputs: ['text'],
    examples: [{ command: 'kubectl kt dashboard --port 8900 --no-open', comment: 'serve on http://127.0.0.1:8900/' }],
  }),
  rbac: command({
    summary: 'Print the Role and RoleBinding kubectl-kt needs in a namespace',
    description: 'Prints a namespaced Role with exactly the rights every command needs (no cluster-wide rights), '
      + 'and a RoleBinding for the subjects given. Apply it with `kubectl apply -f -`.',
    flags: {
      user: list('Bind the Role to this user (repeatable)', 'NAME', (raw, what) => [parseNonEmpty(raw, what)]),
      group: list('Bind the Role to this group (repeatable)', 'NAME', (raw, what) => [parseNonEmpty(raw, what)]),
      serviceaccount: list('Bind the Role to this ServiceAccount (repeatable)', '[NS:]NAME', (raw, what) => [parseServiceAccount(raw, what)]),
    },
    args: {},
    outputs: ['yaml', 'json'],
    examples: [{ command: 'kubectl kt rbac -n shop --user alice | kubectl apply -f -', comment: 'let alice use kubectl kt in shop' }],
  }),
  version: command({
    summary: 'Print the plugin, proxy image, protocol and Node.js versions',
    description: 'Reads nothing from the cluster.',
    flags: {},
    args: {},
    outputs: ['text', 'json', 'yaml'],
    examples: [{ command: 'kubectl kt version -o json', comment: 'as JSON' }],
  }),
  completion: command({
    summary: 'Print a shell completion script',
    description: 'Completes commands, flags and flag values for kubectl-kt (and `kubectl kt` where kubectl '
      + 'supports plugin completion).',
    flags: {},
    args: { shell: arg('bash|zsh|fish', 'The shell', parseChoice(SHELLS), SHELLS) },
    outputs: ['text'],
    examples: [{ command: 'source <(kubectl kt completion bash)', comment: 'completion in the current bash' }],
  }),
  help: command({
    summary: 'Show help for a command',
    description: 'Same as `kubectl kt CMD --help`.',
    flags: {},
    args: { command: optionalArg('COMMAND', 'The command', (raw, what): string => parseCommandName(raw, what)) },
    outputs: ['text'],
    examples: [{ command: 'kubectl kt help exchange', comment: 'flags and an example for exchange' }],
  }),
  __complete: command({
    summary: 'Completion candidates for a partial command line (used by kubectl_complete-kt)',
    description: 'Prints cobra-style candidates: one per line, then :DIRECTIVE.',
    flags: {},
    args: {},
    outputs: ['text'],
    examples: [{ command: 'kubectl kt __complete exchange --mode ""', comment: 'what may follow --mode' }],
    hidden: true,
    passthrough: true,
  }),
};

export type CommandName = keyof typeof COMMANDS;


/** The typed options of one command, for its file in commands/. */
export type OptionsOf<N extends CommandName> = Options<(typeof COMMANDS)[N]['flags'], (typeof COMMANDS)[N]['args']>;

/**
 * The built commands. Kept apart from COMMANDS because a command file's types
 * refer to COMMANDS (OptionsOf), which TypeScript cannot resolve from inside
 * COMMANDS' own initializer. The mapped type makes a missing loader a type
 * error.
 */
export const LOADERS: { readonly [N in CommandName]: () => Promise<CommandModule<OptionsOf<N>>> } = {
  connect: () => import('./commands/connect.ts'),
  exchange: () => import('./commands/exchange.ts'),
  mesh: () => import('./commands/mesh.ts'),
  status: () => import('./commands/status.ts'),
  forward: () => import('./commands/forward.ts'),
  preview: () => import('./commands/preview.ts'),
  dashboard: () => import('./commands/dashboard.ts'),
  clean: () => import('./commands/clean.ts'),
  recover: () => import('./commands/recover.ts'),
  rbac: () => import('./commands/rbac.ts'),
  version: () => import('./commands/version.ts'),
  completion: () => import('./commands/completion.ts'),
  help: () => import('./commands/help.ts'),
  __complete: () => import('./commands/complete.ts'),
};

// Each loader's module takes its own command's options, and the parser builds
// them from that same entry; this widening is where the two meet.
export const TABLE: Table = { globals: GLOBAL_FLAGS, commands: COMMANDS, loaders: LOADERS as unknown as Table['loaders'] };

function parseCommandName(raw: string, _what: string): string {
  // COMMANDS is read when `help X` is parsed, long after this module ran.
  if (Object.hasOwn(COMMANDS, raw)) return raw;
  throw ktError('KT_ERR_UNKNOWN_COMMAND', { name: raw, suggestion: suggest(raw, Object.keys(COMMANDS)) });
}
