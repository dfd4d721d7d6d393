// The one seam to the Kubernetes API: the only module that loads
// @kubernetes/client-node (everywhere else imports its types only). It is
// loaded on the first call, so a command that does not talk to the cluster
// (`kubectl kt version`, `help`) never pays for it; in the bundle the load
// runs the client's own chunk (kube/chunk.ts). Commands get a KubeApi from
// Deps (deps.api(), built on kube/config.ts's clientConfig); the helpers in
// kube/ and the sessions take it from there.
// Failures are read by apiStatus() and fromApiError() (errors.ts).
import type { KUBE_CHUNK_EXPORTS } from './chunk.ts';
import type { AppsV1Api, ConfigurationOptions, CoreV1Api, Informer, KubeConfig, KubernetesObject, ListPromise, ObjectCache, PortForward, Watch } from '@kubernetes/client-node';

/** The part of the client the plugin uses: all the bundle's chunk holds (kube/chunk.ts). */
export type ClientModule = Pick<typeof import('@kubernetes/client-node'), (typeof KUBE_CHUNK_EXPORTS)[number]>;

let loading: Promise<ClientModule> | undefined;

/** The client module, loaded once, on the first call. */
export function loadClient(): Promise<ClientModule> {
  return (loading ??= import('@kubernetes/client-node'));
}

/** The API of one kubeconfig context: typed clients and the client's helpers, all on one KubeConfig. */
export interface KubeApi {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  /** A watch of a collection on this context. */
  readonly watch: Watch;
  /** Request options that send a patch as a JSON merge patch (RFC 7386). */
  mergePatch(): ConfigurationOptions;
  /** Request options that send a patch as a JSON patch (RFC 6902). */
  jsonPatch(): ConfigurationOptions;
  /** A cached, watched list of one collection (client-node's informer). */
  informer<T extends KubernetesObject>(path: string, list: ListPromise<T>, labelSelector?: string): Informer<T> & ObjectCache<T>;
  /** A port-forward to pods on this context (client-node's PortForward). */
  portForward(disconnectOnErr?: boolean): PortForward;
}

/** The KubeApi of a client-node KubeConfig; loads the client on first use. */
export async function apiFor(kc: KubeConfig): Promise<KubeApi> {
  const k = await loadClient();
  return {
    kc,
    core: kc.makeApiClient(k.CoreV1Api),
    apps: kc.makeApiClient(k.AppsV1Api),
    watch: new k.Watch(kc),
    mergePatch: () => k.setHeaderOptions('Content-Type', k.PatchStrategy.MergePatch),
    jsonPatch: () => k.setHeaderOptions('Content-Type', k.PatchStrategy.JsonPatch),
    informer: (path, list, labelSelector) => k.makeInformer(kc, path, list, labelSelector),
    portForward: (disconnectOnErr) => new k.PortForward(kc, disconnectOnErr),
  };
}
