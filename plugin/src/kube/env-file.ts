// The env file of `exchange`/`mesh --env-out`: the environment one container
// of the Service's pod sees, as the kubelet builds it (envFrom, then env,
// ConfigMap and Secret references and field references resolved), written as
// KEY=value lines.
import type { V1Pod } from '@kubernetes/client-node';
import { apiStatus, fromApiError } from '../errors.ts';
import type { KubeApi } from './api.ts';

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

/** Reads ConfigMaps and Secrets of a namespace for containerEnv (404 → undefined). */
export async function envSources(api: KubeApi, namespace: string): Promise<EnvSources> {
  const { core } = api;
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
