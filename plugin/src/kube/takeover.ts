// Taking a Service over for exchange and mesh, and giving it back.
//
// Pure planning first (router ports, the origin Service, the router pod, the
// selector patch, which exposed port is which Service port, the env file),
// then the I/O that applies it in the order ARCHITECTURE.md rule 1 asks: the origin
// Service and the router's Secret, then the router pod until it is Ready,
// and only then the Service's selector. One router per Service is shared by
// every developer: the Secret holds the client key pair (and the router's
// host key), so the next session reads it and connects to the same pod.
import type { KubeConfig, V1Deployment, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import {
  ANNOTATIONS, ENV, LABELS, MANAGED_BY, ORIGIN_SUFFIX, PORTS, ROUTER_DRAIN, ROUTER_ENV, ROUTER_SECRET_KEYS, ROUTER_SECRET_PREFIX, type RouterPort,
} from '../../../contract/protocol.ts';
import { apiStatus, fromApiError, ktError, type KtError } from '../errors.ts';
import type { WorkloadRef } from '../values.ts';
import { makeSessionKey, type KeyPair } from '../tunnel/index.ts';
import { pointer } from './restore.ts';

// ---- pure planning ---------------------------------------------------------------

export interface ServicePortLike {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

export interface ContainerPortLike {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface PortPlan {
  routerPorts: RouterPort[];
  /** The router container's ports: named like the Service's named targetPorts, so those resolve to the router too. */
  containerPorts: { name: string; containerPort: number; protocol: 'TCP' }[];
  /** Service ports that are not routed (UDP, SCTP). */
  skipped: string[];
}

/**
 * Router pod name, origin Service name and Secret name for a Service. Each
 * router pod gets a name of its own (the Secret names it), so a new router
 * never waits for an old one of the same name to finish terminating.
 */
export function routerName(service: string, instance: string): string {
  return `${ROUTER_SECRET_PREFIX}${service}-${instance}`.slice(0, 253);
}
export function originName(service: string): string {
  return `${service}${ORIGIN_SUFFIX}`;
}
export function secretName(service: string): string {
  return `${ROUTER_SECRET_PREFIX}${service}`;
}

/** The labels that select the router of a Service (the Service's selector while taken over). */
export function routerSelector(service: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: 'router', [LABELS.target]: service };
}

/**
 * The router's ports from the Service's ports: it listens on each targetPort
 * number (a named targetPort is looked up in the original pods' container
 * ports) and falls back to the same Service port on the origin Service.
 */
export function planPorts(service: string, ports: readonly ServicePortLike[], podPorts: readonly ContainerPortLike[]): PortPlan {
  const routerPorts: RouterPort[] = [];
  const containerPorts: PortPlan['containerPorts'] = [];
  const skipped: string[] = [];
  const listening = new Map<number, number>();
  for (const p of ports) {
    if ((p.protocol ?? 'TCP') !== 'TCP') {
      skipped.push(`${p.port}/${p.protocol}`);
      continue;
    }
    let listen: number;
    let portName: string;
    if (typeof p.targetPort === 'string' && !/^[0-9]+$/.test(p.targetPort)) {
      const named = podPorts.find((c) => c.name === p.targetPort && (c.protocol ?? 'TCP') === 'TCP');
      if (!named) throw ktError('KT_ERR_UNRESOLVED_PORT', { service, port: p.port, targetPort: p.targetPort });
      listen = named.containerPort;
      portName = p.targetPort;
    } else {
      listen = p.targetPort === undefined ? p.port : Number(p.targetPort);
      portName = `kt-${listen}`;
    }
    const other = listening.get(listen);
    if (other !== undefined) {
      // Two Service ports on one pod port: the router could not tell them apart.
      throw ktError('KT_ERR_UNRESOLVED_PORT', { service, port: p.port, targetPort: String(listen), sharedWith: other });
    }
    listening.set(listen, p.port);
    routerPorts.push({ ...(p.name ? { name: p.name } : {}), servicePort: p.port, listenPort: listen, originPort: p.port, protocol: 'TCP' });
    if (!containerPorts.some((c) => c.name === portName)) containerPorts.push({ name: portName, containerPort: listen, protocol: 'TCP' });
  }
  return { routerPorts, containerPorts, skipped };
}

/** The origin Service: the same ports, the original selector, owned by us. */
export function originService(svc: { name: string; namespace: string; ports: readonly ServicePortLike[]; selector: Record<string, string> }): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: originName(svc.name),
      namespace: svc.namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: 'origin', [LABELS.target]: svc.name },
    },
    spec: {
      type: 'ClusterIP',
      selector: svc.selector,
      ports: svc.ports.map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        ...(p.targetPort !== undefined ? { targetPort: p.targetPort as never } : {}),
      })),
    },
  };
}

