// The contract shared by the plugin and the proxy: names, ports, versions,
// and the names of the objects the plugin leaves in the cluster (which every
// plugin version on every laptop must read alike). No I/O here, so both
// halves (and the tests) can import it freely. The wire codecs that use
// these names live next to it in contract/ (ARCHITECTURE.md, "The contract").

declare const KT_VERSION: string | undefined;

/** The release version; esbuild defines KT_VERSION, source runs see "0.0.0-dev". */
export const VERSION: string = typeof KT_VERSION === 'string' ? KT_VERSION : '0.0.0-dev';

/**
 * Bumped when plugin and proxy stop understanding each other (SSH request
 * names, env names, router registration format). The proxy refuses a client
 * whose protocol version differs.
 */
export const PROTOCOL_VERSION = 1;

/** The proxy image this plugin version publishes and runs by default. */
export const DEFAULT_IMAGE = `ghcr.io/kubectl-kt/kt-proxy:${VERSION}`;

/** Prefix of every label and annotation the plugin writes. */
export const DOMAIN = 'kt.dev';

export const LABELS = {
  /** Always `kubectl-kt` on objects the plugin created. */
  managedBy: 'app.kubernetes.io/managed-by',
  /** shadow | router | origin | preview */
  role: `${DOMAIN}/role`,
  /** The session id (random, per plugin run). */
  session: `${DOMAIN}/session`,
  /** The Service a router, origin Service or preview belongs to. */
  target: `${DOMAIN}/target`,
} as const;

export const MANAGED_BY = 'kubectl-kt';

export const ANNOTATIONS = {
  /** user@host of the laptop that created the object. */
  owner: `${DOMAIN}/owner`,
  /** RFC 3339 time, renewed while the session lives. */
  heartbeat: `${DOMAIN}/heartbeat`,
  /** RFC 3339 time the session started. */
  since: `${DOMAIN}/since`,
  /** JSON of the Service's selector before a router took it over. */
  originalSelector: `${DOMAIN}/original-selector`,
  /** The workload's replica count before `exchange --mode scale`. */
  originalReplicas: `${DOMAIN}/original-replicas`,
  /** On a workload scaled to 0: the Service whose exchange did it. */
  scaledFor: `${DOMAIN}/scaled-for`,
  /** What the session does: connect | exchange | mesh | preview. */
  kind: `${DOMAIN}/kind`,
  /** JSON list of the routes a session holds (for status). */
  routes: `${DOMAIN}/routes`,
  /** On a router's Secret: the name of the router pod it belongs to (joining sessions wait for it). */
  routerPod: `${DOMAIN}/router-pod`,
  /**
   * On a taken-over Service that did not publish not-ready addresses: "false",
   * the value to put back. While a router holds it the Service publishes them,
   * so the router pod stays its endpoint while its router container restarts
   * and the standby serves (proxy-image/src/router/standby.ts).
   */
  originalPublishNotReady: `${DOMAIN}/original-publish-not-ready`,
} as const;

/** What a proxy process is: a pod's role, or the router pod's second container (`standby`). */
export type Role = 'shadow' | 'router' | 'standby';
export const ROLES: readonly Role[] = ['shadow', 'router', 'standby'];

export const PORTS = {
  /** SSH server, on the pod's loopback only (reached via pods/portforward). */
  ssh: 2222,
  /** DNS forwarder, on the pod's loopback (reached over direct-tcpip). */
  dns: 10053,
  /** Router control/health endpoint (readiness probe). */
  routerHealth: 8081,
} as const;

/** Environment variables the proxy reads. */
export const ENV = {
  role: 'KT_ROLE',
  sshPort: 'KT_SSH_PORT',
  dnsPort: 'KT_DNS_PORT',
  /** Newline-separated OpenSSH public keys allowed to log in. */
  authorizedKeys: 'KT_AUTHORIZED_KEYS',
  /** Exit after this many seconds with no SSH client connected. */
  idleExitSeconds: 'KT_IDLE_EXIT_SECONDS',
  /** PEM/OpenSSH host key; generated when absent. */
  hostKey: 'KT_HOST_KEY',
  debug: 'KT_DEBUG',
} as const;

