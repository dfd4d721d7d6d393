// Shared by the plugin's E2E tests: waiting on a child's output and exit,
// asking which pod answered, and finding what kubectl-kt left in the cluster
// (by its labels alone). The workloads they run are test/fixtures/workloads.ts.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Cluster } from '../cluster/cluster.ts';
import { LABELS, MANAGED_BY } from '../../contract/protocol.ts';

/** Reads a child's stderr until a line matches; rejects if it exits first. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${re}; output so far:\n${buf}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null): void => done(new Error(`exited with ${code} before ${re}; output:\n${buf}`));
    function done(err: Error | undefined, line?: string): void {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line as string);
    }
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}

/** Waits until a child (a laptop server) writes `text` on its stdout; rejects if it exits first. */
export function saysOnStdout(child: ChildProcess, text: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before saying "${text}": ${buf}`)));
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  // A child killed by a signal has exitCode null and signalCode set: it has exited too.
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Names (ns/name) of the kubectl-kt objects of one resource in the cluster. */
export function ktObjects(cluster: Cluster, resource: string): string[] {
  return cluster.store
    .list(resource)
    .filter((o) => o.metadata.labels?.[LABELS.managedBy] === MANAGED_BY)
    .map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
}

/** Waits until no kt pod is left (pods go through graceful deletion); the store says so on each change. */
export async function waitNoKtPods(cluster: Cluster): Promise<void> {
  for (const name of ktObjects(cluster, 'pods')) {
    const [ns, pod] = name.split('/');
    await cluster.waitFor('pods', ns, pod, (o) => o === undefined, 30_000);
  }
  assert.deepEqual(ktObjects(cluster, 'pods'), []);
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

/**
 * A TCP relay on 127.0.0.1 to `port` (a plugin's way to the API server,
 * through a kubeconfig naming it) that a test can hold: while held, every
 * byte either way waits in the relay and nothing is lost, as on a path that
 * stalls; release() sends what waited, in order, and relays on as before.
 * `held` resolves when the first byte waits: the hold stopped something.
 */
export interface HoldableRelay {
  port: number;
  hold(): void;
  held: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

export async function holdableRelay(port: number): Promise<HoldableRelay> {
  let holding = false;
  let firstHeld!: () => void;
  const held = new Promise<void>((resolve) => (firstHeld = resolve));
  /** Bytes that came while held, in arrival order, with the socket they go to. */
  let waiting: { to: Socket; data: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const relay = (from: Socket, to: Socket): void => {
    from.on('data', (data: Buffer) => {
      if (!holding) return void to.write(data);
      waiting.push({ to, data });
      firstHeld();
    });
    from.on('end', () => (holding ? waiting.push({ to, data: Buffer.alloc(0) }) : to.end()));
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port, noDelay: true });
    client.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    relay(client, upstream);
    relay(upstream, client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    hold: () => {
      holding = true;
    },
    held,
    release: () => {
      holding = false;
      const q = waiting;
      waiting = [];
      // An empty chunk stands for an end that came while held.
      for (const { to, data } of q) {
        if (data.length === 0) to.end();
        else to.write(data);
      }
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
