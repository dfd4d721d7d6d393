// The real kubectl, run in the laptop namespace, drives the test cluster:
// apply, get -w, rollout status, scale, the three patch types, logs,
// port-forward (curl through it), exec, delete --wait. One cluster for the
// file. kubectl is built at the cluster's release (the machine's dispatcher
// has nothing newer than 1.33); the last test runs the dispatcher too.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from './cluster.ts';
import { echoApp, manifest } from '../fixtures/workloads.ts';

const NS = 'app';

// targetPort by the container port's name, as this file always applied it.
const MANIFEST = manifest([echoApp(NS, 'web', { targetPort: 'name' })]);

let c: Cluster;

async function ok(args: string[], input?: string): Promise<string> {
  const r = await c.kubectl(args, { input, timeoutMs: 120_000 });
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Collect a long-running command's stdout until `done(all output)` holds. */
function readUntil(child: ChildProcess, done: (out: string) => boolean, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (done(out)) {
        child.stdout?.off('data', onData);
        resolve(out);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code} before it showed what was expected:\n${out}\n${err}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function podNames(selector: string): Promise<string[]> {
  const out = await ok(['get', 'pods', '-n', NS, '-l', selector, '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}']);
  return out.split('\n').filter(Boolean);
}

describe('kubectl against the test cluster', { timeout: 300_000 }, () => {
  before(async () => {
    c = await startCluster();
    console.log(`# test cluster: upstream Kubernetes ${c.version} started in ${(c.startMs / 1000).toFixed(1)} s (certificates, etcd, API server, controllers, node, DNS answering)`);
  });
  after(async () => {
    await c?.stop();
  });

  test('apply -f creates the Deployment and Service; get -w shows the pods go Running', async () => {
    await ok(['create', 'namespace', NS]);
    // The watch starts before the apply, so it sees the pods from their creation on;
    // -v=6 logs each request once its response arrives, so we know when the watch is open.
    const watch = c.spawnInLaptop('kubectl', ['get', 'pods', '-n', NS, '-l', 'app=web', '-w', '--no-headers', '-v=6'], { env: { KUBECONFIG: c.kubeconfig } });
    try {
      await new Promise<void>((resolve, reject) => {
        let err = '';
        watch.stderr?.on('data', (b: Buffer) => {
          err += b.toString();
          // kubectl >= 1.33 logs `url="…watch=true" status="200 OK"`; older ones `…watch=true 200 OK`.
          if (/watch=true\S*\s+(status=")?200 OK/.test(err)) resolve();
        });
        watch.on('exit', (code) => reject(new Error(`kubectl get -w exited with ${code}: ${err}`)));
      });
      const running = readUntil(watch, (o) => {
        const names = new Set(o.split('\n').filter((l) => /\s1\/1\s+Running\s/.test(l)).map((l) => l.split(/\s+/)[0]));
        return names.size === 2;
      }, 'kubectl get -w');
      const applied = await ok(['apply', '-f', '-'], MANIFEST);
      assert.match(applied, /deployment\.apps\/web created/);
      assert.match(applied, /service\/web created/);
      const out = await running;
      // The watch saw the pods before they were ready, too.
      assert.match(out, /0\/1\s+(Pending|ContainerCreating|Running)/);
    } finally {
      await stopChild(watch);
    }
    assert.match(await ok(['rollout', 'status', '-n', NS, 'deployment/web', '--timeout=60s']), /successfully rolled out/);
    const svc = JSON.parse(await ok(['get', 'svc', '-n', NS, 'web', '-o', 'json'])) as { spec: { clusterIP: string } };
    assert.ok(svc.spec.clusterIP.startsWith(c.serviceCidr.split('.').slice(0, 2).join('.') + '.'), svc.spec.clusterIP);
    const wide = await ok(['get', 'pods', '-n', NS, '-o', 'wide']);
    assert.match(wide, new RegExp(`${c.podCidr.split('.').slice(0, 2).join('\\.')}\\.\\d+\\.\\d+\\s+kt-node`));
  });

  test('scale up and down; rollout status follows', async () => {
    assert.match(await ok(['scale', '-n', NS, 'deployment/web', '--replicas=3']), /scaled/);
    await ok(['rollout', 'status', '-n', NS, 'deployment/web', '--timeout=60s']);
    assert.equal(await ok(['get', 'deploy', '-n', NS, 'web', '-o', 'jsonpath={.status.readyReplicas}']), '3');
    await ok(['scale', '-n', NS, 'deployment/web', '--replicas=1']);
    await ok(['wait', '-n', NS, '--for=jsonpath={.status.replicas}=1', 'deployment/web', '--timeout=60s']);
    await ok(['rollout', 'status', '-n', NS, 'deployment/web', '--timeout=60s']);
    assert.equal(await ok(['get', 'deploy', '-n', NS, 'web', '-o', 'jsonpath={.status.readyReplicas}']), '1');
  });

  test('patch: strategic merge (rolls out), merge, and JSON patch', async () => {
    const before = await podNames('app=web');
    await ok(['patch', '-n', NS, 'deployment/web', '-p', '{"spec":{"template":{"metadata":{"labels":{"rev":"2"}}}}}']);
    await ok(['rollout', 'status', '-n', NS, 'deployment/web', '--timeout=60s']);
    const after = await podNames('app=web,rev=2');
    assert.equal(after.length, 1);
    assert.ok(!before.includes(after[0]), 'the template change made a new pod');

    await ok(['patch', '-n', NS, 'service/web', '--type', 'merge', '-p', '{"metadata":{"annotations":{"kt.dev/note":"merged"}}}']);
    assert.equal(await ok(['get', 'svc', '-n', NS, 'web', '-o', 'jsonpath={.metadata.annotations.kt\\.dev/note}']), 'merged');

    await ok(['patch', '-n', NS, 'deployment/web', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/replicas","value":2}]']);
    await ok(['rollout', 'status', '-n', NS, 'deployment/web', '--timeout=60s']);
    assert.equal(await ok(['get', 'deploy', '-n', NS, 'web', '-o', 'jsonpath={.status.readyReplicas}']), '2');
  });

  test('logs, exec (Service variables, hostname, stdin, exit code), and port-forward with curl through it', async () => {
    // A Ready pod that is not on its way out (the rollout above may leave one Terminating).
    const pod = c.store.list('pods', NS).find((p) => p.metadata.labels?.app === 'web' && !p.metadata.deletionTimestamp &&
      (p.status as { conditions?: { type: string; status: string }[] }).conditions?.some((x) => x.type === 'Ready' && x.status === 'True'))?.metadata.name;
    assert.ok(pod, 'a ready web pod');
    const pf = c.spawnInLaptop('kubectl', ['port-forward', '-n', NS, `pod/${pod}`, ':8080'], { env: { KUBECONFIG: c.kubeconfig } });
    try {
      const out = await readUntil(pf, (o) => /Forwarding from 127\.0\.0\.1:\d+/.test(o), 'kubectl port-forward');
      const local = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      const curl = await c.inLaptop('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${local}/through-port-forward`]);
      assert.equal(curl.code, 0, curl.stderr);
      const body = JSON.parse(curl.stdout) as { pod: string; path: string; namespace: string };
      assert.equal(body.pod, pod);
      assert.equal(body.namespace, NS);
      assert.equal(body.path, '/through-port-forward');
    } finally {
      await stopChild(pf);
    }
    const logs = await ok(['logs', '-n', NS, pod]);
    assert.match(logs, /echo listening on port 8080/);
    assert.match(logs, /GET \/through-port-forward/);
    const env = await ok(['exec', '-n', NS, pod, '--', 'printenv']);
    const svcIp = await ok(['get', 'svc', '-n', NS, 'web', '-o', 'jsonpath={.spec.clusterIP}']);
    assert.match(env, new RegExp(`^WEB_SERVICE_HOST=${svcIp.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(env, /^WEB_SERVICE_PORT=80$/m);
    assert.match(env, /^WEB_SERVICE_PORT_HTTP=80$/m);
    assert.match(env, /^KUBERNETES_SERVICE_HOST=/m);
    assert.match(env, new RegExp(`^POD_NAME=${pod}$`, 'm'));
    assert.equal(await ok(['exec', '-n', NS, pod, '--', 'hostname']), `${pod}\n`);
    const stdin = await c.kubectl(['exec', '-i', '-n', NS, pod, '--', 'sh', '-c', 'cat; exit 4'], { input: 'through stdin' });
    assert.equal(stdin.stdout, 'through stdin');
    assert.equal(stdin.code, 4);
  });

  test('delete --wait removes the pods before it returns', async () => {
    const out = await ok(['delete', '-n', NS, 'deployment/web', 'service/web', '--wait=true', '--timeout=60s']);
    assert.match(out, /deployment\.apps "web" deleted/);
    // The ReplicaSet and pods go by garbage collection; wait for them as a user would.
    await ok(['wait', '-n', NS, '--for=delete', 'pod', '-l', 'app=web', '--timeout=60s']);
    const left = await c.kubectl(['get', 'pods', '-n', NS]);
    assert.match(left.stderr + left.stdout, /No resources found/);
  });

  test('the machine\'s own kubectl (a version dispatcher) drives it too, and says which kubectl it picked', async () => {
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', KUBECONFIG: c.kubeconfig };
    const version = await c.inLaptop('/usr/bin/kubectl', ['version', '-o', 'json'], { env });
    assert.equal(version.code, 0, version.stderr);
    const v = JSON.parse(version.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    assert.equal(v.serverVersion.gitVersion, c.version);
    console.log(`# kubectl: the machine's dispatcher runs ${v.clientVersion.gitVersion} against ${v.serverVersion.gitVersion}; the tests use kubectl ${c.version}`);
    const nodes = await c.inLaptop('/usr/bin/kubectl', ['get', 'nodes', '--no-headers'], { env });
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.match(nodes.stdout, /^kt-node\s+Ready\s/m);
  });
});
