// Kubeconfig loading and merging, as kubectl does it, without client-node:
// `kubectl kt version` and `--help` must not pay for loading it. The
// client-node KubeConfig is built only when a command talks to the API
// (clientConfig below, through kube/api.ts, loads it lazily).
//
// Merge rules (k8s.io/client-go/tools/clientcmd, "loading rules"): KUBECONFIG
// is a list of files separated by the OS path delimiter; files that do not
// exist are skipped; for clusters, users and contexts the first file that
// defines a name wins; current-context comes from the first file that sets
// it. --kubeconfig names exactly one file, which must exist. Relative file
// paths inside a file are relative to that file's directory.
import type { KubeConfig } from '@kubernetes/client-node';
import { load as parseYaml } from 'js-yaml';
import { readFile } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { ktError } from '../errors.ts';
import { loadClient } from './api.ts';
import { shareDispatchers } from './dispatcher.ts';

type Raw = Record<string, unknown>;

export interface ClusterEntry {
  readonly name: string;
  /** The `cluster:` map, with relative file paths made absolute. */
  readonly cluster: Raw;
  readonly file: string;
}
export interface UserEntry {
  readonly name: string;
  /** The `user:` map, with relative file paths made absolute. */
  readonly user: Raw;
  readonly file: string;
}
export interface ContextEntry {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
  readonly file: string;
}

export interface Kubeconfig {
  /** The files that were read, in merge order. */
  readonly files: readonly string[];
  readonly currentContext?: string;
  readonly clusters: ReadonlyMap<string, ClusterEntry>;
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly contexts: ReadonlyMap<string, ContextEntry>;
}

/** The context a command works in, fully resolved. */
export interface KubeTarget {
  readonly context: string;
  readonly cluster: ClusterEntry;
  readonly server: string;
  readonly user?: UserEntry;
  /** -n, else the context's namespace, else "default". */
  readonly namespace: string;
}

export interface KubeconfigSource {
  /** --kubeconfig */
  readonly kubeconfig?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The files to read, in merge order. */
export function kubeconfigPaths(src: KubeconfigSource): string[] {
  if (src.kubeconfig) return [src.kubeconfig];
  const list = src.env.KUBECONFIG;
  if (list) {
    const paths = [...new Set(list.split(delimiter).filter((p) => p !== ''))];
    if (paths.length) return paths;
  }
  const home = src.env.HOME ?? src.env.USERPROFILE;
  return [join(home ?? '', '.kube', 'config')];
}

// A missing file is skipped; with --kubeconfig it is the only file, so the
// load still fails (KT_ERR_KUBECONFIG_NOT_FOUND), as kubectl's does.
async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: (e as Error).message }, e);
  }
}

export async function loadKubeconfig(src: KubeconfigSource): Promise<Kubeconfig> {
  const paths = kubeconfigPaths(src);
  const clusters = new Map<string, ClusterEntry>();
  const users = new Map<string, UserEntry>();
  const contexts = new Map<string, ContextEntry>();
  const files: string[] = [];
  let currentContext: string | undefined;
  for (const path of paths) {
    const text = await readIfExists(path);
    if (text === undefined) continue;
    files.push(path);
    const doc = parseFile(path, text);
    currentContext ||= str(doc['current-context']);
    const dir = dirname(path);
    for (const { name, body } of namedList(path, doc, 'clusters', 'cluster')) {
      if (!clusters.has(name)) clusters.set(name, { name, cluster: absolutize(body, dir, CLUSTER_PATHS), file: path });
    }
    for (const { name, body } of namedList(path, doc, 'users', 'user')) {
      if (!users.has(name)) users.set(name, { name, user: absolutizeUser(body, dir), file: path });
    }
    for (const { name, body } of namedList(path, doc, 'contexts', 'context')) {
      if (contexts.has(name)) continue;
      const cluster = str(body.cluster);
      if (!cluster) throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: `context "${name}" names no cluster` });
      contexts.set(name, { name, cluster, user: str(body.user), namespace: str(body.namespace), file: path });
    }
  }
  if (!files.length) throw ktError('KT_ERR_KUBECONFIG_NOT_FOUND', { paths });
  return { files, currentContext, clusters, users, contexts };
}

