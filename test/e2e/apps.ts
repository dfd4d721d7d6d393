// Fixtures the fault E2E tests share (and later tests may): a Service with
// its Deployment of the demo echo server, admitted under Pod Security
// "restricted"; a client pod to ask Services from inside the cluster; the
// developer's local echo server; and asking "which pod answered" until an
// answer matches, timed.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { NODE26, ROOT, type Cluster } from '../cluster/cluster.ts';
import { LABELS, MANAGED_BY } from '../../contract/protocol.ts';

const RESTRICTED_POD = '{runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}';
const RESTRICTED_CONTAINER = '{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}';

/** Service NAME (port 80 → 8080) and Deployment NAME of the echo server, whose pods answer /who with their name. */
export function echoApp(ns: string, name: string, replicas = 1): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      securityContext: ${RESTRICTED_POD}
      containers:
      - name: echo
        securityContext: ${RESTRICTED_CONTAINER}
        image: kt-demo/echo
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
`;
}

/** Pod `client` (curl, sh, node of this machine) to send requests from inside the cluster. */
export function clientPod(ns: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${ns}}
spec:
  securityContext: ${RESTRICTED_POD}
  containers:
  - {name: shell, image: shell, command: [sleep, infinity], securityContext: ${RESTRICTED_CONTAINER}}
`;
}

/** Applies the manifests and waits for the Deployments' rollouts, the client pod and the service proxy. */
export async function applyApps(cluster: Cluster, ns: string, manifests: string[], deployments: string[]): Promise<void> {
  const applied = await cluster.kubectl(['apply', '-f', '-'], { input: manifests.join('---\n') });
  if (applied.code !== 0) throw new Error(applied.stderr);
  for (const d of deployments) {
    const r = await cluster.kubectl(['rollout', 'status', '-n', ns, `deploy/${d}`, '--timeout=90s']);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  await cluster.waitFor('pods', ns, 'client', (o) => (o?.status as { phase?: string } | undefined)?.phase === 'Running', 60_000);
  await cluster.serviceProxySynced();
}

/**
 * The developer's local server: the echo server answering as `name` on
 * `port`, in the laptop namespace (or, `where: 'host'`, in the machine's own
 * namespace: a colleague's laptop, whose path to the API server is not the
 * laptop's). Resolves once it listens.
 */
export async function localEcho(cluster: Cluster, port: number, name: string, where: 'laptop' | 'host' = 'laptop'): Promise<ChildProcess> {
  const args = [join(ROOT, 'test/fixtures/echo/server.ts')];
  const env = { PORT: String(port), POD_NAME: name };
  const child = where === 'laptop' ? cluster.spawnInLaptop(NODE26, args, { env }) : spawn(NODE26, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (/echo listening/.test(buf)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server ${name} exited with ${code}: ${buf}`)));
  });
  return child;
}

/** Which pod answered GET url from the client pod (with x-kt-version: header when given); `error: …` when none did. */
export async function who(cluster: Cluster, ns: string, url: string, header?: string): Promise<string> {
  const r = await cluster.inPod(ns, 'client', 'curl', ['-sS', '--max-time', '2', ...(header ? ['-H', `x-kt-version: ${header}`] : []), url], { timeoutMs: 10_000 });
  if (r.code !== 0) return `error: ${r.stderr.trim()}`;
  try {
    return String((JSON.parse(r.stdout) as { pod: string }).pod);
  } catch {
    return `not json: ${r.stdout.slice(0, 80)}`;
  }
}

/** Asks until `pred` holds for the answer; returns the milliseconds since `since` (performance.now()). */
export async function until(ask: () => Promise<string>, pred: (pod: string) => boolean, since: number, timeoutMs: number, what: string): Promise<number> {
  let last = '';
  while (performance.now() - since < timeoutMs) {
    last = await ask();
    if (pred(last)) return performance.now() - since;
  }
  throw new Error(`${what}: no matching answer within ${timeoutMs} ms; last answer: ${last}`);
}

/** Collects a child's stderr from now on. */
export function stderrOf(child: ChildProcess): () => string {
  let buf = '';
  child.stderr?.on('data', (d: Buffer) => (buf += d.toString()));
  return () => buf;
}

/** kind/name of every kubectl-kt object (pods, Services, Secrets) in a namespace. */
export function ktObjectsIn(cluster: Cluster, ns: string): string[] {
  const out: string[] = [];
  for (const kind of ['pods', 'services', 'secrets']) {
    for (const o of cluster.store.list(kind, ns)) if (o.metadata.labels?.[LABELS.managedBy] === MANAGED_BY) out.push(`${kind}/${o.metadata.name}`);
  }
  return out;
}

/** Waits until no kubectl-kt object is left in the namespace (pods end through graceful deletion). */
export async function nothingLeftIn(cluster: Cluster, ns: string): Promise<void> {
  for (const name of ktObjectsIn(cluster, ns)) {
    const [kind, n] = name.split('/');
    await cluster.waitFor(kind, ns, n, (o) => o === undefined, 30_000);
  }
  const left = ktObjectsIn(cluster, ns);
  if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
}

/** The Service as a test compares it before and after: labels, annotations, spec. */
export function serviceShape(cluster: Cluster, ns: string, name: string): unknown {
  const s = cluster.store.get('services', ns, name) as { metadata: { labels?: unknown; annotations?: unknown }; spec: unknown } | undefined;
  if (!s) throw new Error(`no service ${ns}/${name}`);
  return { labels: s.metadata.labels, annotations: s.metadata.annotations, spec: s.spec };
}
