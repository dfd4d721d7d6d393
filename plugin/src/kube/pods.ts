// Pod operations the sessions need, on client-node, with every failure turned
// into a KtError that names namespace, verb and resource.
import type { V1Pod } from '@kubernetes/client-node';
import { apiStatus, fromApiError, ktError } from '../errors.ts';
import type { KubeApi } from './api.ts';

export interface PodRef {
  namespace: string;
  name: string;
}

export async function createPod(api: KubeApi, pod: Record<string, unknown> & { metadata: PodRef }): Promise<V1Pod> {
  try {
    return await api.core.createNamespacedPod({ namespace: pod.metadata.namespace, body: pod as V1Pod });
  } catch (err) {
    throw fromApiError(err, { verb: 'create', resource: 'pods', namespace: pod.metadata.namespace, name: pod.metadata.name });
  }
}

/** Deletes a pod; a pod that is already gone is fine. */
export async function deletePod(api: KubeApi, ref: PodRef, gracePeriodSeconds?: number): Promise<void> {
  try {
    await api.core.deleteNamespacedPod({ namespace: ref.namespace, name: ref.name, gracePeriodSeconds });
  } catch (err) {
    const e = fromApiError(err, { verb: 'delete', resource: 'pods', namespace: ref.namespace, name: ref.name });
    if (e.code !== 'KT_ERR_API_NOT_FOUND') throw e;
  }
}

/** Merge-patches metadata.annotations (the heartbeat, routes). */
export async function annotatePod(api: KubeApi, ref: PodRef, annotations: Record<string, string | null>): Promise<void> {
  try {
    await api.core.patchNamespacedPod(
      { namespace: ref.namespace, name: ref.name, body: { metadata: { annotations } } },
      api.mergePatch(),
    );
  } catch (err) {
    throw fromApiError(err, { verb: 'patch', resource: 'pods', namespace: ref.namespace, name: ref.name });
  }
}

/**
 * Why a pod will not run, from its status, or undefined while it still may.
 * `restarting`: the pod is known to have run and served (a router a Service
 * was switched to), so a container in crash-loop back-off is one the kubelet
 * restarts after it was killed (an OOM kill), not a pod that cannot start.
 */
export function podFailure(pod: V1Pod, restarting = false): string | undefined {
  const phase = pod.status?.phase;
  if (phase === 'Failed' || phase === 'Succeeded') {
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    return `the pod ended (${phase}${term ? `: exit ${term.exitCode}${term.reason ? `, ${term.reason}` : ''}` : ''})`;
  }
  for (const cs of pod.status?.containerStatuses ?? []) {
    const reason = cs.state?.waiting?.reason;
    if (restarting && reason === 'CrashLoopBackOff') continue;
    if (reason && /ImagePullBackOff|ErrImagePull|InvalidImageName|CreateContainerConfigError|CreateContainerError|CrashLoopBackOff/.test(reason)) {
      return `container ${cs.name}: ${reason}${cs.state?.waiting?.message ? ` (${cs.state.waiting.message})` : ''}`;
    }
  }
  return undefined;
}

export function podRunning(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status?.containerStatuses ?? []).every((c) => c.state?.running !== undefined);
}