/** Picks the context (--context, else current-context) and checks what it points at. */
export function resolveTarget(kc: Kubeconfig, opts: { context?: string; namespace?: string }): KubeTarget {
  const name = opts.context || kc.currentContext;
  if (!name) throw ktError('KT_ERR_KUBECONFIG_NO_CONTEXT', { paths: kc.files });
  const ctx = kc.contexts.get(name);
  if (!ctx) throw ktError('KT_ERR_KUBECONFIG_BAD_CONTEXT', { context: name, known: [...kc.contexts.keys()] });
  const cluster = kc.clusters.get(ctx.cluster);
  const server = cluster && str(cluster.cluster.server);
  if (!cluster || !server) throw ktError('KT_ERR_KUBECONFIG_NO_SERVER', { context: name, cluster: ctx.cluster });
  let user: UserEntry | undefined;
  if (ctx.user) {
    user = kc.users.get(ctx.user);
    if (!user) throw ktError('KT_ERR_KUBECONFIG_NO_USER', { context: name, user: ctx.user });
  }
  return { context: name, cluster, server, user, namespace: opts.namespace || ctx.namespace || 'default' };
}

/** A client-node KubeConfig holding just the target's context; loads client-node on first use. */
export async function clientConfig(target: KubeTarget): Promise<KubeConfig> {
  const { KubeConfig } = await loadClient();
  const kc = new KubeConfig();
  // client-node's own parser maps the kubeconfig field names (token-file,
  // exec, auth-provider, ...), so hand it a minified kubeconfig document.
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': target.context,
    clusters: [{ name: target.cluster.name, cluster: plainHttpAllowed(target.cluster.cluster) }],
    users: target.user ? [{ name: target.user.name, user: target.user.user }] : [],
    contexts: [{
      name: target.context,
      context: { cluster: target.cluster.name, user: target.user?.name, namespace: target.namespace },
    }],
  };
  kc.loadFromString(JSON.stringify(doc));
  shareDispatchers(kc);
  return kc;
}

/**
 * kubectl talks to an `http://` server (`kubectl proxy` on 127.0.0.1:8001 is
 * the common one); client-node refuses one unless TLS verification is off,
 * although no TLS is involved. Say so for plain-HTTP servers only.
 */
function plainHttpAllowed(cluster: Raw): Raw {
  return typeof cluster.server === 'string' && /^http:\/\//i.test(cluster.server) ? { ...cluster, 'insecure-skip-tls-verify': true } : cluster;
}

// ---- parsing helpers ---------------------------------------------------------

const CLUSTER_PATHS = ['certificate-authority'];
const USER_PATHS = ['client-certificate', 'client-key', 'token-file'];

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function isRaw(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseFile(path: string, text: string): Raw {
  // An empty (or comments-only) file is a valid, empty kubeconfig for kubectl;
  // js-yaml 5 refuses an input without a document.
  if (text.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) return {};
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: (e as Error).message.split('\n')[0] }, e);
  }
  if (doc === undefined || doc === null) return {};
  if (!isRaw(doc)) throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: 'the top level is not a map' });
  return doc;
}

function namedList(path: string, doc: Raw, key: string, inner: string): { name: string; body: Raw }[] {
  const list = doc[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: `${key} is not a list` });
  return list.map((item: unknown, i) => {
    const name = isRaw(item) ? str(item.name) : undefined;
    if (!isRaw(item) || !name) throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: `${key}[${i}] has no name` });
    const body = item[inner] ?? {};
    if (!isRaw(body)) throw ktError('KT_ERR_KUBECONFIG_INVALID', { path, reason: `${key}[${i}].${inner} is not a map` });
    return { name, body };
  });
}

function absolutize(body: Raw, dir: string, keys: readonly string[]): Raw {
  const out: Raw = { ...body };
  for (const k of keys) {
    const v = str(out[k]);
    if (v && !isAbsolute(v)) out[k] = join(dir, v);
  }
  return out;
}

function absolutizeUser(body: Raw, dir: string): Raw {
  const out = absolutize(body, dir, USER_PATHS);
  // client-go resolves an exec plugin's command only when it is a relative
  // path with a directory part; a bare name is looked up on PATH.
  if (isRaw(out.exec)) {
    const cmd = str(out.exec.command);
    if (cmd && !isAbsolute(cmd) && /[\\/]/.test(cmd)) out.exec = { ...out.exec, command: join(dir, cmd) };
  }
  return out;
}
