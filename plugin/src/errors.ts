// Every error the plugin shows a user has a stable code, a message built from
// the facts at hand, and one sentence saying what to do next (the registry
// shape follows undici lib/core/errors.js and fastify lib/errors.js).
// Callers and tests match on `code`, never on message text.

import { MIN_NODE } from './runtime.ts';

/** Exit status of a usage error (bad command line), as getopt tools do. */
export const EXIT_USAGE = 2;
/** Exit status of every other failure. */
export const EXIT_FAILURE = 1;

interface ErrorSpec<P> {
  /** What the code means, for the README table. */
  readonly meaning: string;
  /** The next step, shown after the message and in the README table. */
  readonly fix: string;
  readonly exit: typeof EXIT_USAGE | typeof EXIT_FAILURE;
  readonly message: (p: P) => string;
}

function usage<P>(meaning: string, fix: string, message: (p: P) => string): ErrorSpec<P> {
  return { meaning, fix, exit: EXIT_USAGE, message };
}
function failure<P>(meaning: string, fix: string, message: (p: P) => string): ErrorSpec<P> {
  return { meaning, fix, exit: EXIT_FAILURE, message };
}

const didYouMean = (s: string | undefined): string => (s ? `; did you mean "${s}"?` : '');

/** What an API call was doing, so a failure can name it. */
export interface ApiCall {
  /** Kubernetes verb: get, list, watch, create, update, patch, delete. */
  readonly verb: string;
  /** Plural resource, with subresource if any: services, deployments/scale, pods/portforward. */
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
}

function callText(c: ApiCall): string {
  const what = c.name ? `${c.resource} "${c.name}"` : c.resource;
  return c.namespace ? `${c.verb} ${what} in namespace ${c.namespace}` : `${c.verb} ${what}`;
}

