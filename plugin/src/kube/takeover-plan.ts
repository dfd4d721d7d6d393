// The plan of a Service takeover for exchange and mesh, as pure functions:
// router ports, the origin Service, the router's Secret, the selector patch,
// and which selector is the original. kube/takeover-apply.ts applies it in the
// order ARCHITECTURE.md rule 1 asks (the origin Service and the router's
// Secret, then the router pod until it is Ready, and only then the Service's
// selector); kube/router-pod.ts makes the router pod; session/takeover-session.ts
// holds one developer's takeover; session/takeover-command.ts is the command.
// One router per Service is shared by every developer: the Secret holds the
// client key pair (and the router's host key), so the next session reads it
// and connects to the same pod.
import type { V1Secret, V1Service } from '@kubernetes/client-node';
import {
  ANNOTATIONS, LABELS, MANAGED_BY, ORIGIN_SUFFIX, ROUTER_SECRET_KEYS, ROUTER_SECRET_PREFIX, type RouterPort,
} from '../../../contract/protocol.ts';
import { ktError } from '../errors.ts';
import type { KeyPair } from '../tunnel/index.ts';
import { pointer } from './restore.ts';

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

/**
 * The JSON patch that points the Service at the router and keeps the
 * selector it replaces. It also makes the Service publish not-ready
 * addresses, keeping "false" in an annotation to put back when it did not:
 * while the router's container restarts its pod is not ready, and the
 * router pod's standby serves meanwhile (proxy-image/src/router/standby.ts)
 * only if the pod stays the Service's endpoint. The selector moves to the
 * router only once it is Ready (ARCHITECTURE.md rule 1), so nothing reaches
 * it earlier. The `test` on resourceVersion makes it fail rather than
 * overwrite a change made meanwhile (the caller reads again and retries).
 */
export function takeoverPatch(svc: {
  resourceVersion: string;
  hasAnnotations: boolean;
  original: Record<string, string> | null;
  /** The Service's publishNotReadyAddresses now. */
  publishNotReady?: boolean;
  /** Our annotation with the value to put back is there already. */
  savedPublishNotReady?: boolean;
}, service: string): object[] {
  const publish = svc.publishNotReady === true ? [] : [
    ...(svc.savedPublishNotReady ? [] : [{ op: 'add', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalPublishNotReady)}`, value: 'false' }]),
    { op: 'add', path: '/spec/publishNotReadyAddresses', value: true },
  ];
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: svc.resourceVersion },
    ...(svc.hasAnnotations ? [] : [{ op: 'add', path: '/metadata/annotations', value: {} }]),
    { op: 'add', path: `/metadata/annotations/${pointer(ANNOTATIONS.originalSelector)}`, value: JSON.stringify(svc.original) },
    ...publish,
    { op: 'add', path: '/spec/selector', value: routerSelector(service) },
  ];
}

/** Whether the Service is held by its router as a takeover leaves it: the router's selector, publishing not-ready addresses. */
export function heldByRouter(svc: V1Service | undefined, service: string): boolean {
  return sameLabels(svc?.spec?.selector ?? null, routerSelector(service)) && svc?.spec?.publishNotReadyAddresses === true;
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


export type { RouterPort };
