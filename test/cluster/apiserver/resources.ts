// The kinds this API server serves and how each is named: store key, group,
// version, kind, short names and subresources, as real discovery lists them.
// The controllers and the node read and write the store with the same keys,
// so they import RESOURCES from here.

/** Store keys: the plural for the core group, "plural.group" for the others. */
export const RESOURCES = {
  namespaces: 'namespaces',
  pods: 'pods',
  services: 'services',
  endpoints: 'endpoints',
  configmaps: 'configmaps',
  secrets: 'secrets',
  serviceaccounts: 'serviceaccounts',
  events: 'events',
  deployments: 'deployments.apps',
  replicasets: 'replicasets.apps',
  endpointslices: 'endpointslices.discovery.k8s.io',
  /** Not stored: answered at once (reviews.ts). */
  selfsubjectaccessreviews: 'selfsubjectaccessreviews.authorization.k8s.io',
  selfsubjectrulesreviews: 'selfsubjectrulesreviews.authorization.k8s.io',
} as const;

export type ResourceKey = (typeof RESOURCES)[keyof typeof RESOURCES];

export interface SubresourceDef {
  name: string;
  kind: string;
  /** Set when the subresource's kind lives in another group (Scale: autoscaling/v1). */
  group?: string;
  version?: string;
  verbs: string[];
}

export interface ResourceDef {
  key: ResourceKey;
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  subresources: SubresourceDef[];
  /** Has a status subresource: the main endpoint ignores status, /status changes only status. */
  hasStatus: boolean;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const NS_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

function status(kind: string): SubresourceDef {
  return { name: 'status', kind, verbs: STATUS_VERBS };
}

function scale(): SubresourceDef {
  return { name: 'scale', kind: 'Scale', group: 'autoscaling', version: 'v1', verbs: STATUS_VERBS };
}

export const RESOURCE_DEFS: ResourceDef[] = [
  {
    key: RESOURCES.namespaces, group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace',
    namespaced: false, verbs: NS_VERBS, shortNames: ['ns'], subresources: [status('Namespace'), { name: 'finalize', kind: 'Namespace', verbs: ['update'] }], hasStatus: true,
  },
  {
    key: RESOURCES.pods, group: '', version: 'v1', plural: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, verbs: ALL_VERBS,
    shortNames: ['po'], categories: ['all'], hasStatus: true,
    subresources: [
      { name: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'log', kind: 'Pod', verbs: ['get'] },
      { name: 'portforward', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
      status('Pod'),
    ],
  },
  {
    key: RESOURCES.services, group: '', version: 'v1', plural: 'services', singular: 'service', kind: 'Service', namespaced: true,
    verbs: ALL_VERBS, shortNames: ['svc'], categories: ['all'], subresources: [status('Service')], hasStatus: true,
  },
  {
    key: RESOURCES.endpoints, group: '', version: 'v1', plural: 'endpoints', singular: 'endpoints', kind: 'Endpoints', namespaced: true,
    verbs: ALL_VERBS, shortNames: ['ep'], subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.configmaps, group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true,
    verbs: ALL_VERBS, shortNames: ['cm'], subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.secrets, group: '', version: 'v1', plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true,
    verbs: ALL_VERBS, subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.serviceaccounts, group: '', version: 'v1', plural: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount',
    namespaced: true, verbs: ALL_VERBS, shortNames: ['sa'], subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.events, group: '', version: 'v1', plural: 'events', singular: 'event', kind: 'Event', namespaced: true,
    verbs: ALL_VERBS, shortNames: ['ev'], subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.deployments, group: 'apps', version: 'v1', plural: 'deployments', singular: 'deployment', kind: 'Deployment',
    namespaced: true, verbs: ALL_VERBS, shortNames: ['deploy'], categories: ['all'], subresources: [scale(), status('Deployment')], hasStatus: true,
  },
  {
    key: RESOURCES.replicasets, group: 'apps', version: 'v1', plural: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet',
    namespaced: true, verbs: ALL_VERBS, shortNames: ['rs'], categories: ['all'], subresources: [scale(), status('ReplicaSet')], hasStatus: true,
  },
  {
    key: RESOURCES.endpointslices, group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', singular: 'endpointslice',
    kind: 'EndpointSlice', namespaced: true, verbs: ALL_VERBS, subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.selfsubjectaccessreviews, group: 'authorization.k8s.io', version: 'v1', plural: 'selfsubjectaccessreviews',
    singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'], subresources: [], hasStatus: false,
  },
  {
    key: RESOURCES.selfsubjectrulesreviews, group: 'authorization.k8s.io', version: 'v1', plural: 'selfsubjectrulesreviews',
    singular: 'selfsubjectrulesreview', kind: 'SelfSubjectRulesReview', namespaced: false, verbs: ['create'], subresources: [], hasStatus: false,
  },
];

/** The group/versions served, in discovery order ("" is the core group). */
export const GROUP_VERSIONS: { group: string; version: string }[] = [
  { group: '', version: 'v1' },
  { group: 'apps', version: 'v1' },
  { group: 'discovery.k8s.io', version: 'v1' },
  { group: 'authorization.k8s.io', version: 'v1' },
];

export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

export function findResource(group: string, version: string, plural: string): ResourceDef | undefined {
  return RESOURCE_DEFS.find((d) => d.group === group && d.version === version && d.plural === plural);
}

export function resourceByKey(key: string): ResourceDef | undefined {
  return RESOURCE_DEFS.find((d) => d.key === key);
}

export function resourceByKind(apiVersion: string, kind: string): ResourceDef | undefined {
  return RESOURCE_DEFS.find((d) => apiVersionOf(d) === apiVersion && d.kind === kind);
}
