// The upstream control plane as child processes of the cluster: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler, all from the one
// multi-call binary that build.ts makes (test/cluster/upstream/main.go).
// Flags follow what kubeadm writes into its static pod manifests, with
// loopback addresses and ports picked free, so several clusters run at once.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ApiClient } from './client.ts';
import { kubeconfigYaml, type Pki } from './pki.ts';

export interface ControlPlaneOptions {
  /** The multi-call binary. */
  bin: string;
  dir: string;
  pki: Pki;
  serviceCidr: string;
  /** The address the `kubernetes` Service's endpoint gets (the API relay on the node's bridge). */
  advertiseAddress: string;
  clusterDomain: string;
  /** Called with each process's pid as it starts (the cluster's state record, for clean-up after a crash). */
  started?: (pid: number) => void;
}

export interface ControlPlane {
  server: string;
  port: number;
  /** Admin client (system:masters). */
  admin: ApiClient;
  processes: ChildProcess[];
  /**
   * Restarts kube-apiserver as an upgrade rolls it: SIGTERM (SIGKILL after
   * API_RESTART_GRACE_MS), then the same flags and port again; resolves
   * once /readyz says ok. etcd keeps the data, so
   * resourceVersions go on where they were.
   */
  restartApiServer(): Promise<{ downMs: number }>;
  stop(): Promise<void>;
}

/** How long a restarted kube-apiserver may shut down gracefully before it is killed. */
export const API_RESTART_GRACE_MS = 2000;

/** A port free on loopback now (the process that gets it binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(o: ControlPlaneOptions, name: string, args: string[], died: (e: Error) => void): ChildProcess {
  // Appended: a restarted program (restartApiServer) keeps its earlier log.
  const log = createWriteStream(join(o.dir, 'logs', `${name}.log`), { flags: 'a' });
  // setpriv --pdeathsig: the process dies with the cluster process, even after its kill -9.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', o.bin, name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) o.started?.(child.pid);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let tail = '';
  child.stderr.on('data', (b: Buffer) => (tail = (tail + b.toString()).slice(-2000)));
  child.on('exit', (code, signal) => {
    if (signal !== 'SIGTERM' && signal !== 'SIGKILL') died(new Error(`${name} exited (${code ?? signal}); last output:\n${tail.trim().split('\n').slice(-5).join('\n')}`));
  });
  return child;
}

async function until(what: string, check: () => Promise<boolean>, failed: () => Error | undefined, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const f = failed();
    if (f) throw f;
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what} was not ready after ${timeoutMs} ms`);
    // Polling, not sleeping for an event: these processes announce readiness only on their health endpoints.
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  mkdirSync(join(o.dir, 'logs'), { recursive: true });
  const processes: ChildProcess[] = [];
  let restartApiServer = (): Promise<{ downMs: number }> => Promise.reject(new Error('kube-apiserver is not running'));
  let failure: Error | undefined;
  const died = (e: Error): void => {
    failure ??= e;
  };
  const stop = async (): Promise<void> => {
    await Promise.all(processes.reverse().map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
    })));
  };
  try {
    const [etcdPort, peerPort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    processes.push(start(o, 'etcd', [
      '--name', 'kt', '--data-dir', join(o.dir, 'etcd'),
      '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `kt=http://127.0.0.1:${peerPort}`,
      // A test cluster's data is thrown away: no fsync per write (etcd's own test setting).
      '--unsafe-no-fsync', '--log-level', 'warn', '--quota-backend-bytes', String(2 * 1024 ** 3),
    ], died));

    const p = o.pki;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', `--secure-port=${apiPort}`, `--advertise-address=${o.advertiseAddress}`,
      `--tls-cert-file=${p.apiserver.certFile}`, `--tls-private-key-file=${p.apiserver.keyFile}`,
      `--client-ca-file=${p.caFile}`,
      '--authorization-mode=Node,RBAC',
      // PodSecurity is on by default; NodeRestriction as kubeadm enables it.
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${o.serviceCidr}`,
      `--service-account-issuer=https://kubernetes.default.svc.${o.clusterDomain}`,
      `--service-account-key-file=${p.saPubFile}`, `--service-account-signing-key-file=${p.saKeyFile}`,
      `--kubelet-client-certificate=${p.clients.kubeletClient.certFile}`, `--kubelet-client-key=${p.clients.kubeletClient.keyFile}`,
      `--kubelet-certificate-authority=${p.caFile}`, '--kubelet-preferred-address-types=InternalIP',
      '--allow-privileged=true', '--profiling=false', `--cert-dir=${join(o.dir, 'pki')}`,
    ];
    processes.push(start(o, 'kube-apiserver', apiArgs, died));
    const server = `https://127.0.0.1:${apiPort}`;
    const admin = new ApiClient({ server, ca: p.ca, cert: p.clients.admin.cert, key: p.clients.admin.key });
    const apiReady = (): Promise<void> => until('kube-apiserver', async () => (await admin.call<string>('GET', '/readyz')) === 'ok', () => failure, 90_000);
    await apiReady();
    restartApiServer = async () => {
      const i = processes.findIndex((c) => c.spawnargs.includes('kube-apiserver'));
      const old = processes[i];
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        if (old.exitCode !== null || old.signalCode !== null) return resolve();
        old.once('exit', () => resolve());
        old.kill('SIGTERM');
        // Its graceful shutdown waits for long-running requests (port-forward
        // streams, watches) that end only when their clients go; a kubelet
        // ends it after the pod's grace period. Kept short here: while the
        // API is down the node cannot renew its Lease, and after
        // --node-monitor-grace-period (20 s) every pod would turn NotReady.
        setTimeout(() => old.kill('SIGKILL'), API_RESTART_GRACE_MS).unref();
      });
      processes[i] = start(o, 'kube-apiserver', apiArgs, died);
      await apiReady();
      return { downMs: performance.now() - t0 };
    };

    const kc = (file: string, user: string, id: Pki['clients']['admin']): string => {
      const path = join(o.dir, file);
      writeFileSync(path, kubeconfigYaml({ name: 'kt', server, ca: p.ca, user, id }), { mode: 0o600 });
      return path;
    };
    const kcm = kc('controller-manager.kubeconfig', 'system:kube-controller-manager', p.clients.controllerManager);
    processes.push(start(o, 'kube-controller-manager', [
      `--kubeconfig=${kcm}`, `--authentication-kubeconfig=${kcm}`, `--authorization-kubeconfig=${kcm}`,
      '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${p.saKeyFile}`, `--root-ca-file=${p.caFile}`,
      `--cluster-signing-cert-file=${p.caFile}`, `--cluster-signing-key-file=${join(p.dir, 'ca.key')}`,
      `--service-cluster-ip-range=${o.serviceCidr}`,
      // Short enough that a dead node agent is noticed in tests about node faults.
      '--node-monitor-grace-period=20s',
    ], died));
    const sched = kc('scheduler.kubeconfig', 'system:kube-scheduler', p.clients.scheduler);
    processes.push(start(o, 'kube-scheduler', [
      `--kubeconfig=${sched}`, `--authentication-kubeconfig=${sched}`, `--authorization-kubeconfig=${sched}`,
      '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false',
    ], died));
    return { server, port: apiPort, admin, processes, restartApiServer: () => restartApiServer(), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
