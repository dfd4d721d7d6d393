// The one picture of who does what, built from the objects kubectl-kt
// created (found by the label and annotation names of contract/protocol.ts
// alone). `status`, `clean` and the dashboard all read it; the function is
// pure, so every rule here is tested without a cluster.
import { ANNOTATIONS, LABELS, MANAGED_BY, ORIGIN_SUFFIX } from '../../../contract/protocol.ts';
import { decodeRouteAnnotation, type RouteAnnotation } from '../../../contract/route-annotation.ts';

export type { RouteTraffic } from '../../../contract/route-annotation.ts';

export interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
}

export interface PodLike {
  metadata?: Meta;
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface ServiceLike {
  metadata?: Meta;
  spec?: { selector?: Record<string, string>; clusterIP?: string; ports?: { port: number; name?: string; targetPort?: number | string }[] };
}

/** A route a developer holds on a shared router (one annotation per session). */
export interface RouteInfo extends RouteAnnotation {
  session: string;
  heartbeatAgeSeconds: number;
  stale: boolean;
}

export interface SessionInfo {
  namespace: string;
  kind: string;
  session: string;
  owner: string;
  since: string;
  heartbeat: string;
  heartbeatAgeSeconds: number;
  /** The heartbeat is older than the stale limit: the laptop is gone. */
  stale: boolean;
  pod: string;
  phase: string;
  /** The Service a preview publishes, or an exchange/mesh targets. */
  target?: string;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  state: 'exchanged' | 'meshed' | 'exchanged+meshed' | 'taken-over' | 'previewed';
  router?: { pod: string; phase: string; ready: boolean };
  originalSelector?: Record<string, string>;
  routes: RouteInfo[];
  /** A preview's owner and session. */
  owner?: string;
  session?: string;
}

export interface StatusReport {
  generatedAt: string;
  namespaces: string[] | 'all';
  sessions: SessionInfo[];
  services: ServiceInfo[];
}

/** Prefix of the per-session route annotations on a router pod: kt.dev/route.<session>. */
export const ROUTE_ANNOTATION_PREFIX = `${ANNOTATIONS.routes}.`;

/** Sessions renew their heartbeat every 10 s; three missed beats make one stale. */
export const STALE_AFTER_SECONDS = 45;

function ageSeconds(iso: string | undefined, now: number): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? Math.max(0, Math.round((now - t) / 1000)) : Number.POSITIVE_INFINITY;
}

function isManaged(m: Meta | undefined): boolean {
  return m?.labels?.[LABELS.managedBy] === MANAGED_BY;
}

export function parseRoutes(annotations: Record<string, string> | undefined, now: number): RouteInfo[] {
  const out: RouteInfo[] = [];
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (!k.startsWith(ROUTE_ANNOTATION_PREFIX)) continue;
    // An annotation someone else wrote by hand that is not JSON: not ours to interpret.
    const r = decodeRouteAnnotation(v);
    if (!r) continue;
    const age = ageSeconds(r.heartbeat, now);
    out.push({
      session: k.slice(ROUTE_ANNOTATION_PREFIX.length),
      ...r,
      heartbeatAgeSeconds: age,
      stale: age > STALE_AFTER_SECONDS,
    });
  }
  return out.sort((a, b) => a.since.localeCompare(b.since));
}

export function buildStatus(input: { pods: PodLike[]; services: ServiceLike[]; now: number; namespaces: string[] | 'all' }): StatusReport {
  const { now } = input;
  const sessions: SessionInfo[] = [];
  const services: ServiceInfo[] = [];
  const routers = new Map<string, PodLike>();

  for (const pod of input.pods) {
    const m = pod.metadata;
    if (!isManaged(m) || m?.deletionTimestamp) continue;
    const role = m?.labels?.[LABELS.role];
    const ns = m?.namespace ?? '';
    if (role === 'router') {
      const target = m?.labels?.[LABELS.target];
      if (target) routers.set(`${ns}/${target}`, pod);
      continue;
    }
    const hb = m?.annotations?.[ANNOTATIONS.heartbeat] ?? '';
    const age = ageSeconds(hb, now);
    sessions.push({
      namespace: ns,
      kind: m?.annotations?.[ANNOTATIONS.kind] ?? role ?? 'unknown',
      session: m?.labels?.[LABELS.session] ?? '',
      owner: m?.annotations?.[ANNOTATIONS.owner] ?? 'unknown',
      since: m?.annotations?.[ANNOTATIONS.since] ?? '',
      heartbeat: hb,
      heartbeatAgeSeconds: age,
      stale: age > STALE_AFTER_SECONDS,
      pod: m?.name ?? '',
      phase: pod.status?.phase ?? 'Unknown',
      target: m?.labels?.[LABELS.target],
    });
  }

  for (const svc of input.services) {
    const m = svc.metadata;
    const ns = m?.namespace ?? '';
    const name = m?.name ?? '';
    if (name.endsWith(ORIGIN_SUFFIX) && isManaged(m)) continue;
    const original = m?.annotations?.[ANNOTATIONS.originalSelector];
    if (original !== undefined) {
      const router = routers.get(`${ns}/${name}`);
      const routes = parseRoutes(router?.metadata?.annotations, now);
      const kinds = new Set(routes.filter((r) => !r.stale).map((r) => r.kind));
      const state: ServiceInfo['state'] = kinds.has('exchange') && kinds.has('mesh') ? 'exchanged+meshed' : kinds.has('mesh') ? 'meshed' : kinds.has('exchange') ? 'exchanged' : 'taken-over';
      let originalSelector: Record<string, string> | undefined;
      try {
        originalSelector = JSON.parse(original) as Record<string, string>;
      } catch {
        originalSelector = undefined;
      }
      services.push({
        namespace: ns,
        name,
        state,
        router: router ? { pod: router.metadata?.name ?? '', phase: router.status?.phase ?? 'Unknown', ready: router.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false } : undefined,
        originalSelector,
        routes,
      });
    } else if (isManaged(m) && m?.annotations?.[ANNOTATIONS.kind] === 'preview') {
      services.push({
        namespace: ns,
        name,
        state: 'previewed',
        routes: [],
        owner: m?.annotations?.[ANNOTATIONS.owner],
        session: m?.labels?.[LABELS.session],
      });
    }
  }
  sessions.sort((a, b) => `${a.namespace}/${a.since}`.localeCompare(`${b.namespace}/${b.since}`));
  services.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return { generatedAt: new Date(now).toISOString(), namespaces: input.namespaces, sessions, services };
}
