// What Endpoints and EndpointSlices say for a Service, without the store:
// pkg/controller/endpoint and pkg/controller/endpointslice reduced to one
// node. Pure.
import { canonicalJson } from './hash.ts';
import { isFinished, isReady, isTerminating, selectsMap } from './meta.ts';
import type { Pod, Service, ServicePort } from './types.ts';

export interface ObjectRef {
  kind: 'Pod';
  namespace: string;
  name: string;
  uid: string;
}

export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef: ObjectRef;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface SliceEndpoint {
  addresses: string[];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
  hostname?: string;
  nodeName?: string;
  targetRef: ObjectRef;
}

export interface SlicePort {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

export interface SliceContent {
  addressType: 'IPv4' | 'IPv6';
  endpoints: SliceEndpoint[];
  ports: SlicePort[];
}

/** A Service the endpoint controllers manage: one with a non-empty selector. */
export function hasSelector(svc: Service): svc is Service & { spec: { selector: Record<string, string> } } {
  return Object.keys(svc.spec.selector ?? {}).length > 0;
}

/** podutil.FindPort: a number as is, a name looked up among the pod's container ports of that protocol. */
export function resolveTargetPort(sp: ServicePort, pod: Pod): number | undefined {
  const tp = sp.targetPort ?? sp.port;
  if (typeof tp === 'number') return tp;
  const protocol = sp.protocol ?? 'TCP';
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === tp && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
  }
  return undefined;
}

/** Pods a Service's endpoints list: selected, with an IP, not finished; terminating only when not-ready ones are published. */
export function podsFor(svc: Service, pods: Pod[]): Pod[] {
  if (!hasSelector(svc)) return [];
  return pods.filter(
    (p) =>
      p.metadata.namespace === svc.metadata.namespace &&
      selectsMap(svc.spec.selector, p.metadata.labels) &&
      !!p.status?.podIP &&
      !isFinished(p),
  );
}

function ref(p: Pod): ObjectRef {
  return { kind: 'Pod', namespace: p.metadata.namespace ?? '', name: p.metadata.name, uid: p.metadata.uid ?? '' };
}

/** A pod's DNS hostname in this Service (pod.spec.hostname under subdomain = the Service's name). */
function hostnameIn(svc: Service, p: Pod): string | undefined {
  return p.spec.hostname && p.spec.subdomain === svc.metadata.name ? p.spec.hostname : undefined;
}

function portsFor<T>(svc: Service, p: Pod, make: (sp: ServicePort, port: number) => T): T[] {
  const out: T[] = [];
  for (const sp of svc.spec.ports ?? []) {
    const port = resolveTargetPort(sp, p);
    // A named port this pod does not have: the pod serves the others only.
    if (port !== undefined) out.push(make(sp, port));
  }
  return out;
}

function byIp(a: { ip?: string; addresses?: string[]; targetRef: ObjectRef }, b: typeof a): number {
  const ka = a.ip ?? a.addresses?.[0] ?? '';
  const kb = b.ip ?? b.addresses?.[0] ?? '';
  return ka.localeCompare(kb, 'en', { numeric: true }) || a.targetRef.name.localeCompare(b.targetRef.name);
}

/** The Endpoints subsets: pods grouped by the ports they serve, ready vs notReady addresses. */
export function planEndpoints(svc: Service, pods: Pod[]): EndpointSubset[] {
  const publishNotReady = svc.spec.publishNotReadyAddresses === true;
  const groups = new Map<string, { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
  for (const p of podsFor(svc, pods)) {
    if (isTerminating(p) && !publishNotReady) continue;
    const ports = portsFor(svc, p, (sp, port): EndpointPort => ({
      ...(sp.name ? { name: sp.name } : {}),
      port,
      protocol: sp.protocol ?? 'TCP',
      ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
    }));
    if ((svc.spec.ports ?? []).length > 0 && ports.length === 0) continue;
    const key = canonicalJson(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ports, ready: [], notReady: [] }));
    const hostname = hostnameIn(svc, p);
    const addr: EndpointAddress = {
      ip: p.status?.podIP ?? '',
      ...(hostname ? { hostname } : {}),
      ...(p.spec.nodeName ? { nodeName: p.spec.nodeName } : {}),
      targetRef: ref(p),
    };
    (publishNotReady || isReady(p) ? g.ready : g.notReady).push(addr);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, g]) => ({
      ...(g.ready.length > 0 ? { addresses: g.ready.sort(byIp) } : {}),
      ...(g.notReady.length > 0 ? { notReadyAddresses: g.notReady.sort(byIp) } : {}),
      ...(g.ports.length > 0 ? { ports: g.ports } : {}),
    }));
}

/**
 * EndpointSlice contents, one per (address family, port set). Unlike
 * Endpoints, slices keep terminating pods, marked so (ready false, serving as
 * the pod's readiness) — what proxies use to drain connections gracefully.
 */
export function planSlices(svc: Service, pods: Pod[]): SliceContent[] {
  const publishNotReady = svc.spec.publishNotReadyAddresses === true;
  const groups = new Map<string, SliceContent>();
  for (const p of podsFor(svc, pods)) {
    const ip = p.status?.podIP ?? '';
    const addressType = ip.includes(':') ? 'IPv6' : 'IPv4';
    const ports = portsFor(svc, p, (sp, port): SlicePort => ({
      name: sp.name ?? '',
      port,
      protocol: sp.protocol ?? 'TCP',
      ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}),
    }));
    if ((svc.spec.ports ?? []).length > 0 && ports.length === 0) continue;
    const key = addressType + canonicalJson(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { addressType, endpoints: [], ports }));
    const terminating = isTerminating(p);
    const serving = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    const hostname = hostnameIn(svc, p);
    g.endpoints.push({
      addresses: [ip],
      conditions: { ready: publishNotReady || (serving && !terminating), serving: publishNotReady || serving, terminating },
      ...(hostname ? { hostname } : {}),
      ...(p.spec.nodeName ? { nodeName: p.spec.nodeName } : {}),
      targetRef: ref(p),
    });
  }
  const out = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, g]) => ({ ...g, endpoints: g.endpoints.sort(byIp) }));
  // The controller keeps one empty placeholder slice for a Service with no endpoints.
  return out.length > 0 ? out : [{ addressType: 'IPv4', endpoints: [], ports: [] }];
}
