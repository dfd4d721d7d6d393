// Giving a taken-over Service back when the last session leaves: nobody else
// routes through the router (as the router itself knows it, else as the
// route annotations say), so the selector goes back first; the router is
// told to go only once the Endpoints no longer list it (ARCHITECTURE.md
// rule 1). It is deleted with its grace period: the node's service proxy
// applies the Endpoints change on its own schedule (kube-proxy: usually
// within a second), and until it has, new connections still reach the
// router, which serves them from the origin and exits once none has been
// new for a while (proxy-image/src/router/drain.ts); the origin Service
// goes after it (restoreService with drain).
import { ANNOTATIONS } from '../../../contract/protocol.ts';
import { apiStatus, fromApiError, toKtError } from '../errors.ts';
import { annotatePod } from '../kube/pods.ts';
import { restoreService } from '../kube/restore.ts';
import { isRace, readRouterSecret, restoreSelectorOnly } from '../kube/takeover-apply.ts';
import { parseRoutes } from '../status/model.ts';
import { waitEndpoints, type GuardContext } from './service-guard.ts';

export interface Leaving {
  router: string;
  /** This session's id (its route annotation's key is made from it). */
  session: string;
  /** This session's route annotation, removed when it routed. */
  annotationKey: string | undefined;
  /** The sessions the router says route now (undefined: it could not be asked). */
  live: string[] | undefined;
  /** The router's IP, for the wait until the Endpoints no longer list it. */
  routerIp: string | undefined;
  /** The router is gone already: it is not drained. */
  gone: boolean;
}

/** Gives the Service back unless another session still routes through its router. */
export async function releaseService(c: GuardContext, l: Leaving): Promise<void> {
  const { api, namespace, service, progress, debug } = c;
  let others = 0;
  try {
    const pod = await api.core.readNamespacedPod({ namespace, name: l.router });
    if (l.annotationKey !== undefined) {
      await annotatePod(api, { namespace, name: l.router }, { [l.annotationKey]: null }).catch((err: unknown) => debug(`removing the route annotation: ${(err as Error).message}`));
    }
    others = l.live
      ? l.live.filter((id) => id !== l.session).length
      : parseRoutes(pod.metadata?.annotations, Date.now()).filter((r) => !r.stale && r.session !== l.session).length;
  } catch (err) {
    if (apiStatus(err) !== 404) {
      progress.note(`cannot read router ${namespace}/${l.router}: ${fromApiError(err, { verb: 'get', resource: 'pods', namespace, name: l.router }).message}; leaving it (\`kubectl kt clean\` removes it when idle)`);
      return;
    }
  }
  if (others > 0) {
    progress.note(`${others} other session(s) still route through ${namespace}/${l.router}; leaving it`);
    return;
  }
  // The router's Secret names another router: a developer who found this one
  // leaving or gone made a new one, and the Service is that takeover's now.
  const newer = await readRouterSecret(api, namespace, service).then((s) => s?.metadata?.annotations?.[ANNOTATIONS.routerPod], () => undefined);
  if (newer !== undefined && newer !== l.router) {
    progress.note(`service ${namespace}/${service} is held through a newer router, ${namespace}/${newer}; leaving it`);
    return;
  }
  await restoreSelectorOnly(api, namespace, service).catch((err: unknown) => debug(`restoring the selector: ${(err as Error).message}`));
  await waitEndpoints(c, l.routerIp, 'without');
  const done = progress.step(`giving service ${namespace}/${service} back to its pods (the router drains)`);
  for (let attempt = 0; ; attempt++) {
    try {
      await restoreService(api, { namespace, name: service }, { dryRun: false, strict: false, drain: !l.gone, router: l.router });
      done();
      return;
    } catch (err) {
      // Another session restoring at the same moment (the guarded patch's
      // test op fails: 422, or a write conflict: 409): read again.
      if (attempt < 3 && isRace(err)) continue;
      progress.note(`could not restore service ${namespace}/${service}: ${toKtError(err).message}; run \`kubectl kt recover svc/${service}\``);
      return;
    }
  }
}
