// Guarding a taken-over Service while the session runs, by watching (no
// polls): a selector someone overwrites (a redeploy, `kubectl apply`) is
// taken over again at once, with the new selector kept as the original; a
// router pod that is deleted is reported at once (the session then gives
// the Service back, ARCHITECTURE.md rule 1). Also the wait until the
// Service's Endpoints are the router's alone, or no longer list it.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { apiStatus, toKtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { podReady } from '../kube/pods.ts';
import { switchSelector } from '../kube/takeover-apply.ts';
import { heldByRouter, routerSelector, sameLabels } from '../kube/takeover-plan.ts';
import { watchByName } from '../kube/watch.ts';
import type { Progress } from './proxy-session.ts';

export interface GuardContext {
  api: KubeApi;
  namespace: string;
  /** The Service taken over. */
  service: string;
  progress: Progress;
  debug: (msg: string) => void;
}

/** What the guard reads from the session, as it is at the time. */
export interface Guarded {
  readonly router: string;
  readonly closing: boolean;
  /** The router pod went (or is going). */
  routerGone(reason: string): void;
}

/** Watches the router pod and the Service; returns the stops of both watches. */
export async function guardService(c: GuardContext, s: Guarded): Promise<(() => void)[]> {
  const { api, namespace, debug } = c;
  const stopped = (): boolean => s.closing;
  const router = s.router;
  const readRouter = (): Promise<unknown> => api.core.readNamespacedPod({ namespace, name: router }).catch((err: unknown) => {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  });
  const stops: (() => void)[] = [];
  stops.push(await watchByName({
    api, path: `/api/v1/namespaces/${namespace}/pods`, name: router, stopped, debug, read: readRouter,
    onEvent: (type, obj) => {
      const pod = obj as V1Pod;
      if (s.closing || router !== s.router) return;
      if (type === 'DELETED' || pod.metadata?.deletionTimestamp) s.routerGone(type === 'DELETED' ? 'the pod was deleted' : 'the pod is being deleted');
    },
  }));
  let reasserting = false;
  stops.push(await watchByName({
    api, path: `/api/v1/namespaces/${namespace}/services`, name: c.service, stopped, debug,
    onEvent: (type, obj) => {
      if (s.closing || (type !== 'MODIFIED' && type !== 'ADDED')) return;
      const svc = obj as V1Service;
      if (heldByRouter(svc, c.service)) return;
      if (reasserting) return;
      reasserting = true;
      void reassert(c, s, svc.spec?.selector ?? null).finally(() => {
        reasserting = false;
      });
    },
  }));
  return stops;
}

/** Someone changed the selector: take the Service over again, keeping their selector as the original. */
async function reassert(c: GuardContext, s: Guarded, selector: Record<string, string> | null): Promise<void> {
  const { api, namespace, service, progress } = c;
  try {
    // Only onto a router that is there and ready; otherwise the selector stays with the pods.
    const pod = await api.core.readNamespacedPod({ namespace, name: s.router }).catch(() => undefined);
    if (!pod || pod.metadata?.deletionTimestamp || !podReady(pod) || s.closing) return;
    const replaced = await switchSelector(api, namespace, service);
    if (replaced === undefined) return;
    if (sameLabels(selector, routerSelector(service))) progress.note(`service ${namespace}/${service} no longer published not-ready addresses (a redeploy?); set again, so the router's standby keeps serving while the router restarts`);
    else progress.note(`the selector of service ${namespace}/${service} was changed to ${JSON.stringify(selector)} (a redeploy?); pointed it at the router again, original selector now ${JSON.stringify(replaced)}`);
  } catch (err) {
    progress.note(`cannot take service ${namespace}/${service} over again: ${toKtError(err).message}`);
  }
}

/**
 * Waits (by watching) until the Service's Endpoints list the router alone
 * ('only': "routed" then means the cluster sends the Service's traffic to
 * the router), or no longer list it ('without': the router may go). On the
 * way out the abort signal has fired already (Ctrl-C): pass none, only the
 * time bounds that wait.
 */
export async function waitEndpoints(c: GuardContext, ip: string | undefined, mode: 'only' | 'without', signal?: AbortSignal): Promise<void> {
  if (!ip) return;
  const { api, namespace, service, progress, debug } = c;
  const done = progress.step(mode === 'only'
    ? `waiting for the endpoints of ${namespace}/${service} to be the router`
    : `waiting for the endpoints of ${namespace}/${service} to be its own pods`);
  let finished = false;
  let stop: (() => void) | undefined;
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), mode === 'only' ? 15_000 : 10_000);
    const onAbort = (): void => resolve(false);
    signal?.addEventListener('abort', onAbort, { once: true });
    void watchByName({
      api, path: `/api/v1/namespaces/${namespace}/endpoints`, name: service, stopped: () => finished, debug,
      onEvent: (_type, obj) => {
        const subsets = (obj as { subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[] }).subsets ?? [];
        const ips = subsets.flatMap((ss) => [...(ss.addresses ?? []), ...(ss.notReadyAddresses ?? [])].map((a) => a.ip));
        if (mode === 'only' ? ips.length > 0 && ips.every((x) => x === ip) : !ips.includes(ip)) {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        }
      },
    }).then((st) => {
      stop = st;
      if (finished) st();
    });
  });
  finished = true;
  stop?.();
  done(ok ? undefined : 'not yet; going on');
}