export interface RouterSecretKeys {
  client: KeyPair;
  host: KeyPair;
}

export function routerSecret(service: string, namespace: string, keys: RouterSecretKeys, routerPod: string): V1Secret {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: secretName(service),
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: 'router', [LABELS.target]: service },
      annotations: { [ANNOTATIONS.routerPod]: routerPod },
    },
    data: {
      [ROUTER_SECRET_KEYS.privateKey]: b64(keys.client.privateKey),
      [ROUTER_SECRET_KEYS.publicKey]: b64(keys.client.publicKey),
      [ROUTER_SECRET_KEYS.hostKey]: b64(keys.host.privateKey),
      [ROUTER_SECRET_KEYS.hostPublicKey]: b64(keys.host.publicKey),
    },
  };
}

/** The keys from a router Secret, or undefined when one is missing. */
export function keysFromSecret(secret: V1Secret): RouterSecretKeys | undefined {
  const d = secret.data ?? {};
  const get = (k: string): string | undefined => (d[k] === undefined ? undefined : Buffer.from(d[k], 'base64').toString('utf8'));
  const [priv, pub, host, hostPub] = [get(ROUTER_SECRET_KEYS.privateKey), get(ROUTER_SECRET_KEYS.publicKey), get(ROUTER_SECRET_KEYS.hostKey), get(ROUTER_SECRET_KEYS.hostPublicKey)];
  if (!priv || !pub || !host || !hostPub) return undefined;
  return { client: { privateKey: priv, publicKey: pub }, host: { privateKey: host, publicKey: hostPub } };
}

/** The router pod's env and probe (the rest of the pod is proxyPod's). */
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
    ...(countWindowSeconds ? { [ROUTER_ENV.countWindow]: String(countWindowSeconds) } : {}),
  };
}

export function routerReadiness(own: RouterOwnPorts): Record<string, unknown> {
  return { httpGet: { path: '/healthz', port: own.health }, periodSeconds: 1, timeoutSeconds: 1 };
}

/**
 * The JSON patch that points the Service at the router and keeps the
 * selector it replaces. The `test` on resourceVersion makes it fail rather
 * than overwrite a change made meanwhile (the caller reads again and retries).
 */