/** Exit a proxy that has had no SSH client for this long (crash cleanup). */
export const DEFAULT_IDLE_EXIT_SECONDS = 600;

/** The SSH user name the plugin logs in as; the server accepts only this one. */
export const SSH_USER = 'kt';

/** Global-request names beyond RFC 4254 (prefixed as RFC 4250 §4.6.1 asks). */
export const SSH_REQUESTS = {
  /** Register a mesh/exchange route on the router for this connection's lifetime. */
  route: 'kt-route@kt.dev',
  /** Cancel one route of this connection early: payload { id }. */
  routeCancel: 'kt-route-cancel@kt.dev',
  /** Ask the proxy for its version and protocol version. */
  hello: 'kt-hello@kt.dev',
} as const;

/** Default header a mesh uses when the user names none. */
export const DEFAULT_MESH_HEADER = 'x-kt-version';

// ---- Router (exchange and mesh) ------------------------------------------------
//
// One router pod per Service, shared by every developer who exchanges or
// meshes it. It listens on the Service's target ports on the pod IP and sends
// each connection (exchange) or each request (mesh) either to a developer's
// laptop — over a `forwarded-tcpip` channel of the SSH connection that
// registered the route — or to the origin Service, which keeps the original
// selector. Routes live exactly as long as the SSH connection that made them.
//
// Developers authenticate to a shared router with the key pair kept in the
// router's Secret (ROUTER_SECRET_KEYS): whoever may read that Secret and
// port-forward to the pod may register routes; Kubernetes RBAC is the gate.

/** Extra env the router role reads. */
export const ROUTER_ENV = {
  /** JSON RouterPort[]: the ports to serve and where the origin is. */
  ports: 'KT_ROUTER_PORTS',
  /** The origin Service's DNS name (e.g. web-kt-origin.shop.svc.cluster.local). */
  origin: 'KT_ROUTER_ORIGIN',
  /** The health/status port; default PORTS.routerHealth (tests set 0 for a free one). */
  healthPort: 'KT_ROUTER_HEALTH_PORT',
  /** Seconds of traffic the per-route counters cover (default 60); the plugin passes KT_COUNT_WINDOW_SECONDS on (tests shorten it). */
  countWindow: 'KT_ROUTER_COUNT_WINDOW_SECONDS',
  /** Memory limit in MiB the router guards against (proxy-image/src/router/pressure.ts); default the container's cgroup limit. */
  memoryLimitMb: 'KT_ROUTER_MEMORY_LIMIT_MB',
  /** After SIGTERM, exit once no connection was new for this many ms (proxy-image/src/router/drain.ts). */
  drainQuietMs: 'KT_ROUTER_DRAIN_QUIET_MS',
  /** After SIGTERM, exit at the latest after this many ms: inside the pod's grace period. */
  drainMaxMs: 'KT_ROUTER_DRAIN_MAX_MS',
  /**
   * The abstract unix socket (in the pod's network namespace) where the
   * router pod's standby container waits for the router (proxy-image/src/router/standby.ts).
   * Unset: no standby (a router started alone, as in the unit tests).
   */
  standby: 'KT_ROUTER_STANDBY',
} as const;

/** The standby's socket name in every router pod (one router per pod, one pod network namespace each). */
export const STANDBY_SOCKET = 'kt-router-standby';

/** The plugin's environment variable a new router's count window comes from (documented in the README; tests set it). */
export const COUNT_WINDOW_ENV = 'KT_COUNT_WINDOW_SECONDS';

/**
 * How a router leaves (proxy-image/src/router/drain.ts). Its pod's grace
 * period; the drain ends 3 s before it. And the quiet period: after SIGTERM
 * it exits once no connection was new for this long. Longer than Linux's
 * SYN retransmission back-off (again after 1 s, 2 s and 4 s later: 7 s after
 * the first try), so a client whose SYN was lost on its way here just
 * before, and whose conntrack entry still points here, finds the router when
 * it tries again. A SYN that never arrived is no new connection to the
 * router, so the quiet period must outlast the retransmissions themselves:
 * with 2 s, the mesh E2E's 20 cycles on a machine at load 12-15 lost 1 of
 * 102,567 requests (EHOSTUNREACH); with 4 s, a clean-clone CI run lost 8 of
 * 364,462 (7 EHOSTUNREACH, 1 timeout).
 */
