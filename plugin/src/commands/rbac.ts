// `kubectl kt rbac`: the namespaced Role every command needs, and a
// RoleBinding for the subjects given. No cluster-wide rights: everything the
// plugin touches lives in the namespace it works in.
import { MANAGED_BY, LABELS } from '../../../contract/protocol.ts';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';

export const ROLE_NAME = 'kubectl-kt';
const RBAC_GROUP = 'rbac.authorization.k8s.io';

interface Rule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** Each rule, and which command needs it. */
export const RULES: readonly Rule[] = [
  // Proxy pods (shadow, router): connect, exchange, mesh, preview; clean deletes them.
  { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'delete', 'patch'] },
  // The tunnel. kubectl's SPDY port-forward is a POST (create); a WebSocket
  // port-forward, as client-node opens it, is a GET upgrade, which RBAC checks
  // as get (newer API servers check create as well, KEP-4006).
  { apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'get'] },
  // Proxy logs for error messages and --debug.
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  // exchange and mesh switch selectors and create origin Services; preview creates Services; recover restores them.
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  // connect resolves Services to their endpoints; exchange waits for the router's.
  { apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'list', 'watch'] },
  // exchange --mode scale and recover.
  { apiGroups: ['apps'], resources: ['deployments', 'replicasets'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'update', 'patch'] },
  // exchange --env-out reads the workload's environment.
  { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get'] },
  // exchange and mesh share one router per Service: its Secret kt-router-NAME
  // holds the SSH client key every developer's session logs in with (reading
  // it is what lets a second developer join the router), so the first session
  // creates it and the last one, recover and clean delete it.
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
  // Why a proxy pod does not start (ImagePullBackOff, admission).
  { apiGroups: [''], resources: ['events'], verbs: ['list'] },
];

interface Subject {
  readonly kind: 'User' | 'Group' | 'ServiceAccount';
  readonly name: string;
  readonly apiGroup?: string;
  readonly namespace?: string;
}

export interface RbacList {
  readonly apiVersion: 'v1';
  readonly kind: 'List';
  readonly items: readonly object[];
}

export async function run(opts: OptionsOf<'rbac'>, deps: Deps): Promise<RbacList> {
  const namespace = opts.namespace ?? (await deps.kube()).namespace;
  const subjects: Subject[] = [
    ...opts.user.map((name) => ({ kind: 'User' as const, apiGroup: RBAC_GROUP, name })),
    ...opts.group.map((name) => ({ kind: 'Group' as const, apiGroup: RBAC_GROUP, name })),
    ...opts.serviceaccount.map((sa) => ({ kind: 'ServiceAccount' as const, name: sa.name, namespace: sa.namespace ?? namespace })),
  ];
  const metadata = { name: ROLE_NAME, namespace, labels: { [LABELS.managedBy]: MANAGED_BY } };
  const role = { apiVersion: `${RBAC_GROUP}/v1`, kind: 'Role', metadata, rules: RULES };
  // A RoleBinding without subjects grants nothing; print it only when someone is named.
  const binding = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'RoleBinding',
    metadata,
    roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: ROLE_NAME },
    subjects,
  };
  return { apiVersion: 'v1', kind: 'List', items: subjects.length ? [role, binding] : [role] };
}