export const ERRORS = {
  // Usage: the command line is wrong; exit 2.
  KT_ERR_UNKNOWN_COMMAND: usage<{ name: string; suggestion?: string }>(
    'The command is not one kubectl kt knows.',
    'run `kubectl kt --help` for the list of commands',
    (p) => `unknown command "${p.name}"${didYouMean(p.suggestion)}`,
  ),
  KT_ERR_UNKNOWN_FLAG: usage<{ flag: string; command?: string; suggestion?: string }>(
    'The flag is not accepted by this command.',
    'run `kubectl kt CMD --help` to see the flags',
    (p) => `unknown flag ${p.flag}${p.command ? ` for "${p.command}"` : ''}${didYouMean(p.suggestion)}`,
  ),
  KT_ERR_MISSING_FLAG_VALUE: usage<{ flag: string; placeholder: string }>(
    'A flag that takes a value was given none.',
    'give the value after the flag (`--flag value` or `--flag=value`)',
    (p) => `flag ${p.flag} needs a value (${p.placeholder})`,
  ),
  KT_ERR_MISSING_FLAG: usage<{ flag: string; command: string }>(
    'A flag the command cannot work without is missing.',
    'run `kubectl kt CMD --help` for an example',
    (p) => `"${p.command}" needs ${p.flag}`,
  ),
  KT_ERR_BAD_VALUE: usage<{ what: string; value: string; reason: string }>(
    'A flag or argument value has the wrong form or is out of range.',
    'run `kubectl kt CMD --help` for the accepted forms',
    (p) => `invalid ${p.what} ${JSON.stringify(p.value)}: ${p.reason}`,
  ),
  KT_ERR_MISSING_ARGUMENT: usage<{ command: string; argument: string }>(
    'A required argument is missing.',
    'run `kubectl kt CMD --help` for an example',
    (p) => `"${p.command}" needs ${p.argument}`,
  ),
  KT_ERR_TOO_MANY_ARGUMENTS: usage<{ command: string; extra: string }>(
    'More arguments were given than the command takes.',
    'remove the extra argument, or put a command to run after `--`',
    (p) => `"${p.command}" does not take the argument ${JSON.stringify(p.extra)}`,
  ),

  // Kubeconfig: nothing reached the API server yet.
  KT_ERR_KUBECONFIG_NOT_FOUND: failure<{ paths: readonly string[] }>(
    'No kubeconfig file was found.',
    'set KUBECONFIG or pass --kubeconfig FILE (the same file kubectl uses)',
    (p) => `no kubeconfig file found (looked at ${p.paths.join(', ')})`,
  ),
  KT_ERR_KUBECONFIG_INVALID: failure<{ path: string; reason: string }>(
    'A kubeconfig file cannot be read or parsed.',
    'fix the file; `kubectl config view` shows what kubectl makes of it',
    (p) => `kubeconfig ${p.path} is not valid: ${p.reason}`,
  ),
  KT_ERR_KUBECONFIG_NO_CONTEXT: failure<{ paths: readonly string[] }>(
    'The kubeconfig names no current context and --context was not given.',
    'pick one with `kubectl config use-context NAME` or pass --context NAME',
    (p) => `no current context set in ${p.paths.join(', ')}`,
  ),
  KT_ERR_KUBECONFIG_BAD_CONTEXT: failure<{ context: string; known: readonly string[] }>(
    'The context is not defined in the kubeconfig.',
    'list the contexts with `kubectl config get-contexts`',
    (p) => `context "${p.context}" not found in kubeconfig (known: ${p.known.length ? p.known.join(', ') : 'none'})`,
  ),
  KT_ERR_KUBECONFIG_NO_SERVER: failure<{ context: string; cluster: string }>(
    'The context points at a cluster entry that is missing or has no server URL.',
    'add the cluster with `kubectl config set-cluster NAME --server URL`',
    (p) => `context "${p.context}" uses cluster "${p.cluster}", which is missing or has no server`,
  ),
  KT_ERR_KUBECONFIG_NO_USER: failure<{ context: string; user: string }>(
    'The context points at a user entry that is missing.',
    'add the user with `kubectl config set-credentials NAME ...`',
    (p) => `context "${p.context}" uses user "${p.user}", which is not in the kubeconfig`,
  ),

  // API: the API server answered with an error, or could not be reached.
  KT_ERR_API_UNAUTHORIZED: failure<ApiCall>(
    'The API server did not accept the credentials (HTTP 401).',
    'log in again (your token or certificate may have expired); check with `kubectl auth whoami`',
    (p) => `cannot ${callText(p)}: unauthorized`,
  ),
  KT_ERR_API_FORBIDDEN: failure<ApiCall>(
    'RBAC does not allow the call (HTTP 403).',
    'see `kubectl kt rbac` for the Role this plugin needs',
    (p) => `cannot ${callText(p)}: forbidden`,
  ),
  KT_ERR_API_NOT_FOUND: failure<ApiCall>(
    'The object or the namespace does not exist (HTTP 404).',
    'check the name and the namespace (-n); `kubectl get` lists what exists',
    (p) => `cannot ${callText(p)}: not found`,
  ),
  KT_ERR_API_CONFLICT: failure<ApiCall>(
    'The object already exists or changed meanwhile (HTTP 409).',
    'run the command again; if the object is left from a dead session, run `kubectl kt clean`',
    (p) => `cannot ${callText(p)}: conflict`,
  ),
  KT_ERR_API_UNREACHABLE: failure<ApiCall & { server?: string; reason: string }>(
    'The API server cannot be reached.',
    'check the cluster address in the kubeconfig and your network (`kubectl cluster-info`)',
    (p) => `cannot ${callText(p)}: API server${p.server ? ` ${p.server}` : ''} unreachable (${p.reason})`,
  ),
  KT_ERR_API_FAILED: failure<ApiCall & { status: number; reason: string }>(
    'The API server answered with an error other than 401/403/404/409.',
    'run again with --debug to see the API response',
    (p) => `cannot ${callText(p)}: HTTP ${p.status}${p.reason ? ` ${p.reason}` : ''}`,
  ),

  // Everything else.
  KT_ERR_PORT_IN_USE: failure<{ port: number; host?: string }>(
    'A local port the command needs to listen on is taken.',
    'pick another port with the flag, or stop what listens there (`ss -ltnp`)',
    (p) => `local port ${p.host ? `${p.host}:` : ''}${p.port} is already in use`,
  ),
  KT_ERR_NO_SUCH_WORKLOAD: failure<{ kind: string; name: string; namespace: string }>(
    'The Service or Deployment to work on does not exist.',
    'check the name and the namespace (-n); `kubectl get deploy,svc` lists what exists',
    (p) => `no ${p.kind} "${p.name}" in namespace ${p.namespace}`,
  ),
  KT_ERR_NEEDS_ROOT: failure<{ what: string }>(
    'The mode changes the network of this machine and needs root.',
    'run it with sudo, or use `connect --mode socks`, which needs no root',
    (p) => `${p.what} needs root`,
  ),
  KT_ERR_TIMEOUT: failure<{ what: string; seconds: number }>(
    'Something the command waited for did not happen in time.',
    'check the cluster with `kubectl get pods -l app.kubernetes.io/managed-by=kubectl-kt` and `kubectl describe`',
    (p) => `timed out after ${p.seconds}s waiting for ${p.what}`,
  ),
  KT_ERR_INTERRUPTED: failure<{ what: string }>(
    'The command was stopped (Ctrl-C or SIGTERM) while it waited.',
    'nothing to do; run the command again when you want it',
    (p) => `interrupted while waiting for ${p.what}`,
  ),
  KT_ERR_PROXY_FAILED: failure<{ pod: string; namespace: string; reason: string }>(
    'The proxy pod did not start: image pull failure, crash, or deleted.',
    'check the image (--image) and `kubectl describe pod` / `kubectl logs` for the pod; `kubectl kt clean` removes leftovers',
    (p) => `proxy pod ${p.namespace}/${p.pod} did not start: ${p.reason}`,
  ),
  KT_ERR_TUNNEL_FAILED: failure<{ pod: string; namespace: string; reason: string }>(
    'The SSH tunnel over pods/portforward to the proxy pod could not be opened, or was closing when a route was asked for on it.',
    'check that you may create pods/portforward (`kubectl kt rbac`) and that `kubectl port-forward` works in this namespace',
    (p) => `cannot open the tunnel to ${p.namespace}/${p.pod}: ${p.reason}`,
  ),
  KT_ERR_PROTOCOL_MISMATCH: failure<{ proxy: string; proxyProtocol: number; protocol: number }>(
    'The proxy image speaks another protocol version than this plugin.',
    'use the image this plugin version publishes (drop --image), or upgrade the plugin',
    (p) => `proxy ${p.proxy} speaks protocol ${p.proxyProtocol}, this plugin speaks ${p.protocol}`,
  ),
  KT_ERR_COMMAND_FAILED: failure<{ command: string; reason: string }>(
    'The command given after `--` could not be started.',
    'check the command name and PATH',
    (p) => `cannot run ${p.command}: ${p.reason}`,
  ),
  KT_ERR_NOT_TAKEN_OVER: failure<{ namespace: string; name: string }>(
    'recover was asked for a Service that exchange or mesh never took over.',
    'nothing to restore; `kubectl kt status` lists the Services that are taken over',
    (p) => `service ${p.namespace}/${p.name} is not taken over by kubectl-kt`,
  ),
  KT_ERR_BAD_STATE: failure<{ what: string; value: string }>(
    'An annotation kubectl-kt wrote was changed into something it cannot read.',
    'fix or remove the annotation by hand (`kubectl edit`), then run the command again',
    (p) => `cannot read ${p.what}: ${JSON.stringify(p.value).slice(0, 80)}`,
  ),
  KT_ERR_NO_SERVICE_FOR_WORKLOAD: failure<{ name: string; namespace: string }>(
    'exchange or mesh was given a Deployment that no Service selects, so there is no traffic to take over.',
    'name the Service instead (svc/NAME), or create one for the Deployment; `kubectl get svc -o wide` shows the selectors',
    (p) => `no service in namespace ${p.namespace} selects the pods of deployment "${p.name}"`,
  ),
  KT_ERR_NO_SUCH_PORT: failure<{ service: string; port: number; ports: readonly (number | string)[] }>(
    "The REMOTE port of --expose is neither a port of the Service nor the pods' port (targetPort) of one.",
    'use one of the Service ports as REMOTE (`--expose LOCAL:REMOTE`); `kubectl get svc NAME` lists them',
    (p) => `service ${p.service} has no port ${p.port} (its ports: ${p.ports.join(', ') || 'none'})`,
  ),
  KT_ERR_AMBIGUOUS_PORT: failure<{ service: string; port: number; servicePorts: readonly number[] }>(
    "The REMOTE port of --expose is the pods' port (targetPort) of more than one Service port, so it does not say which to take.",
    'name the Service port as REMOTE (`--expose LOCAL:SERVICEPORT`)',
    (p) => `port ${p.port} is the pods' port of service ${p.service} ports ${p.servicePorts.join(' and ')}; which one is meant?`,
  ),
  KT_ERR_UNRESOLVED_PORT: failure<{ service: string; port: number; targetPort: string; sharedWith?: number }>(
    "A Service port's targetPort cannot be served by the router: a named port no pod declares, or two Service ports on one pod port.",
    'give the Service port a numeric targetPort, or make sure a pod of the Service runs and declares the named port',
    (p) => (p.sharedWith === undefined
      ? `service ${p.service} port ${p.port}: no running pod declares the named targetPort "${p.targetPort}"`
      : `service ${p.service} ports ${p.sharedWith} and ${p.port} both target pod port ${p.targetPort}; the router cannot tell them apart`),
  ),
  KT_ERR_ROUTE_TAKEN: failure<{ service: string; reason: string }>(
    'Someone else holds that route: an exchange of the Service, or a mesh route with the same header and baggage rules.',
    'ask the holder (`kubectl kt status` shows who), or use mesh with your own --header or --baggage value',
    (p) => `cannot route ${p.service}: ${p.reason}`,
  ),
  KT_ERR_ROUTE_LIMIT: failure<{ service: string; reason: string }>(
    "The Service's router holds as many routes as it takes (1,000 per router, 32 per session, 64 regex-only routes).",
    'end sessions nobody uses (`kubectl kt status` lists them, `kubectl kt clean` removes dead ones), or give regex routes an exact NAME=VALUE condition',
    (p) => `cannot route ${p.service}: ${p.reason}`,
  ),
  KT_ERR_ROUTE_INVALID: failure<{ service: string; reason: string }>(
    'The router cannot run the route as given: a regex with backreferences or lookaround (its linear-time RE2 engine refuses them), a port it does not serve, or a request from a plugin of another protocol version.',
    'rewrite the --header rule in RE2 syntax (no backreferences, no lookaround), or use an exact NAME=VALUE',
    (p) => `cannot route ${p.service}: ${p.reason}`,
  ),
  KT_ERR_ROUTER_GONE: failure<{ namespace: string; service: string; reason: string }>(
    "The Service's router pod went away (or was leaving: it drains before its exit) while the session ran, or each time the session tried to join it; the Service was given back to its own pods.",
    'run the command again to take the Service over with a new router',
    (p) => `the router of service ${p.namespace}/${p.service} is gone (${p.reason}); the service is served by its own pods again`,
  ),
  KT_ERR_NODE_TOO_OLD: failure<{ version: string; execPath: string; min: string }>(
    'The bundle (dist/kubectl-kt, run by a `node` of the machine) was started by a Node older than the one it needs; the single executable carries its own.',
    `use the single executable (\`kubectl krew install kt\`, or the release archive for your platform), or run the bundle with Node >= ${MIN_NODE}`,
    (p) => `kubectl-kt needs Node >= ${p.min}, and ${p.execPath} is Node ${p.version}`,
  ),
  KT_ERR_INTERNAL: failure<{ message: string }>(
    'An unexpected error: a bug in kubectl-kt.',
    'run again with --debug for details, and report it with that output',
    (p) => p.message,
  ),
} as const;

