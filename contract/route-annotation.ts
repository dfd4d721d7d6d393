// The per-session route annotation on a router pod (ANNOTATIONS.routes +
// `.<session>`): the plugin of the session that holds the routes writes it
// with every heartbeat; every plugin's `status`, `clean` and dashboard read
// it (plugin/src/status/model.ts). JSON; typed on both ends here, and read
// leniently, since anyone who may patch the pod can write it.
import type { HeaderMatch } from './protocol.ts';

/**
 * What the router counted for one session's mesh routes over its count
 * window (proxy-image/src/router/counters.ts), as of `at` (the session's
 * last heartbeat): per Service port, the requests the route took, those that
 * carried its header or baggage key with another value, those that carried
 * neither, and the port's requests and untagged requests overall.
 */
export interface RouteTraffic {
  windowSeconds: number;
  at: string;
  ports: { servicePort: number; matched: number; otherValue: number; untagged: number; requests: number; portUntagged: number }[];
}

export interface RouteAnnotation {
  /** user@host of the laptop. */
  owner: string;
  kind: 'exchange' | 'mesh';
  /** RFC 3339 times: the session's start and its last heartbeat. */
  since: string;
  heartbeat: string;
  /** The session's first route: its Service port, rules and laptop port (what status shows). */
  servicePort?: number;
  headers?: HeaderMatch[];
  localPort?: number;
  /** Mesh only: the router's counts, refreshed with the heartbeat. */
  traffic?: RouteTraffic;
}

export function encodeRouteAnnotation(a: RouteAnnotation): string {
  return JSON.stringify(a);
}

/** Reads an annotation; undefined when it is not JSON. Missing or mistyped fields read as unknown, not as an error. */
export function decodeRouteAnnotation(text: string): RouteAnnotation | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const r = v as Partial<Record<keyof RouteAnnotation, unknown>>;
  const traffic = r.traffic as Partial<RouteTraffic> | undefined;
  return {
    owner: String(r.owner ?? 'unknown'),
    kind: r.kind === 'mesh' ? 'mesh' : 'exchange',
    since: String(r.since ?? ''),
    heartbeat: String(r.heartbeat ?? ''),
    ...(typeof r.servicePort === 'number' ? { servicePort: r.servicePort } : {}),
    ...(Array.isArray(r.headers) ? { headers: r.headers as HeaderMatch[] } : {}),
    ...(typeof r.localPort === 'number' ? { localPort: r.localPort } : {}),
    ...(traffic && typeof traffic === 'object' && Array.isArray(traffic.ports) ? { traffic: traffic as RouteTraffic } : {}),
  };
}
