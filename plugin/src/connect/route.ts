// `connect --mode route` (Linux, root): every process on this machine reaches
// pod IPs, ClusterIPs and Service names.
//  - Cluster addresses are made local: each ClusterIP and pod IP becomes a /32
//    on a dummy interface, and a listener on each port that Services, their
//    endpoints and pods declare tunnels every accepted connection to the same
//    address and port as the proxy pod sees it. Kept current by watching.
//  - A local DNS server answers cluster names through the proxy's DNS
//    forwarder and forwards the rest to the previous upstream; it is wired
//    into the OS resolver (resolver.ts).
// Everything is undone on close(), and by `clean --local` after a crash.
// macOS (designed, see README): loopback aliases (`ifconfig lo0 alias IP`)
// instead of the dummy interface, and /etc/resolver/<domain> files instead of
// resolv.conf; the listeners and the DNS server are the same.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import type { KubernetesObject, V1Endpoints, V1Pod, V1Service } from '@kubernetes/client-node';
import { PORTS } from '../../../contract/protocol.ts';
import { relay } from './socks.ts';
import { clusterNameMatcher, startLocalDns, type LocalDns } from './cluster-dns.ts';
import { undoAddresses, parseResolvConf, removeState, saveState, unwireResolver, wireResolver, RESOLV_CONF, type LocalState } from './resolver.ts';
import type { KubeApi } from '../kube/api.ts';
import type { ProxySession, Progress } from '../session/proxy-session.ts';

const run = promisify(execFile);

export interface RouteModeOptions {
  api: KubeApi;
  session: ProxySession;
  namespace: string;
  namespaces: readonly string[] | 'all';
  clusterDomain?: string;
  debug: (m: string) => void;
  progress: Progress;
}

export interface RouteMode {
  summary: string;
  /** The addresses and ports currently served (for tests and status). */
  endpoints(): string[];
  close(): Promise<void>;
}

/** An address:port the cluster serves, as the listeners mirror it. */
export type Target = `${string}:${number}`;

/** What should be local, from the objects watched: pure, tested without sockets. */
export function desiredTargets(services: V1Service[], endpoints: V1Endpoints[], pods: V1Pod[]): Set<Target> {
  const out = new Set<Target>();
  for (const s of services) {
    const ip = s.spec?.clusterIP;
    if (!ip || ip === 'None' || ip.includes(':')) continue;
    for (const p of s.spec?.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') out.add(`${ip}:${p.port}`);
  }
  for (const e of endpoints) {
    for (const subset of e.subsets ?? []) {
      for (const a of [...(subset.addresses ?? []), ...(subset.notReadyAddresses ?? [])]) {
        if (a.ip.includes(':')) continue;
        for (const p of subset.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') out.add(`${a.ip}:${p.port}`);
      }
    }
  }
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip || ip.includes(':') || pod.spec?.hostNetwork) continue;
    for (const c of pod.spec?.containers ?? []) {
      for (const p of c.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') out.add(`${ip}:${p.containerPort}`);
    }
  }
  return out;
}

export function splitTarget(t: Target): { ip: string; port: number } {
  const i = t.lastIndexOf(':');
  return { ip: t.slice(0, i), port: Number(t.slice(i + 1)) };
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args);
}