export type ErrorCode = keyof typeof ERRORS;
type ParamsOf<C extends ErrorCode> = Parameters<(typeof ERRORS)[C]['message']>[0];

export class KtError extends Error {
  readonly code: ErrorCode;
  readonly fix: string;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; fix?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KtError';
    this.code = code;
    this.fix = options?.fix ?? ERRORS[code].fix;
    this.exitCode = ERRORS[code].exit;
  }
}

/** The one way to make a KtError: the message comes from the registry. */
export function ktError<C extends ErrorCode>(code: C, params: ParamsOf<C>, cause?: unknown): KtError {
  const message = (ERRORS[code].message as (p: ParamsOf<C>) => string)(params);
  return new KtError(code, message, cause === undefined ? undefined : { cause });
}

export function isKtError(e: unknown): e is KtError {
  return e instanceof KtError;
}

/** The same error, with `kubectl kt CMD` in its fix naming the command the user ran. */
export function forCommand(e: KtError, command: string): KtError {
  if (!e.fix.includes('kubectl kt CMD')) return e;
  const copy = new KtError(e.code, e.message, { cause: e.cause, fix: e.fix.replace('kubectl kt CMD', `kubectl kt ${command}`) });
  copy.stack = e.stack;
  return copy;
}

/** Any thrown value as a KtError: typed errors pass, the rest become KT_ERR_INTERNAL. */
export function toKtError(e: unknown): KtError {
  if (isKtError(e)) return e;
  const message = e instanceof Error ? e.message || e.name : String(e);
  return ktError('KT_ERR_INTERNAL', { message }, e);
}

