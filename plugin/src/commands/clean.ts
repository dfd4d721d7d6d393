// `kubectl kt clean`: remove what dead sessions left. A session is dead when
// its heartbeat is stale (the laptop stopped renewing it) or its proxy pod
// ended. Found by the protocol module's labels and annotations alone.
//   - connect/preview proxy pods of dead sessions are deleted, with their
//     preview Services;
//   - a taken-over Service whose router holds no live route is restored
//     (selector first, then the router goes — ARCHITECTURE.md rule 1);
//   - a router pod no takeover holds (its Service's router Secret does not
//     name it), with no live route, older than a set-up takes, is deleted;
//   - --local also undoes what a crashed `connect --mode route` changed here.
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../../../contract/protocol.ts';
import type { OptionsOf } from '../cli.ts';
import { cleanLocal } from '../connect/resolver.ts';
import type { Deps } from '../deps.ts';
import { apiStatus, fromApiError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { restoreService } from '../kube/restore.ts';
import { fetchStatus } from '../status/fetch.ts';
import { parseRoutes, ROUTE_ANNOTATION_PREFIX } from '../status/model.ts';
import { readRouterSecret } from '../kube/takeover-apply.ts';
import { annotatePod } from '../kube/pods.ts';

export interface CleanResult {
  dryRun: boolean;
  actions: string[];
}

export async function run(opts: OptionsOf<'clean'>, deps: Deps): Promise<CleanResult> {
  const actions: string[] = [];
  if (opts.local) {
    actions.push(...(await cleanLocal({ dryRun: opts.dryRun })).map((a) => `local: ${a}`));
  }
  const target = await deps.kube();
  actions.push(...(await cleanNamespace(await deps.api(), target.namespace, { dryRun: opts.dryRun, now: deps.clock.now() })));
  return { dryRun: opts.dryRun, actions };
}

/** The cluster part of clean, for one namespace; the dashboard's Clean button runs it too. */
export async function cleanNamespace(api: KubeApi, namespace: string, opts: { dryRun: boolean; now: number }): Promise<string[]> {
  const actions: string[] = [];
  const report = await fetchStatus(api, { namespace, all: false }, opts.now);
  const dead = new Set<string>();
  for (const s of report.sessions) {
    if (!s.stale && s.phase !== 'Failed' && s.phase !== 'Succeeded') continue;
    dead.add(s.session);
    actions.push(`delete ${s.kind} pod ${s.namespace}/${s.pod} (owner ${s.owner}, heartbeat ${Number.isFinite(s.heartbeatAgeSeconds) ? `${s.heartbeatAgeSeconds}s ago` : 'never'}, ${s.phase})`);
    if (!opts.dryRun) await deletePod(api, s.namespace, s.pod);
  }
  const live = new Set(report.sessions.filter((s) => !dead.has(s.session)).map((s) => s.session));
  for (const svc of report.services) {
    if (svc.state === 'previewed') {
      if (svc.session && live.has(svc.session)) continue;
      actions.push(`delete preview service ${svc.namespace}/${svc.name} (owner ${svc.owner ?? 'unknown'})`);
      if (!opts.dryRun) await deleteService(api, svc.namespace, svc.name);
      continue;
    }
    if (svc.routes.some((r) => !r.stale) && svc.router) {
      // The router already dropped a dead laptop's routes with its SSH
      // connection; only their status annotations are left to remove.
      const stale = svc.routes.filter((r) => r.stale);
      if (stale.length === 0) continue;
      actions.push(...stale.map((r) => `forget the stale ${r.kind} route of ${r.owner} on ${svc.namespace}/${svc.name}`));
      if (!opts.dryRun) {
        await annotatePod(api, { namespace: svc.namespace, name: svc.router.pod }, Object.fromEntries(stale.map((r) => [`${ROUTE_ANNOTATION_PREFIX}${r.session}`, null])));
      }
      continue;
    }
    const r = await restoreService(api, { namespace: svc.namespace, name: svc.name }, { dryRun: opts.dryRun, strict: false });
    actions.push(...r.actions);
  }
  actions.push(...await cleanOrphanRouters(api, namespace, opts));
  return actions;
}

/** A router pod younger than this may be one a developer is still setting up: clean leaves it. */
export const ROUTER_SETUP_GRACE_MS = 120_000;

/**
 * Router pods no takeover holds: the router Secret of their Service names
 * another router or there is none (a newer router replaced them, or the
 * Service was given back while developers left and came at the same
 * moment), none of their routes is live, and they are older than a set-up
 * takes. The Service's selector is not theirs, so only the pod goes.
 */
async function cleanOrphanRouters(api: KubeApi, namespace: string, opts: { dryRun: boolean; now: number }): Promise<string[]> {
  const pods = await api.core.listNamespacedPod({ namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY},${LABELS.role}=router` }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'pods', namespace });
  });
  const actions: string[] = [];
  for (const p of pods.items) {
    const m = p.metadata ?? {};
    const name = m.name ?? '';
    const target = m.labels?.[LABELS.target];
    const created = m.creationTimestamp ? new Date(m.creationTimestamp).getTime() : Number.NaN;
    if (m.deletionTimestamp || !(opts.now - created > ROUTER_SETUP_GRACE_MS)) continue;
    if (parseRoutes(m.annotations, opts.now).some((r) => !r.stale)) continue;
    if (target !== undefined && (await readRouterSecret(api, namespace, target))?.metadata?.annotations?.[ANNOTATIONS.routerPod] === name) continue;
    actions.push(`delete router pod ${namespace}/${name} (no takeover of service ${namespace}/${target ?? '?'} holds it)`);
    if (!opts.dryRun) await deletePod(api, namespace, name);
  }
  return actions;
}

async function deletePod(api: KubeApi, namespace: string, name: string): Promise<void> {
  await api.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch((err: unknown) => {
    if (apiStatus(err) !== 404) throw fromApiError(err, { verb: 'delete', resource: 'pods', namespace, name });
  });
}

async function deleteService(api: KubeApi, namespace: string, name: string): Promise<void> {
  const { core } = api;
  // Only ours: a preview Service carries the managed-by label.
  const svc = await core.readNamespacedService({ namespace, name }).catch(() => undefined);
  if (svc?.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY) return;
  await core.deleteNamespacedService({ namespace, name }).catch((err: unknown) => {
    if (apiStatus(err) !== 404) throw fromApiError(err, { verb: 'delete', resource: 'services', namespace, name });
  });
}

export function text(data: unknown): string {
  const r = data as CleanResult;
  if (r.actions.length === 0) return 'nothing to clean';
  const mark = r.dryRun ? 'would' : '✓';
  return r.actions.map((a) => `${mark} ${a}`).join('\n');
}