export function takeoverPatch(svc: { resourceVersion: string; hasAnnotations: boolean; original: Record<string, string> | null }, service: string): object[] {
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: svc.resourceVersion },
    ...(svc.hasAnnotations ? [] : [{ op: 'add', path: '/metadata/annotations', value: {} }]),
    { op: 'add', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalSelector)}`, value: JSON.stringify(svc.original) },
    { op: 'add', path: '/spec/selector', value: routerSelector(service) },
  ];
}

/**
 * The selector to keep as the original when taking a Service over. A merge
 * or `kubectl apply` onto a taken-over Service merges its selector into the
 * router's (map keys are merged, not replaced), so the router's keys are
 * dropped first; what is left is the user's selector. Nothing left means the
 * saved original stands.
 */
export function newOriginal(current: Record<string, string> | null, saved: Record<string, string> | null | undefined, service: string): Record<string, string> | null {
  const router = routerSelector(service);
  const rest: Record<string, string> = {};
  for (const [k, v] of Object.entries(current ?? {})) if (router[k] !== v) rest[k] = v;
  if (Object.keys(rest).length > 0) return rest;
  return saved === undefined ? current : saved;
}

export function sameLabels(a: Record<string, string> | null | undefined, b: Record<string, string> | null | undefined): boolean {
  const ak = Object.keys(a ?? {});
  return ak.length === Object.keys(b ?? {}).length && ak.every((k) => a?.[k] === b?.[k]);
}

/** Whether a selector picks the given labels (every selector key matches). */
export function selects(selector: Record<string, string> | null | undefined, labels: Record<string, string> | undefined): boolean {
  const keys = Object.keys(selector ?? {});
  return keys.length > 0 && keys.every((k) => labels?.[k] === selector?.[k]);
}

/** The selector a Service had before us (from our annotation), or its current one. */
export function originalSelectorOf(svc: V1Service): Record<string, string> | null {
  const raw = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector];
  if (raw === undefined) return svc.spec?.selector ?? null;
  try {
    return JSON.parse(raw) as Record<string, string> | null;
  } catch {
    throw ktError('KT_ERR_BAD_STATE', { what: `annotation ${ANNOTATIONS.originalSelector} of service ${svc.metadata?.namespace}/${svc.metadata?.name}`, value: raw });
  }
}

// ---- env file -----------------------------------------------------------------------

interface EnvVarLike {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: unknown;
  };
}
interface EnvFromLike {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

export interface EnvSources {
  configMap(name: string): Promise<Record<string, string> | undefined>;
  /** Decoded values. */
  secret(name: string): Promise<Record<string, string> | undefined>;
}

/** `$(VAR)` references to earlier variables, as the kubelet expands them ($$ escapes). */
function expand(value: string, env: Map<string, string>): string {
  return value.replace(/\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && env.has(name) ? (env.get(name) as string) : m;
  });
}

/**
 * The environment one container of a pod sees: envFrom first, then env (env
 * wins), references resolved. Returns the variables and notes about what
 * could not be resolved.
 */
export async function containerEnv(pod: V1Pod, container: string | undefined, src: EnvSources): Promise<{ env: Map<string, string>; notes: string[] }> {
  const c = pod.spec?.containers.find((x) => container === undefined || x.name === container) ?? pod.spec?.containers[0];
  const env = new Map<string, string>();
  const notes: string[] = [];
  if (!c) return { env, notes };
  for (const from of (c.envFrom ?? []) as EnvFromLike[]) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const data = from.configMapRef ? await src.configMap(ref.name) : await src.secret(ref.name);
    if (!data) {
      if (!ref.optional) notes.push(`${from.configMapRef ? 'configmap' : 'secret'} ${ref.name} not found`);
      continue;
    }
    for (const [k, v] of Object.entries(data)) env.set(`${from.prefix ?? ''}${k}`, v);
  }
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': pod.status?.podIP,
    'status.hostIP': pod.status?.hostIP,
  };
  for (const v of (c.env ?? []) as EnvVarLike[]) {
    if (v.valueFrom === undefined) {
      env.set(v.name, expand(v.value ?? '', env));
      continue;
    }
    const { configMapKeyRef: cm, secretKeyRef: sk, fieldRef } = v.valueFrom;
    if (cm || sk) {
      const ref = (cm ?? sk) as { name: string; key: string; optional?: boolean };
      const data = cm ? await src.configMap(ref.name) : await src.secret(ref.name);
      const value = data?.[ref.key];
      if (value === undefined) {
        if (!ref.optional) notes.push(`${v.name}: key ${ref.key} of ${cm ? 'configmap' : 'secret'} ${ref.name} not found`);
        continue;
      }
      env.set(v.name, value);
    } else if (fieldRef) {
      const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldRef.fieldPath);
      const value = m ? pod.metadata?.[m[1] as 'labels' | 'annotations']?.[m[2]] : fields[fieldRef.fieldPath];
      if (value === undefined) notes.push(`${v.name}: field ${fieldRef.fieldPath} not resolved`);
      else env.set(v.name, value);
    } else {
      notes.push(`${v.name}: resource field references are not resolved`);
    }
  }
  return { env, notes };
}

/** KEY=value lines; values that a shell or dotenv would misread are double-quoted JSON strings. */
export function envFileText(env: Map<string, string>): string {
  let out = '';
  for (const [k, v] of env) out += `${k}=${/^[-A-Za-z0-9_./:@%+,=]*$/.test(v) ? v : JSON.stringify(v)}\n`;
  return out;
}

// ---- I/O ------------------------------------------------------------------------------

export interface Resolved {
  services: V1Service[];
  deployment?: V1Deployment;
}

/**
 * The Services a target stands for: svc/NAME (or a bare NAME) is that
 * Service; deploy/NAME is every Service whose (original) selector picks the
 * Deployment's pods.
 */
export async function resolveTarget(kc: KubeConfig, namespace: string, ref: WorkloadRef): Promise<Resolved> {
  const { CoreV1Api, AppsV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  if (ref.kind !== 'deployment') {
    try {
      return { services: [await core.readNamespacedService({ namespace, name: ref.name })] };
    } catch (err) {
      if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name: ref.name, namespace });
      throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name: ref.name });
    }
  }
  const apps = kc.makeApiClient(AppsV1Api);
  let deployment: V1Deployment;
  try {
    deployment = await apps.readNamespacedDeployment({ namespace, name: ref.name });
  } catch (err) {
    if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'deployment', name: ref.name, namespace });
    throw fromApiError(err, { verb: 'get', resource: 'deployments', namespace, name: ref.name });
  }
  const list = await core.listNamespacedService({ namespace }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'services', namespace });
  });
  const labels = deployment.spec?.template.metadata?.labels;
  const services = list.items.filter((s) => s.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY && selects(originalSelectorOf(s), labels));
  if (services.length === 0) throw ktError('KT_ERR_NO_SERVICE_FOR_WORKLOAD', { name: ref.name, namespace });
  return { services, deployment };
}

/** The Deployment whose pods a selector picks (for --mode scale with svc/NAME). */
export async function deploymentFor(kc: KubeConfig, namespace: string, selector: Record<string, string> | null): Promise<V1Deployment | undefined> {
  const { AppsV1Api } = await import('@kubernetes/client-node');
  const list = await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'deployments', namespace });
  });
  return list.items.find((d) => selects(selector, d.spec?.template.metadata?.labels));
}

/** Pods a selector picks, running ones first. */
export async function podsFor(kc: KubeConfig, namespace: string, selector: Record<string, string> | null): Promise<V1Pod[]> {
  if (!selector || Object.keys(selector).length === 0) return [];
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector }).catch((err: unknown) => {
    throw fromApiError(err, { verb: 'list', resource: 'pods', namespace });
  });
  return list.items
    .filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY)
    .sort((a, b) => Number(b.status?.phase === 'Running') - Number(a.status?.phase === 'Running'));
}

/** Reads ConfigMaps and Secrets of a namespace for containerEnv (404 → undefined). */
export async function envSources(kc: KubeConfig, namespace: string): Promise<EnvSources> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const orUndefined = async <T>(p: Promise<T>, resource: string, name: string): Promise<T | undefined> => {
    try {
      return await p;
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw fromApiError(err, { verb: 'get', resource, namespace, name });
    }
  };
  return {
    async configMap(name) {
      const cm = await orUndefined(core.readNamespacedConfigMap({ namespace, name }), 'configmaps', name);
      return cm ? { ...cm.data } : undefined;
    },
    async secret(name) {
      const s = await orUndefined(core.readNamespacedSecret({ namespace, name }), 'secrets', name);
      if (!s) return undefined;
      const out: Record<string, string> = { ...s.stringData };
      for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
      return out;
    },
  };
}

export interface KeysResult {
  created: boolean;
  keys: RouterSecretKeys;
  /** The router pod the Secret belongs to. */
  routerPod: string;
  /** The Secret's resourceVersion (a stale one is deleted on that precondition). */
  resourceVersion?: string;
  /** When the Secret was made (ms since the epoch), for a joiner that finds no router pod yet. */
  createdAt?: number;
}

/**
 * The first developer makes the Secret, then the origin Service, then the
 * router pod: a joiner that reads the Secret in between finds no pod yet.
 * Within this long of the Secret's creation a missing pod is one being made
 * (the joiner waits for it); after it, a Secret whose pod is missing was
 * left behind by a router that went (and is replaced).
 */
export const ROUTER_CREATE_GRACE_MS = 30_000;

/**
 * A router pod as it is now; 'leaving' when it is being deleted or gone (a
 * Secret naming it is stale); undefined when it is not there yet because
 * its Secret is younger than ROUTER_CREATE_GRACE_MS (the first developer is
 * still making it). The age is read against this machine's clock: a skewed
 * clock only moves where "being made" ends.
 */
export async function routerNow(kc: KubeConfig, namespace: string, name: string, secretCreatedAt?: number, now = Date.now()): Promise<V1Pod | 'leaving' | undefined> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  try {
    const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
    return pod.metadata?.deletionTimestamp ? 'leaving' : pod;
  } catch (err) {
    if (apiStatus(err) === 404) return secretCreatedAt !== undefined && now - secretCreatedAt < ROUTER_CREATE_GRACE_MS ? undefined : 'leaving';
    throw fromApiError(err, { verb: 'get', resource: 'pods', namespace, name });
  }
}

/** Deletes a Secret only if it is still the version read (409 or 404: someone else did already). */
export async function deleteSecretIfUnchanged(kc: KubeConfig, namespace: string, name: string, resourceVersion: string | undefined): Promise<void> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  await kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace, name, body: { preconditions: { resourceVersion } } }).catch((err: unknown) => {
    if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw fromApiError(err, { verb: 'delete', resource: 'secrets', namespace, name });
  });
}

/**
 * Creates the router Secret with fresh keys, or reads the one there is. The
 * Secret is the lock of a takeover: whoever creates it sets the router up;
 * everyone else joins.
 */
export async function ensureRouterSecret(kc: KubeConfig, namespace: string, service: string, newRouterPod: string): Promise<KeysResult> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const name = secretName(service);
  const read = async (): Promise<V1Secret | undefined> => {
    try {
      return await core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw fromApiError(err, { verb: 'get', resource: 'secrets', namespace, name });
    }
  };
  const joined = (s: V1Secret): KeysResult => {
    const keys = keysFromSecret(s);
    const routerPod = s.metadata?.annotations?.[ANNOTATIONS.routerPod];
    if (!keys || !routerPod) throw ktError('KT_ERR_BAD_STATE', { what: `secret ${namespace}/${name}`, value: Object.keys(s.data ?? {}).join(',') });
    const createdAt = s.metadata?.creationTimestamp ? new Date(s.metadata.creationTimestamp).getTime() : undefined;
    return { created: false, keys, routerPod, ...(s.metadata?.resourceVersion ? { resourceVersion: s.metadata.resourceVersion } : {}), ...(createdAt !== undefined && Number.isFinite(createdAt) ? { createdAt } : {}) };
  };
  const existing = await read();
  if (existing) return joined(existing);
  const keys = { client: makeSessionKey('kubectl-kt router client'), host: makeSessionKey('kubectl-kt router host') };
  try {
    await core.createNamespacedSecret({ namespace, body: routerSecret(service, namespace, keys, newRouterPod) });
    return { created: true, keys, routerPod: newRouterPod };
  } catch (err) {
    if (apiStatus(err) !== 409) throw fromApiError(err, { verb: 'create', resource: 'secrets', namespace, name });
    const raced = await read();
    if (!raced) throw fromApiError(err, { verb: 'create', resource: 'secrets', namespace, name });
    return joined(raced);
  }
}

/** Creates (or, when a leftover is there, updates) the origin Service; returns its ClusterIP. */
export async function ensureOriginService(kc: KubeConfig, body: V1Service): Promise<string> {
  const { CoreV1Api, setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = body.metadata?.namespace ?? '';
  const name = body.metadata?.name ?? '';
  let svc: V1Service;
  try {
    svc = await core.createNamespacedService({ namespace, body });
  } catch (err) {
    if (apiStatus(err) !== 409) throw fromApiError(err, { verb: 'create', resource: 'services', namespace, name });
    svc = await core.patchNamespacedService(
      { namespace, name, body: { spec: { selector: body.spec?.selector, ports: body.spec?.ports } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    ).catch((e: unknown) => {
      throw fromApiError(e, { verb: 'patch', resource: 'services', namespace, name });
    });
  }
  const ip = svc.spec?.clusterIP;
  return ip && ip !== 'None' ? ip : `${name}.${namespace}.svc`;
}

/**
 * Points the Service at the router (idempotent): if the selector already is
 * the router's, nothing happens. A concurrent change makes the `test` fail;
 * then it reads again and decides again. Returns the selector now kept as
 * the original (undefined when there was nothing to do).
 */
export async function switchSelector(kc: KubeConfig, namespace: string, service: string): Promise<Record<string, string> | null | undefined> {
  const { CoreV1Api, setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  for (let attempt = 0; ; attempt++) {
    const svc = await core.readNamespacedService({ namespace, name: service }).catch((err: unknown) => {
      if (apiStatus(err) === 404) throw ktError('KT_ERR_NO_SUCH_WORKLOAD', { kind: 'service', name: service, namespace });
      throw fromApiError(err, { verb: 'get', resource: 'services', namespace, name: service });
    });
    const current = svc.spec?.selector ?? null;
    const hasSaved = svc.metadata?.annotations?.[ANNOTATIONS.originalSelector] !== undefined;
    if (sameLabels(current, routerSelector(service)) && hasSaved) return undefined;
    const original = newOriginal(current, hasSaved ? originalSelectorOf(svc) : undefined, service);
    const patch = takeoverPatch({ resourceVersion: svc.metadata?.resourceVersion ?? '', hasAnnotations: svc.metadata?.annotations !== undefined, original }, service);
    try {
      await core.patchNamespacedService({ namespace, name: service, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
      return original;
    } catch (err) {
      // 409/422: the test failed (changed meanwhile); read again.
      const c = apiStatus(err);
      if ((c === 409 || c === 422) && attempt < 5) continue;
      throw fromApiError(err, { verb: 'patch', resource: 'services', namespace, name: service });
    }
  }
}

/** Puts the original selector back (only the selector; restoreService does the rest). Quiet when someone did already. */
export async function restoreSelectorOnly(kc: KubeConfig, namespace: string, service: string): Promise<boolean> {
  const { CoreV1Api, setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  const { restorePatch } = await import('./restore.ts');
  const core = kc.makeApiClient(CoreV1Api);
  const svc = await core.readNamespacedService({ namespace, name: service });
  if (svc.metadata?.annotations?.[ANNOTATIONS.originalSelector] === undefined) return false;
  try {
    await core.patchNamespacedService({ namespace, name: service, body: restorePatch(originalSelectorOf(svc)) }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    return true;
  } catch (err) {
    if (apiStatus(err) === 409 || apiStatus(err) === 422) return false;
    throw err;
  }
}

/** A JSON-patch failure that just means "someone else got there first". */
export function isRace(err: unknown): boolean {
  const c = apiStatus(err);
  return c === 409 || c === 422 || c === 404 || (err as KtError | undefined)?.code === 'KT_ERR_API_CONFLICT';
}

export type { RouterPort };