export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The last line a pod's container logged (its timestamp cut), or undefined; never throws, gives up after 2 s. */
export async function lastLogLine(api: KubeApi, ref: PodRef): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const give = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), 2000);
  });
  const read = api.core.readNamespacedPodLog({ namespace: ref.namespace, name: ref.name, tailLines: 5 }).then(
    (text) => String(text).split('\n').map((l) => l.trim()).filter(Boolean).pop()?.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z\s+/, '').slice(0, 300),
    () => undefined,
  );
  try {
    return await Promise.race([read, give]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits, by watching (no polling), until `until(pod)` holds. Rejects with a
 * KtError when the pod fails to start (image pull, crash), is deleted, or the
 * time runs out.
 */
export async function waitForPod(
  api: KubeApi,
  ref: PodRef,
  until: (pod: V1Pod) => boolean,
  opts: {
    timeoutMs: number;
    signal?: AbortSignal;
    what: string;
    /** Every state of the pod the watch sees on the way (a failed one excepted), before `until` is asked. */
    onPod?: (pod: V1Pod) => void;
    /** The pod ran and served before: crash-loop back-off is a restart to wait through (podFailure). */
    restarting?: boolean;
  },
): Promise<V1Pod> {
  return await new Promise<V1Pod>((resolve, reject) => {
    let ctrl: AbortController | undefined;
    let settled = false;
    const finish = (err: Error | undefined, pod?: V1Pod): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      ctrl?.abort();
      if (err) reject(err);
      else resolve(pod as V1Pod);
    };
    const timer = setTimeout(() => finish(ktError('KT_ERR_TIMEOUT', { what: opts.what, seconds: Math.round(opts.timeoutMs / 1000) })), opts.timeoutMs);
    const onAbort = (): void => finish(ktError('KT_ERR_INTERRUPTED', { what: opts.what }));
    opts.signal?.addEventListener('abort', onAbort);
    const path = `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/pods`;
    api.watch
      .watch(
        path,
        { fieldSelector: `metadata.name=${ref.name}` },
        (type: string, obj: V1Pod) => {
          if (type === 'DELETED') {
            finish(ktError('KT_ERR_PROXY_FAILED', { pod: ref.name, namespace: ref.namespace, reason: 'the pod was deleted' }));
            return;
          }
          if (type !== 'ADDED' && type !== 'MODIFIED') return;
          const failure = podFailure(obj, opts.restarting);
          if (failure) {
            // What the proxy said last says why (a port it could not bind, a bad key): one line of its log.
            const ran = (obj.status?.containerStatuses ?? []).some((c) => c.state?.terminated || c.lastState?.terminated);
            void (ran ? lastLogLine(api, ref) : Promise.resolve(undefined)).then((line) => {
              finish(ktError('KT_ERR_PROXY_FAILED', { pod: ref.name, namespace: ref.namespace, reason: line ? `${failure}; its log ends: ${line}` : failure }));
            });
          }
          else {
            opts.onPod?.(obj);
            if (until(obj)) finish(undefined, obj);
          }
        },
        (err: unknown) => {
          if (settled) return;
          finish(err ? fromApiError(err, { verb: 'watch', resource: 'pods', namespace: ref.namespace, name: ref.name }) : ktError('KT_ERR_PROXY_FAILED', { pod: ref.name, namespace: ref.namespace, reason: 'the watch ended before the pod was ready' }));
        },
      )
      .then(
        (c) => {
          ctrl = c;
          if (settled) c.abort();
        },
        (err: unknown) => finish(fromApiError(err, { verb: 'watch', resource: 'pods', namespace: ref.namespace, name: ref.name })),
      );
  });
}

/**
 * Waits (by watching) until a pod is gone from the API: after a graceful
 * delete, the kubelet removes it once its containers have exited. True when
 * it went within the time, false otherwise.
 */
export async function waitPodGone(api: KubeApi, ref: PodRef, timeoutMs: number): Promise<boolean> {
  let resourceVersion: string | undefined;
  try {
    const pod = await api.core.readNamespacedPod({ namespace: ref.namespace, name: ref.name });
    resourceVersion = pod.metadata?.resourceVersion;
  } catch (err) {
    if (apiStatus(err) === 404) return true;
    throw err;
  }
  return await new Promise<boolean>((resolve) => {
    let ctrl: AbortController | undefined;
    let settled = false;
    const finish = (gone: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctrl?.abort();
      resolve(gone);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    // From the version read: a DELETED event between the read and the watch is not missed.
    void api.watch.watch(`/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/pods`, { fieldSelector: `metadata.name=${ref.name}`, ...(resourceVersion ? { resourceVersion } : {}) },
      (type: string) => {
        if (type === 'DELETED') finish(true);
      },
      () => finish(false)).then((c) => {
      ctrl = c;
      if (settled) c.abort();
    }, () => finish(false));
  });
}
