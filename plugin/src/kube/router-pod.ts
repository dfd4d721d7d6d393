// The router pod's own settings: its ports clear of the ones it serves, its
// env, its readiness probe and grace period. The pod itself is built by
// routerPod (kube/shadow.ts holds what it shares with a shadow pod).
import { ENV, LABELS, PORTS, ROUTER_DRAIN, ROUTER_ENV, STANDBY_SOCKET, type RouterPort } from '../../../contract/protocol.ts';
import { PROXY_CONTAINER_SECURITY, proxyPodOf, type ProxyPodSpec } from './shadow.ts';

/** The router's own ports: its SSH server (pod loopback) and its health endpoint (the readiness probe). */
export interface RouterOwnPorts {
  ssh: number;
  health: number;
}

/**
 * The router's own ports, clear of the ports it serves: a Service whose pods
 * listen on 8081 (or 2222) would otherwise collide with the router's health
 * endpoint (or SSH) and the router could not start. The defaults when free,
 * else the next free number.
 */
export function routerOwnPorts(routerPorts: readonly RouterPort[]): RouterOwnPorts {
  const taken = new Set(routerPorts.map((p) => p.listenPort));
  const free = (from: number): number => {
    let p = from;
    while (taken.has(p)) p++;
    taken.add(p);
    return p;
  };
  const ssh = free(PORTS.ssh);
  return { ssh, health: free(PORTS.routerHealth) };
}

/** The own ports of a running router, from its pod's env (routers made before they were chosen: the defaults). */
export function routerOwnPortsOf(pod: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } | undefined): RouterOwnPorts {
  const env = pod?.spec?.containers?.[0]?.env ?? [];
  const num = (name: string, dflt: number): number => {
    const v = Number(env.find((e) => e.name === name)?.value);
    return Number.isInteger(v) && v > 0 && v < 65536 ? v : dflt;
  };
  return { ssh: num(ENV.sshPort, PORTS.ssh), health: num(ROUTER_ENV.healthPort, PORTS.routerHealth) };
}

/**
 * The router pod's grace period: after SIGTERM it drains (unready, serving,
 * clients told to move) until no connection was new for a quiet period,
 * and exits by itself before the kubelet would SIGKILL it (ROUTER_DRAIN).
 */
export const ROUTER_GRACE_SECONDS = ROUTER_DRAIN.graceSeconds;

export function routerEnv(ports: readonly RouterPort[], originHost: string, own: RouterOwnPorts, countWindowSeconds?: number): Record<string, string> {
  return {
    [ROUTER_ENV.ports]: JSON.stringify(ports),
    [ROUTER_ENV.origin]: originHost,
    [ROUTER_ENV.healthPort]: String(own.health),
    [ROUTER_ENV.drainQuietMs]: String(ROUTER_DRAIN.quietMs),
    [ROUTER_ENV.drainMaxMs]: String(ROUTER_DRAIN.maxMs),
    [ROUTER_ENV.standby]: STANDBY_SOCKET,
    ...(countWindowSeconds ? { [ROUTER_ENV.countWindow]: String(countWindowSeconds) } : {}),
  };
}

export function routerReadiness(own: RouterOwnPorts): Record<string, unknown> {
  return { httpGet: { path: '/healthz', port: own.health }, periodSeconds: 1, timeoutSeconds: 1 };
}

/** V8 old-space cap of the standby: it keeps no routes, no SSH, and serves only while the router is down. */
export const STANDBY_HEAP_MB = 48;

/**
 * The router pod's second container (proxy-image/src/router/standby.ts):
 * the same image as the standby role, with what it needs of the router's
 * env — the ports, the origin, the drain — and none of its keys.
 */
export function standbyContainer(image: string, ports: readonly RouterPort[], originHost: string): Record<string, unknown> {
  const env: Record<string, string> = {
    [ENV.role]: 'standby',
    [ROUTER_ENV.ports]: JSON.stringify(ports),
    [ROUTER_ENV.origin]: originHost,
    [ROUTER_ENV.standby]: STANDBY_SOCKET,
    [ROUTER_ENV.drainQuietMs]: String(ROUTER_DRAIN.quietMs),
    [ROUTER_ENV.drainMaxMs]: String(ROUTER_DRAIN.maxMs),
    NODE_OPTIONS: `--max-old-space-size=${STANDBY_HEAP_MB}`,
  };
  return {
    name: 'kt-standby',
    image,
    env: Object.entries(env).map(([name, value]) => ({ name, value })),
    // Measured: 50.6 MiB idle, 1.17× a bare node (test/bench/memory.bench.ts); it serves only while the router restarts.
    resources: {
      requests: { cpu: '10m', memory: '64Mi' },
      limits: { memory: '128Mi' },
    },
    securityContext: PROXY_CONTAINER_SECURITY,
  };
}

export interface RouterPodSpec extends Omit<ProxyPodSpec, 'role' | 'kind' | 'ports'> {
  /** The Service the router stands in for. */
  service: string;
  routerPorts: readonly RouterPort[];
  /** The router container's ports (named like the Service's named targetPorts). */
  containerPorts: { name: string; containerPort: number; protocol: 'TCP' }[];
  /** Where a request no developer routes goes: the origin Service. */
  originHost: string;
  own: RouterOwnPorts;
  countWindowSeconds?: number;
}

/**
 * The router pod of a Service. Unlike a shadow, which is one session's (if
 * it dies, that session ends), a router is what a Service points at: when
 * its process dies (an OOM kill) the kubelet must start it again in the same
 * pod, with the same keys from its env, and every session registers its
 * routes on it again; meanwhile its standby container serves the Service's
 * ports, everything to the origin (standby.ts in proxy-image/src/router) —
 * otherwise the Service would be left with a failed pod as its only backend
 * (ARCHITECTURE.md rule 1).
 */
export function routerPod(s: RouterPodSpec): ReturnType<typeof proxyPodOf> {
  const { service, routerPorts, containerPorts, originHost, own, countWindowSeconds, ...base } = s;
  return proxyPodOf({ ...base, role: 'router', kind: 'router', labels: { ...base.labels, [LABELS.target]: service }, ports: containerPorts }, {
    restartPolicy: 'Always',
    env: routerEnv(routerPorts, originHost, own, countWindowSeconds),
    sshPort: own.ssh,
    readinessProbe: routerReadiness(own),
    terminationGracePeriodSeconds: ROUTER_GRACE_SECONDS,
    lowPorts: routerPorts.some((p) => p.listenPort < 1024),
    moreContainers: [standbyContainer(base.image, routerPorts, originHost)],
  });
}
