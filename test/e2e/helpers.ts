// Shared by the plugin's E2E tests: waiting on a child's output and exit,
// and finding what kubectl-kt left in the cluster (by its labels alone).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
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
