// A container's environment as kubelet builds it: the Service variables,
// then envFrom, then env (later wins), with $(VAR) expansion. Pure: the
// ConfigMaps, Secrets and Services are passed in.
import type { KubeObject } from '../store.ts';

export class EnvError extends Error {}

interface KeyRef {
  name?: string;
  key: string;
  optional?: boolean;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: KeyRef;
    secretKeyRef?: KeyRef;
    fieldRef?: { fieldPath: string };
  };
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

export interface EnvContext {
  pod: KubeObject;
  podIP: string;
  hostIP: string;
  /** Services of the pod's namespace, plus `kubernetes` of default (as kubelet adds the master service). */
  services: KubeObject[];
  configMap(name: string): KubeObject | undefined;
  secret(name: string): KubeObject | undefined;
}

/** `my-svc` → `MY_SVC`, as kubelet names Service variables. */
function envName(s: string): string {
  return s.toUpperCase().replace(/-/g, '_');
}

/** The docker-links style variables kubelet sets for each Service with a ClusterIP. */
export function serviceEnv(services: KubeObject[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const svc of services) {
    const spec = svc.spec as { clusterIP?: string; ports?: { name?: string; port: number; protocol?: string }[] } | undefined;
    const ip = spec?.clusterIP;
    if (!ip || ip === 'None' || !spec?.ports?.length) continue;
    const n = envName(svc.metadata.name);
    out[`${n}_SERVICE_HOST`] = ip;
    out[`${n}_SERVICE_PORT`] = String(spec.ports[0].port);
    for (const p of spec.ports) if (p.name) out[`${n}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
    const first = spec.ports[0];
    out[`${n}_PORT`] = `${(first.protocol ?? 'TCP').toLowerCase()}://${ip}:${first.port}`;
    for (const p of spec.ports) {
      const proto = p.protocol ?? 'TCP';
      const prefix = `${n}_PORT_${p.port}_${proto}`;
      out[prefix] = `${proto.toLowerCase()}://${ip}:${p.port}`;
      out[`${prefix}_PROTO`] = proto.toLowerCase();
      out[`${prefix}_PORT`] = String(p.port);
      out[`${prefix}_ADDR`] = ip;
    }
  }
  return out;
}

function dataOf(obj: KubeObject, secret: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const data = (obj.data as Record<string, string> | undefined) ?? {};
  for (const [k, v] of Object.entries(data)) out[k] = secret ? Buffer.from(v, 'base64').toString() : v;
  if (secret) {
    for (const [k, v] of Object.entries((obj.stringData as Record<string, string> | undefined) ?? {})) out[k] = v;
  }
  return out;
}

function fieldValue(ctx: EnvContext, path: string): string {
  const m = ctx.pod.metadata;
  const spec = ctx.pod.spec as { nodeName?: string; serviceAccountName?: string } | undefined;
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (label) return (label[1] === 'labels' ? m.labels : m.annotations)?.[label[2]] ?? '';
  switch (path) {
    case 'metadata.name': return m.name;
    case 'metadata.namespace': return m.namespace ?? 'default';
    case 'metadata.uid': return m.uid ?? '';
    case 'spec.nodeName': return spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return spec?.serviceAccountName ?? 'default';
    case 'status.podIP': return ctx.podIP;
    case 'status.podIPs': return ctx.podIP;
    case 'status.hostIP': return ctx.hostIP;
    case 'status.hostIPs': return ctx.hostIP;
    default: throw new EnvError(`unsupported fieldRef ${path}`);
  }
}

/** Expand $(VAR) from `vars`; $$ escapes; unknown references stay as written (as kubelet does). */
export function expand(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return name !== undefined && name in vars ? vars[name] : all;
  });
}

export interface ContainerEnvSpec {
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  enableServiceLinks?: boolean;
}

export function containerEnv(c: ContainerEnvSpec, ctx: EnvContext, enableServiceLinks = true): Record<string, string> {
  const master = ctx.services.filter((s) => s.metadata.namespace === 'default' && s.metadata.name === 'kubernetes');
  const out: Record<string, string> = serviceEnv(enableServiceLinks ? ctx.services : master);
  for (const src of c.envFrom ?? []) {
    const prefix = src.prefix ?? '';
    const ref = src.configMapRef ?? src.secretRef;
    if (!ref) continue;
    const isSecret = !!src.secretRef;
    const obj = isSecret ? ctx.secret(ref.name) : ctx.configMap(ref.name);
    if (!obj) {
      if (ref.optional) continue;
      throw new EnvError(`${isSecret ? 'secret' : 'configmap'} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(dataOf(obj, isSecret))) out[prefix + k] = v;
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom) {
      const vf = e.valueFrom;
      if (vf.fieldRef) {
        out[e.name] = fieldValue(ctx, vf.fieldRef.fieldPath);
        continue;
      }
      const ref = vf.configMapKeyRef ?? vf.secretKeyRef;
      if (!ref) continue;
      const isSecret = !!vf.secretKeyRef;
      const obj = ref.name ? (isSecret ? ctx.secret(ref.name) : ctx.configMap(ref.name)) : undefined;
      const value = obj ? dataOf(obj, isSecret)[ref.key] : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        throw new EnvError(
          obj ? `couldn't find key ${ref.key} in ${isSecret ? 'Secret' : 'ConfigMap'} ${ctx.pod.metadata.namespace}/${ref.name}`
            : `${isSecret ? 'secret' : 'configmap'} "${ref.name ?? ''}" not found`,
        );
      }
      out[e.name] = value;
    } else {
      out[e.name] = expand(e.value ?? '', out);
    }
  }
  return out;
}