/** One row per code, in registry order, for the README table and the tests. */
export function errorTable(): { code: ErrorCode; meaning: string; fix: string; exit: number }[] {
  return (Object.keys(ERRORS) as ErrorCode[]).map((code) => ({
    code,
    meaning: ERRORS[code].meaning,
    fix: ERRORS[code].fix,
    exit: ERRORS[code].exit,
  }));
}

// ---- API errors -----------------------------------------------------------

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT',
  'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface Status {
  status?: number;
  reason?: string;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

/** HTTP status and reason of an ApiException (client-node: `code` + `body`), a
 * Kubernetes Status body, or an error carrying `statusCode`. */
function statusOf(err: Record<string, unknown>): Status {
  const body = record(err.body) ?? (typeof err.body === 'string' ? parseJson(err.body) : undefined);
  const reason = body && typeof body.reason === 'string' ? body.reason : '';
  for (const v of [err.code, err.statusCode, err.status, record(err.response)?.statusCode, body?.code]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return { status: v, reason };
  }
  return { reason };
}

/**
 * The HTTP status of a failed API call, the one way the plugin reads it:
 * client-node's ApiException (`code`), a Kubernetes Status body, an error
 * with `statusCode`, or the API error a KtError wraps (its `cause`).
 */
export function apiStatus(err: unknown): number | undefined {
  let cur = err;
  for (let depth = 0; depth < 3; depth++) {
    const e = record(cur);
    if (!e) return undefined;
    const { status } = statusOf(e);
    if (status !== undefined) return status;
    cur = e.cause;
  }
  return undefined;
}