export async function startRouteMode(opts: RouteModeOptions): Promise<RouteMode> {
  if (process.platform !== 'linux') {
    throw new Error('connect --mode route is built for Linux in this version; use --mode socks');
  }
  const { state, addrArgs } = await localInterface(opts.session.id, opts.debug);
  const mirror = new TargetMirror(opts.session, addrArgs, opts.debug);
  const informers: Informer[] = [];
  let dns: LocalDns | undefined;

  const cleanup = async (): Promise<void> => {
    mirror.closed = true;
    await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
    await mirror.close();
    await dns?.close();
    const warning = await unwireResolver(state.resolver).catch((e: Error) => e.message);
    if (warning) opts.progress.note(warning);
    await undoAddresses(state);
    await removeState(state.session);
  };

  try {
    const nsList = opts.namespaces === 'all' ? undefined : [...new Set(opts.namespaces)];
    await watchCluster(opts.api, nsList, mirror, informers);
    mirror.reconcile();
    await mirror.reconciling;
    dns = await startDns(opts, state, nsList);
    return {
      summary: `${mirror.addresses.size} addresses, ${mirror.listeners.size} ports, DNS on ${dns.host}`,
      endpoints: () => [...mirror.listeners.keys()],
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Cluster addresses live on a dummy interface of our own when the kernel
 * has one (systemd-resolved can then route DNS per link), else as labelled
 * loopback aliases; either is removed by name on exit or by clean --local.
 */
async function localInterface(session: string, debug: (m: string) => void): Promise<{ state: LocalState; addrArgs: (a: string) => string[] }> {
  const dummy = `kt${session}`.slice(0, 15);
  const label = `lo:kt${session}`.slice(0, 15);
  const state: LocalState = { session, pid: process.pid };
  await saveState(state);
  let iface = dummy;
  try {
    await ip(['link', 'add', dummy, 'type', 'dummy']);
    state.iface = dummy;
    await saveState(state);
    await ip(['link', 'set', dummy, 'up']);
  } catch (err) {
    debug(`no dummy interface (${(err as Error).message.trim()}); using loopback aliases`);
    iface = 'lo';
    state.loLabel = label;
    await saveState(state);
  }
  return { state, addrArgs: (a) => (iface === 'lo' ? [`${a}/32`, 'dev', 'lo', 'label', label] : [`${a}/32`, 'dev', iface]) };
}

/** The watched objects, and the local addresses and listeners reconciled against them. */
class TargetMirror {
  readonly services = new Map<string, V1Service>();
  readonly endpoints = new Map<string, V1Endpoints>();
  readonly pods = new Map<string, V1Pod>();
  readonly listeners = new Map<Target, Server>();
  readonly addresses = new Set<string>();
  reconciling = Promise.resolve();
  closed = false;

  private readonly session: ProxySession;
  private readonly addrArgs: (a: string) => string[];
  private readonly debug: (m: string) => void;

  constructor(session: ProxySession, addrArgs: (a: string) => string[], debug: (m: string) => void) {
    this.session = session;
    this.addrArgs = addrArgs;
    this.debug = debug;
  }

  /** Queues a pass that makes the addresses and listeners what the watched objects say. */
  reconcile(): void {
    this.reconciling = this.reconciling.then(async () => {
      if (this.closed) return;
      const want = desiredTargets([...this.services.values()], [...this.endpoints.values()], [...this.pods.values()]);
      for (const [t, server] of this.listeners) {
        if (!want.has(t)) {
          this.listeners.delete(t);
          server.close();
        }
      }
      const wantIps = new Set([...want].map((t) => splitTarget(t).ip));
      for (const a of this.addresses) {
        if (!wantIps.has(a)) {
          this.addresses.delete(a);
          await ip(['addr', 'del', ...this.addrArgs(a)]).catch(() => undefined);
        }
      }
      for (const a of wantIps) {
        if (this.addresses.has(a)) continue;
        await ip(['addr', 'add', ...this.addrArgs(a)]).catch((e: Error) => this.debug(`addr add ${a}: ${e.message}`));
        this.addresses.add(a);
      }
      for (const t of want) if (!this.listeners.has(t)) await this.listen(t);
    }).catch((e: Error) => this.debug(`reconcile: ${e.message}`));
  }

  /** A listener that tunnels every accepted connection to the same address and port in the cluster. */
  private async listen(t: Target): Promise<void> {
    const { ip: host, port } = splitTarget(t);
    const server = createServer((sock) => {
      sock.setNoDelay(true);
      sock.pause();
      this.session.dial(host, port).then(
        (up) => {
          relay(sock, up);
          sock.resume();
        },
        (err: Error) => {
          this.debug(`route ${t}: ${err.message}`);
          sock.resetAndDestroy();
        },
      );
    });
    server.on('error', (err) => this.debug(`listen ${t}: ${err.message}`));
    this.listeners.set(t, server);
    await new Promise<void>((resolve) => {
      server.listen({ host, port }, () => resolve());
      server.once('error', () => resolve());
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.listeners.clear();
  }
}

interface Informer {
  on(ev: string, cb: (o?: KubernetesObject) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Services, Endpoints and pods of the namespaces (all: undefined), watched into the mirror. */
async function watchCluster(api: KubeApi, nsList: string[] | undefined, mirror: TargetMirror, informers: Informer[]): Promise<void> {
  const keyOf = (o: KubernetesObject): string => `${o.metadata?.namespace}/${o.metadata?.name}`;
  const watchInto = async <T extends KubernetesObject>(map: Map<string, T>, path: string, list: () => Promise<{ items: T[] }>): Promise<void> => {
    const inf = api.informer(path, list as never) as unknown as Informer;
    const set = (o?: KubernetesObject): void => {
      if (o) map.set(keyOf(o), o as T);
      mirror.reconcile();
    };
    inf.on('add', set);
    inf.on('update', set);
    inf.on('delete', (o?: KubernetesObject) => {
      if (o) map.delete(keyOf(o));
      mirror.reconcile();
    });
    // client-node's informer stops on a watch error; restart it with a
    // short delay (its list then brings the cache up to date).
    inf.on('error', () => {
      if (!mirror.closed) setTimeout(() => void inf.start().catch(() => undefined), 1000).unref();
    });
    informers.push(inf);
    await inf.start();
  };
  const core = api.core;
  if (!nsList) {
    await watchInto(mirror.services, '/api/v1/services', () => core.listServiceForAllNamespaces());
    await watchInto(mirror.endpoints, '/api/v1/endpoints', () => core.listEndpointsForAllNamespaces());
    await watchInto(mirror.pods, '/api/v1/pods', () => core.listPodForAllNamespaces());
    return;
  }
  for (const ns of nsList) {
    await watchInto(mirror.services, `/api/v1/namespaces/${ns}/services`, () => core.listNamespacedService({ namespace: ns }));
    await watchInto(mirror.endpoints, `/api/v1/namespaces/${ns}/endpoints`, () => core.listNamespacedEndpoints({ namespace: ns }));
    await watchInto(mirror.pods, `/api/v1/namespaces/${ns}/pods`, () => core.listNamespacedPod({ namespace: ns }));
  }
}

/** The local DNS server for cluster names, wired into the OS resolver. */
async function startDns(opts: RouteModeOptions, state: LocalState, nsList: string[] | undefined): Promise<LocalDns> {
  const domain = opts.clusterDomain ?? 'cluster.local';
  const previous = parseResolvConf(await readFile(RESOLV_CONF, 'utf8').catch(() => ''));
  const dns = await startLocalDnsOnFreeLoopback({
    dialCluster: () => opts.session.dial('127.0.0.1', PORTS.dns),
    // Never our own address: a crash may have left it in resolv.conf.
    upstreams: previous.nameservers.filter((n) => !/^127\.0\.[0-3]\.153$/.test(n)),
    isClusterName: clusterNameMatcher({ domain, namespaces: opts.namespaces }),
    debug: opts.debug,
  });
  const search = [`${opts.namespace}.svc.${domain}`, `svc.${domain}`, domain];
  await wireResolver(state, {
    nameserver: dns.host,
    search,
    routingDomains: [domain, ...(nsList ?? [])],
    iface: state.iface,
  });
  return dns;
}

/**
 * resolv.conf cannot name a port, so the server needs port 53 on an address
 * of its own; 127.0.0.1:53 is often taken (dnsmasq, resolved's 127.0.0.53),
 * so try a few loopback addresses (all of 127/8 is local on Linux).
 */
async function startLocalDnsOnFreeLoopback(o: Omit<Parameters<typeof startLocalDns>[0], 'host' | 'port'>): Promise<LocalDns> {
  let last: Error | undefined;
  for (const host of ['127.0.0.153', '127.0.1.153', '127.0.2.153', '127.0.3.153']) {
    try {
      return await startLocalDns({ ...o, host, port: 53 });
    } catch (err) {
      last = err as Error;
    }
  }
  throw new Error(`no free loopback address for the local DNS server on port 53: ${last?.message}`);
}
