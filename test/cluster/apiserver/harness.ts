// Test harness: an API server on 127.0.0.1 port 0 over a fresh store, with a
// fake kubelet, a kubeconfig in a temp dir and a private KUBECACHEDIR (kubectl
// caches discovery otherwise), and helpers to run the real kubectl against it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { Store, type KubeObject } from '../store.ts';
import { KubeletError, type ApiServer, type KubeletHooks, type LogOptions } from '../types.ts';
import { startApiServer } from './index.ts';

export interface KubectlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Harness {
  store: Store;
  server: ApiServer;
  kubeconfig: string;
  /** Every request the server saw: "METHOD /path?query STATUS ...". */
  requests: string[];
  /** The log calls the fake kubelet got. */
  logCalls: { namespace: string; pod: string; opts: LogOptions }[];
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  /** A long-running kubectl (get -w, delete --wait): the caller kills it. */
  spawnKubectl(args: string[]): ChildProcess;
  /** A Running pod on node "node-a", written straight to the store. */
  runningPod(namespace: string, name: string, labels?: Record<string, string>): KubeObject;
  close(): Promise<void>;
}

export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

/**
 * The fake node: a pod's loopback is this machine's loopback (port-forward
 * connects to 127.0.0.1:port), and every container logs the same two lines.
 */
const fakeKubelet = (calls: Harness['logCalls']): KubeletHooks => ({
  portForward(_namespace, _pod, port) {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        s.off('error', onError);
        resolve(s);
      });
      const onError = (err: Error): void => reject(new KubeletError(500, `error forwarding port ${port}: ${err.message}`));
      s.once('error', onError);
    });
  },
  async logs(namespace, pod, opts) {
    calls.push({ namespace, pod, opts });
    return Readable.from([`log line 1 from ${namespace}/${pod}/${opts.container}\n`, 'log line 2\n']);
  },
});

export async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'kt-apiserver-test-'));
  const store = new Store();
  const requests: string[] = [];
  const logCalls: Harness['logCalls'] = [];
  const server = await startApiServer({
    store,
    host: '127.0.0.1',
    port: 0,
    serviceCidr: '10.97.0.0/16',
    kubelet: fakeKubelet(logCalls),
    debug: (m) => requests.push(m),
  });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      // client-node refuses http:// unless the cluster says insecure-skip-tls-verify.
      `- {name: test, cluster: {server: "${server.url}", insecure-skip-tls-verify: true}}`,
      'users:',
      '- {name: test, user: {}}',
      'contexts:',
      '- {name: test, context: {cluster: test, user: test, namespace: default}}',
      'current-context: test',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache'), HOME: dir };
  const children = new Set<ChildProcess>();

  const spawnKubectl = (args: string[]): ChildProcess => {
    const child = spawn(KUBECTL, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  return {
    store,
    server,
    kubeconfig,
    requests,
    logCalls,
    spawnKubectl,
    kubectl(args, stdin) {
      return new Promise((resolve, reject) => {
        const child = spawnKubectl(args);
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin?.end(stdin ?? '');
      });
    },
    runningPod(namespace, name, labels = {}) {
      return store.create('pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels },
        spec: { nodeName: 'node-a', terminationGracePeriodSeconds: 30, containers: [{ name: 'main', image: 'shell' }] },
        status: {
          phase: 'Running',
          podIP: '10.244.0.9',
          containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'shell', imageID: '', state: { running: { startedAt: new Date().toISOString() } } }],
        },
      });
    },
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the output so far once `pattern` appears on the child's stdout. */
export function waitForOutput(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (pattern.test(out)) {
        child.stdout?.off('data', onData);
        resolve(out);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`kubectl exited (${code}) before ${pattern}: ${out}${err}`)));
  });
}