function parseJson(s: string): Record<string, unknown> | undefined {
  try {
    return record(JSON.parse(s));
  } catch {
    return undefined;
  }
}

/** The network error code somewhere in an error's cause chain (fetch wraps it). */
function networkCode(err: Record<string, unknown>): string | undefined {
  let cur: Record<string, unknown> | undefined = err;
  for (let depth = 0; cur && depth < 5; depth++) {
    if (typeof cur.code === 'string' && NETWORK_CODES.has(cur.code)) return cur.code;
    cur = record(cur.cause);
  }
  return undefined;
}

/**
 * Turns whatever an API call threw into one sentence naming the namespace,
 * verb and resource (never the raw exception: it carries the whole response
 * body and headers). Typed errors pass through unchanged.
 */
export function fromApiError(err: unknown, call: ApiCall & { server?: string }): KtError {
  if (isKtError(err)) return err;
  const e = record(err);
  if (!e) return toKtError(err);
  const { status, reason = '' } = statusOf(e);
  const base: ApiCall = { verb: call.verb, resource: call.resource, namespace: call.namespace, name: call.name };
  switch (status) {
    case 401: return ktError('KT_ERR_API_UNAUTHORIZED', base, err);
    case 403: return ktError('KT_ERR_API_FORBIDDEN', base, err);
    case 404: return ktError('KT_ERR_API_NOT_FOUND', base, err);
    case 409: return ktError('KT_ERR_API_CONFLICT', base, err);
    case undefined: break;
    default: return ktError('KT_ERR_API_FAILED', { ...base, status, reason }, err);
  }
  const net = networkCode(e);
  if (net) return ktError('KT_ERR_API_UNREACHABLE', { ...base, server: call.server, reason: net }, err);
  return toKtError(err);
}
