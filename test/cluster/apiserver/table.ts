// Server-side printing: the meta.k8s.io/v1 Table `kubectl get` asks for
// (Accept: application/json;as=Table;v=v1;g=meta.k8s.io), with the columns
// kubectl shows for each kind (k8s.io/kubernetes pkg/printers/internalversion).
// Columns of priority 1 are shown with `-o wide`.
import type { KubeObject } from '../store.ts';
import { labelSelectorString, requirementsOf, type LabelSelectorObject } from './selectors.ts';

export interface ColumnDefinition {
  name: string;
  type: 'string' | 'integer' | 'date' | 'number' | 'boolean';
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: ColumnDefinition[] | null;
  rows: TableRow[];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** duration.HumanDuration from k8s.io/apimachinery, as the AGE column shows it. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return d === 0 ? `${y}y` : `${y}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function age(obj: KubeObject, now: number): string {
  const ts = obj.metadata.creationTimestamp;
  return ts ? humanDuration(now - Date.parse(ts)) : '<unknown>';
}

function col(name: string, type: ColumnDefinition['type'], description: string, priority = 0, format = ''): ColumnDefinition {
  return { name, type, format, description, priority };
}

const NAME = col('Name', 'string', 'Name must be unique within a namespace.', 0, 'name');
const AGE = col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

interface Printer {
  columns: ColumnDefinition[];
  cells(obj: KubeObject, now: number): unknown[];
}

function podStatus(pod: KubeObject): { reason: string; ready: number; total: number; restarts: number } {
  const spec = o(pod.spec);
  const st = o(pod.status);
  let reason = str(st.reason) || str(st.phase);
  let restarts = 0;
  let ready = 0;
  const total = arr(spec.containers).length;
  let initializing = false;
  const initTotal = arr(spec.initContainers).length;
  arr(st.initContainerStatuses).forEach((c, i) => {
    restarts += Number(c.restartCount ?? 0);
    const state = o(c.state);
    const term = o(state.terminated);
    const wait = o(state.waiting);
    if (state.terminated && Number(term.exitCode ?? 0) === 0) return;
    if (initializing) return;
    initializing = true;
    if (state.terminated) reason = str(term.reason) ? `Init:${str(term.reason)}` : `Init:ExitCode:${String(term.exitCode)}`;
    else if (str(wait.reason) && wait.reason !== 'PodInitializing') reason = `Init:${str(wait.reason)}`;
    else reason = `Init:${i}/${initTotal}`;
  });
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...arr(st.containerStatuses)].reverse()) {
      restarts += Number(c.restartCount ?? 0);
      const state = o(c.state);
      const term = o(state.terminated);
      const wait = o(state.waiting);
      if (str(wait.reason)) reason = str(wait.reason);
      else if (state.terminated && str(term.reason)) reason = str(term.reason);
      else if (state.terminated) reason = term.signal ? `Signal:${String(term.signal)}` : `ExitCode:${String(term.exitCode)}`;
      else if (state.running && c.ready === true) {
        hasRunning = true;
        ready++;
      } else if (state.running) hasRunning = true;
    }
    // A pod whose containers all run but which is not Ready yet shows Running;
    // one that completed but still has a running container shows NotReady.
    if (reason === 'Completed' && hasRunning) reason = 'NotReady';
  }
  if (pod.metadata.deletionTimestamp) reason = st.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return { reason, ready, total, restarts };
}

function servicePorts(svc: KubeObject): string {
  const ports = arr(o(svc.spec).ports);
  if (ports.length === 0) return '<none>';
  return ports.map((p) => (p.nodePort ? `${String(p.port)}:${String(p.nodePort)}/${str(p.protocol) || 'TCP'}` : `${String(p.port)}/${str(p.protocol) || 'TCP'}`)).join(',');
}

function externalIP(svc: KubeObject): string {
  const spec = o(svc.spec);
  const type = str(spec.type) || 'ClusterIP';
  const ext = Array.isArray(spec.externalIPs) ? (spec.externalIPs as string[]) : [];
  if (type === 'ExternalName') return str(spec.externalName);
  if (type === 'LoadBalancer') {
    const ing = arr(o(o(svc.status).loadBalancer).ingress).map((i) => str(i.ip) || str(i.hostname));
    const all = [...ing, ...ext];
    return all.length > 0 ? all.join(',') : '<pending>';
  }
  return ext.length > 0 ? ext.join(',') : '<none>';
}

function selectorMap(m: unknown): string {
  const e = Object.entries(o(m)).sort(([a], [b]) => a.localeCompare(b));
  return e.length === 0 ? '<none>' : e.map(([k, v]) => `${k}=${String(v)}`).join(',');
}

function labelSelector(sel: unknown): string {
  const s = labelSelectorString(requirementsOf(sel as LabelSelectorObject));
  return s === '' ? '<none>' : s;
}

/** The -o wide columns of Deployments and ReplicaSets. */
const WORKLOAD_WIDE = [
  col('Containers', 'string', 'Names of each container in the template.', 1),
  col('Images', 'string', 'Images referenced by each container in the template.', 1),
  col('Selector', 'string', 'Label selector for pods.', 1),
];

function workloadWide(spec: Obj): string[] {
  const cs = arr(o(o(o(spec.template).spec)).containers);
  return [cs.map((c) => str(c.name)).join(','), cs.map((c) => str(c.image)).join(','), labelSelector(spec.selector)];
}

function formatEndpoints(ep: KubeObject): string {
  const list: string[] = [];
  for (const ss of arr(ep.subsets)) {
    const ports = arr(ss.ports);
    for (const a of arr(ss.addresses)) {
      if (ports.length === 0) list.push(str(a.ip));
      for (const p of ports) list.push(`${str(a.ip)}:${String(p.port)}`);
    }
  }
  if (list.length === 0) return '<none>';
  const shown = list.slice(0, 3).join(',');
  return list.length > 3 ? `${shown} + ${list.length - 3} more...` : shown;
}

const PRINTERS: Record<string, Printer> = {
  pods: {
    columns: [
      NAME,
      col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'string', 'The aggregate status of the containers in this pod.'),
      col('Restarts', 'string', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      col('IP', 'string', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
      col('Node', 'string', 'NodeName is a request to schedule this pod onto a specific node.', 1),
      col('Nominated Node', 'string', 'nominatedNodeName is set when this pod preempts other pods on the node.', 1),
      col('Readiness Gates', 'string', 'If specified, all readiness gates will be evaluated for pod readiness.', 1),
    ],
    cells(pod, now) {
      const s = podStatus(pod);
      const st = o(pod.status);
      const gates = arr(o(pod.spec).readinessGates);
      return [
        pod.metadata.name,
        `${s.ready}/${s.total}`,
        s.reason,
        String(s.restarts),
        age(pod, now),
        str(st.podIP) || '<none>',
        str(o(pod.spec).nodeName) || '<none>',
        str(st.nominatedNodeName) || '<none>',
        gates.length === 0 ? '<none>' : `${gates.length}/${gates.length}`,
      ];
    },
  },
  services: {
    columns: [
      NAME,
      col('Type', 'string', 'The type of the service.'),
      col('Cluster-IP', 'string', 'The IP address of the service.'),
      col('External-IP', 'string', 'The external IP address of the service.'),
      col('Port(s)', 'string', 'The ports of the service.'),
      AGE,
      col('Selector', 'string', 'Route service traffic to pods with label keys and values matching this selector.', 1),
    ],
    cells(svc, now) {
      const spec = o(svc.spec);
      return [svc.metadata.name, str(spec.type) || 'ClusterIP', str(spec.clusterIP) || '<none>', externalIP(svc), servicePorts(svc), age(svc, now), selectorMap(spec.selector)];
    },
  },
  endpoints: {
    columns: [NAME, col('Endpoints', 'string', 'Endpoints of the service.'), AGE],
    cells: (ep, now) => [ep.metadata.name, formatEndpoints(ep), age(ep, now)],
  },
  namespaces: {
    columns: [NAME, col('Status', 'string', 'The status of the namespace.'), AGE],
    cells: (ns, now) => [ns.metadata.name, str(o(ns.status).phase) || 'Active', age(ns, now)],
  },
  configmaps: {
    columns: [NAME, col('Data', 'string', 'Number of data in configmap.'), AGE],
    cells: (cm, now) => [cm.metadata.name, Object.keys(o(cm.data)).length + Object.keys(o(cm.binaryData)).length, age(cm, now)],
  },
  secrets: {
    columns: [NAME, col('Type', 'string', 'The type of the secret.'), col('Data', 'string', 'Number of data in secret.'), AGE],
    cells: (s, now) => [s.metadata.name, str(s.type) || 'Opaque', Object.keys(o(s.data)).length, age(s, now)],
  },
  serviceaccounts: {
    columns: [NAME, col('Secrets', 'string', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.'), AGE],
    cells: (sa, now) => [sa.metadata.name, arr(sa.secrets).length, age(sa, now)],
  },
  events: {
    columns: [
      col('Last Seen', 'string', 'Time the most recent occurrence of this event was recorded.'),
      col('Type', 'string', 'Type of this event.'),
      col('Reason', 'string', 'Reason is why the action was taken.'),
      col('Object', 'string', 'The object this Event is about.'),
      col('Message', 'string', 'A human-readable description of the status of this operation.'),
    ],
    cells(ev, now) {
      const last = str(ev.lastTimestamp) || str(ev.eventTime) || ev.metadata.creationTimestamp || '';
      const io = o(ev.involvedObject);
      return [
        last ? humanDuration(now - Date.parse(last)) : '<unknown>',
        str(ev.type),
        str(ev.reason),
        `${str(io.kind).toLowerCase()}/${str(io.name)}`,
        str(ev.message).trim(),
      ];
    },
  },
  'deployments.apps': {
    columns: [
      NAME,
      col('Ready', 'string', 'Number of the pod with ready state'),
      col('Up-to-date', 'string', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
      col('Available', 'string', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
      AGE,
      ...WORKLOAD_WIDE,
    ],
    cells(d, now) {
      const spec = o(d.spec);
      const st = o(d.status);
      const ready = `${Number(st.readyReplicas ?? 0)}/${Number(spec.replicas ?? 0)}`;
      return [d.metadata.name, ready, Number(st.updatedReplicas ?? 0), Number(st.availableReplicas ?? 0), age(d, now), ...workloadWide(spec)];
    },
  },
  'replicasets.apps': {
    columns: [
      NAME,
      col('Desired', 'integer', 'Number of desired pods.'),
      col('Current', 'integer', 'Number of actual pods.'),
      col('Ready', 'integer', 'Number of ready pods.'),
      AGE,
      ...WORKLOAD_WIDE,
    ],
    cells(rs, now) {
      const spec = o(rs.spec);
      const st = o(rs.status);
      return [rs.metadata.name, Number(spec.replicas ?? 0), Number(st.replicas ?? 0), Number(st.readyReplicas ?? 0), age(rs, now), ...workloadWide(spec)];
    },
  },
  'endpointslices.discovery.k8s.io': {
    columns: [
      NAME,
      col('AddressType', 'string', 'The IP protocol for this slice.'),
      col('Ports', 'string', 'The ports for this slice.'),
      col('Endpoints', 'string', 'First 3 endpoint addresses.'),
      AGE,
    ],
    cells(s, now) {
      const ports = arr(s.ports).map((p) => String(p.port));
      const addrs = arr(s.endpoints).flatMap((e) => (Array.isArray(e.addresses) ? (e.addresses as string[]) : []));
      const shown = addrs.length === 0 ? '<none>' : addrs.length > 3 ? `${addrs.slice(0, 3).join(',')} + ${addrs.length - 3} more...` : addrs.join(',');
      return [s.metadata.name, str(s.addressType), ports.length === 0 ? '<unset>' : ports.join(','), shown, age(s, now)];
    },
  },
};

const DEFAULT_PRINTER: Printer = { columns: [NAME, AGE], cells: (obj, now) => [obj.metadata.name, age(obj, now)] };

function rowObject(obj: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export interface TableOptions {
  include: IncludeObject;
  /** Column definitions are sent once: on a list, and on a watch's first event only. */
  withColumns: boolean;
  now?: number;
  resourceVersion?: string;
  continueToken?: string;
}

/** A Table for objects of `resource` (store key). */
export function toTable(resource: string, objs: KubeObject[], opts: TableOptions): Table {
  const p = PRINTERS[resource] ?? DEFAULT_PRINTER;
  const now = opts.now ?? Date.now();
  const metadata: Table['metadata'] = {};
  if (opts.resourceVersion) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continueToken) metadata.continue = opts.continueToken;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: opts.withColumns ? p.columns : null,
    rows: objs.map((obj) => {
      const row: TableRow = { cells: p.cells(obj, now) };
      const ro = rowObject(obj, opts.include);
      if (ro !== undefined) row.object = ro;
      return row;
    }),
  };
}