export const ROUTER_DRAIN = { graceSeconds: 30, quietMs: 8000, maxMs: 27_000 } as const;

export interface RouterPort {
  /** Service port name, if any. */
  name?: string;
  /** The Service port number (what clients dial on the ClusterIP). */
  servicePort: number;
  /** The port the router listens on in its pod (the Service's targetPort number). */
  listenPort: number;
  /** The origin Service's port to fall back to (same as servicePort). */
  originPort: number;
  /** 'TCP' only; UDP ports are not routed. */
  protocol?: 'TCP';
}

/**
 * A condition of a mesh route; all of a route's conditions must match. The
 * baggage form matches a member of the W3C `baggage` header (KEY whose
 * percent-decoded value is VALUE). It has no `name`, so a router that does
 * not know it refuses the route instead of reading it as a header rule.
 */
export type HeaderMatch = { name: string; value: string } | { name: string; regex: string } | BaggageMatch;
export interface BaggageMatch { baggage: string; value: string }

/** The request header W3C Baggage travels in (https://www.w3.org/TR/baggage/). */
export const BAGGAGE_HEADER = 'baggage';

/** One condition as people read it (status, conflicts, logs): `x-kt-version=alice`, `x-user~=^a`, `baggage kt=alice`. */
export function describeMatch(m: HeaderMatch): string {
  if ('baggage' in m) return `${BAGGAGE_HEADER} ${m.baggage}=${m.value}`;
  return 'regex' in m ? `${m.name.toLowerCase()}~=${m.regex}` : `${m.name.toLowerCase()}=${m.value}`;
}

/** The JSON payload of the `kt-route@kt.dev` global request. */
export interface RouteRequest {
  protocol: number;
  kind: 'exchange' | 'mesh';
  /** The Service port this route takes (servicePort of a RouterPort). */
  servicePort: number;
  /** Mesh only: the header conditions; exchange has none. */
  headers?: HeaderMatch[];
  /** user@host, shown in conflicts and status. */
  owner: string;
  session: string;
}

/** The router's reply to an accepted route: forwarded-tcpip channels for it carry this address. */
export interface RouteReply {
  id: string;
  /** forwarded-tcpip "address that was connected" for this route's channels. */
  address: string;
}

/** The failure reply (ssh2 global requests can carry no data on failure, so the router sends success with this instead). */
export interface RouteRefusal {
  refused: string;
  /**
   * Why, for the plugin to pick its error code: `taken` (someone holds the
   * slot), `limit` (a cap on routes is reached), `invalid` (the request
   * itself is wrong: an unknown route kind, a port the router does not
   * serve, a regex the engine cannot run, a bad header name), `closing`
   * (the request came as its SSH connection was closing: nothing is wrong
   * with the route, the tunnel is going; the plugin says so, not taken),
   * `leaving` (the router drains before its exit, its pod being deleted: a
   * route on it would not outlive it; a developer who was joining starts
   * again from the router's Secret). Absent from
   * routers older than this field: the plugin reads it as taken. A code this
   * plugin does not know (a newer router's) is read as invalid, never taken.
   */
  code?: RouteRefusalCode;
  /**
   * With `taken`: the session id that holds the slot. A session that
   * reconnects finds its own old connection still holding it for a moment
   * (the router has not yet seen that connection go) and asks again; any
   * other holder is the developer's error.
   */
  heldBy?: string;
}

export type RouteRefusalCode = 'taken' | 'limit' | 'invalid' | 'closing' | 'leaving';
export const ROUTE_REFUSAL_CODES: readonly RouteRefusalCode[] = ['taken', 'limit', 'invalid', 'closing', 'leaving'];

/** Suffix of the origin Service's name: <service>-kt-origin. */
export const ORIGIN_SUFFIX = '-kt-origin';

/** Secret holding a shared router's client key pair: kt-router-<service>. */
export const ROUTER_SECRET_PREFIX = 'kt-router-';
export const ROUTER_SECRET_KEYS = { privateKey: 'ssh-privatekey', publicKey: 'ssh-publickey', hostKey: 'ssh-hostkey', hostPublicKey: 'ssh-hostpublickey' } as const;
