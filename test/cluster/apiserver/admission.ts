// Defaulting and validation on create and update, as the real API server's
// registry strategies do for the kinds served: names, required fields,
// ClusterIP/NodePort allocation, the defaults kubectl and controllers rely on.
import type { KubeObject, Store } from '../store.ts';
import { RESOURCES, type ResourceDef } from './resources.ts';
import { invalid, type FieldError } from './status.ts';
import { allocateIp, allocateNodePort, checkRequestedIp } from './ipalloc.ts';
import { matchLabels, requirementsOf, type LabelSelectorObject } from './selectors.ts';
import { deepEqual, type Json } from './patch.ts';

export interface AdmitContext {
  store: Store;
  serviceCidr: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const objs = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

function q(v: unknown): string {
  return JSON.stringify(v);
}

export function validateName(def: ResourceDef, name: string): FieldError[] {
  if (!name) return [{ type: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }];
  let ok: boolean;
  let msg: string;
  if (def.key === RESOURCES.services) {
    ok = DNS1035.test(name) && name.length <= 63;
    msg = DNS1035_MSG;
  } else if (def.key === RESOURCES.namespaces) {
    ok = LABEL.test(name) && name.length <= 63;
    msg = LABEL_MSG;
  } else {
    ok = SUBDOMAIN.test(name) && name.length <= 253;
    msg = SUBDOMAIN_MSG;
  }
  return ok ? [] : [{ type: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: ${q(name)}: ${msg}` }];
}

function imagePullPolicy(image: string): string {
  const last = image.split('/').pop() ?? '';
  if (last.includes('@')) return 'IfNotPresent';
  const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** SetDefaults_PodSpec and SetDefaults_Container, for a pod and for pod templates. */
export function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  if (spec.serviceAccountName === undefined && typeof spec.serviceAccount === 'string') spec.serviceAccountName = spec.serviceAccount;
  spec.serviceAccountName ??= 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  for (const c of [...objs(spec.containers), ...objs(spec.initContainers)]) {
    if (typeof c.image === 'string') c.imagePullPolicy ??= imagePullPolicy(c.image);
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    for (const p of objs(c.ports)) p.protocol ??= 'TCP';
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(isObj)) {
      probe.timeoutSeconds ??= 1;
      probe.periodSeconds ??= 10;
      probe.successThreshold ??= 1;
      probe.failureThreshold ??= 3;
      if (isObj(probe.httpGet)) {
        probe.httpGet.path ??= '/';
        probe.httpGet.scheme ??= 'HTTP';
      }
    }
  }
}

function validatePodSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObj(spec)) return [{ type: 'FieldValueRequired', field: path, message: 'Required value' }];
  const cs = objs(spec.containers);
  if (cs.length === 0) errs.push({ type: 'FieldValueRequired', field: `${path}.containers`, message: 'Required value' });
  const seen = new Set<string>();
  cs.forEach((c, i) => {
    const f = `${path}.containers[${i}]`;
    if (typeof c.name !== 'string' || c.name === '') errs.push({ type: 'FieldValueRequired', field: `${f}.name`, message: 'Required value' });
    else if (!LABEL.test(c.name)) errs.push({ type: 'FieldValueInvalid', field: `${f}.name`, message: `Invalid value: ${q(c.name)}: ${LABEL_MSG}` });
    else if (seen.has(c.name)) errs.push({ type: 'FieldValueDuplicate', field: `${f}.name`, message: `Duplicate value: ${q(c.name)}` });
    else seen.add(c.name);
    if (typeof c.image !== 'string' || c.image.trim() === '') errs.push({ type: 'FieldValueRequired', field: `${f}.image`, message: 'Required value' });
    objs(c.ports).forEach((p, j) => {
      const port = p.containerPort;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
        errs.push({ type: 'FieldValueInvalid', field: `${f}.ports[${j}].containerPort`, message: `Invalid value: ${q(port ?? 0)}: must be between 1 and 65535, inclusive` });
      }
    });
  });
  return errs;
}

function serviceIps(store: Store, except?: string): Set<string> {
  const taken = new Set<string>();
  for (const s of store.list(RESOURCES.services)) {
    if (except && s.metadata.uid === except) continue;
    const spec = isObj(s.spec) ? s.spec : {};
    if (typeof spec.clusterIP === 'string' && spec.clusterIP !== 'None' && spec.clusterIP !== '') taken.add(spec.clusterIP);
  }
  return taken;
}

function nodePorts(store: Store, except?: string): Set<number> {
  const taken = new Set<number>();
  for (const s of store.list(RESOURCES.services)) {
    if (except && s.metadata.uid === except) continue;
    for (const p of objs(isObj(s.spec) ? s.spec.ports : undefined)) if (typeof p.nodePort === 'number') taken.add(p.nodePort);
  }
  return taken;
}

function defaultService(ctx: AdmitContext, svc: KubeObject, old: KubeObject | undefined, errs: FieldError[]): void {
  const spec = (isObj(svc.spec) ? svc.spec : (svc.spec = {})) as Obj;
  const oldSpec = old && isObj(old.spec) ? old.spec : undefined;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  spec.internalTrafficPolicy ??= 'Cluster';
  const ports = objs(spec.ports);
  if (ports.length === 0 && spec.clusterIP !== 'None' && spec.type !== 'ExternalName') {
    errs.push({ type: 'FieldValueRequired', field: 'spec.ports', message: 'Required value' });
  }
  const names = new Set<string>();
  ports.forEach((p, i) => {
    p.protocol ??= 'TCP';
    p.targetPort ??= p.port;
    if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      errs.push({ type: 'FieldValueInvalid', field: `spec.ports[${i}].port`, message: `Invalid value: ${q(p.port ?? 0)}: must be between 1 and 65535, inclusive` });
    }
    if (ports.length > 1 && (typeof p.name !== 'string' || p.name === '')) {
      errs.push({ type: 'FieldValueRequired', field: `spec.ports[${i}].name`, message: 'Required value' });
    } else if (typeof p.name === 'string' && p.name !== '') {
      if (names.has(p.name)) errs.push({ type: 'FieldValueDuplicate', field: `spec.ports[${i}].name`, message: `Duplicate value: ${q(p.name)}` });
      names.add(p.name);
    }
  });
  if (spec.type === 'ExternalName') return;

  // clusterIP is immutable: an update that leaves it out keeps the old one.
  if (oldSpec && typeof oldSpec.clusterIP === 'string') {
    if (spec.clusterIP === undefined || spec.clusterIP === '') spec.clusterIP = oldSpec.clusterIP;
    else if (spec.clusterIP !== oldSpec.clusterIP) {
      errs.push({ type: 'FieldValueInvalid', field: 'spec.clusterIPs[0]', message: `Invalid value: ${q([spec.clusterIP])}: may not change once set` });
    }
  } else if (spec.clusterIP === undefined || spec.clusterIP === '') {
    const ip = allocateIp(ctx.serviceCidr, serviceIps(ctx.store));
    if (!ip) errs.push({ type: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: []string{}: failed to allocate IP: range is full` });
    else spec.clusterIP = ip;
  } else if (spec.clusterIP !== 'None') {
    const check = checkRequestedIp(ctx.serviceCidr, String(spec.clusterIP), serviceIps(ctx.store, old?.metadata.uid));
    if (!check.ok) errs.push({ type: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: ${q([spec.clusterIP])}: ${check.message}` });
  }
  if (typeof spec.clusterIP === 'string') spec.clusterIPs = [spec.clusterIP];
  spec.ipFamilies ??= ['IPv4'];
  spec.ipFamilyPolicy ??= 'SingleStack';

  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    spec.externalTrafficPolicy ??= 'Cluster';
    const oldPorts = objs(oldSpec?.ports);
    const taken = nodePorts(ctx.store, old?.metadata.uid);
    for (const p of ports) {
      if (typeof p.nodePort === 'number') {
        taken.add(p.nodePort);
        continue;
      }
      const prev = oldPorts.find((o) => o.port === p.port && o.protocol === p.protocol);
      const np = typeof prev?.nodePort === 'number' ? prev.nodePort : allocateNodePort(taken);
      if (np !== undefined) {
        p.nodePort = np;
        taken.add(np);
      }
    }
  }
  if (svc.status === undefined || !old) svc.status = { loadBalancer: {} };
}

function validateSelectorAndTemplate(spec: Obj, errs: FieldError[]): void {
  if (!isObj(spec.selector)) {
    errs.push({ type: 'FieldValueRequired', field: 'spec.selector', message: 'Required value' });
    return;
  }
  const template = isObj(spec.template) ? spec.template : undefined;
  const labels = template && isObj(template.metadata) ? (template.metadata.labels as Record<string, string> | undefined) : undefined;
  const reqs = requirementsOf(spec.selector as LabelSelectorObject);
  if (reqs.length === 0) errs.push({ type: 'FieldValueInvalid', field: 'spec.selector', message: 'Invalid value: "null": empty selector is invalid for deployment' });
  else if (!matchLabels(reqs, labels)) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.template.metadata.labels', message: `Invalid value: ${q(labels ?? {})}: \`selector\` does not match template \`labels\`` });
  }
  if (!template) errs.push({ type: 'FieldValueRequired', field: 'spec.template', message: 'Required value' });
  else {
    if (isObj(template.spec)) defaultPodSpec(template.spec);
    errs.push(...validatePodSpec(template.spec, 'spec.template.spec'));
  }
}

function defaultWorkload(def: ResourceDef, obj: KubeObject, old: KubeObject | undefined, errs: FieldError[]): void {
  const spec = (isObj(obj.spec) ? obj.spec : (obj.spec = {})) as Obj;
  spec.replicas ??= 1;
  if (typeof spec.replicas !== 'number' || spec.replicas < 0 || !Number.isInteger(spec.replicas)) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${q(spec.replicas)}: must be greater than or equal to 0` });
  }
  if (def.key === RESOURCES.deployments) {
    spec.strategy ??= { type: 'RollingUpdate' };
    const strategy = spec.strategy as Obj;
    strategy.type ??= 'RollingUpdate';
    if (strategy.type === 'RollingUpdate') {
      const ru = (isObj(strategy.rollingUpdate) ? strategy.rollingUpdate : (strategy.rollingUpdate = {})) as Obj;
      ru.maxUnavailable ??= '25%';
      ru.maxSurge ??= '25%';
    }
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
  }
  validateSelectorAndTemplate(spec, errs);
  if (old && isObj(old.spec) && JSON.stringify(old.spec.selector) !== JSON.stringify(spec.selector)) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.selector', message: `Invalid value: ${q(spec.selector)}: field is immutable` });
  }
  if (!old) obj.status = {};
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const QUALIFIED_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** metadata.labels and metadata.annotations keys (qualified names) and label values. */
function validateMeta(obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    const name = k.includes('/') ? k.slice(k.indexOf('/') + 1) : k;
    if (!QUALIFIED_NAME.test(k) || name.length > 63) errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: ${q(k)}: ${QUALIFIED_MSG}` });
    if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) {
      errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: ${q(v)}: ${LABEL_VALUE_MSG}` });
    }
  }
  for (const k of Object.keys(obj.metadata.annotations ?? {})) {
    if (!QUALIFIED_NAME.test(k.toLowerCase())) errs.push({ type: 'FieldValueInvalid', field: 'metadata.annotations', message: `Invalid value: ${q(k)}: ${QUALIFIED_MSG}` });
  }
  return errs;
}

/** The pod spec fields an update may change (ValidatePodUpdate); everything else is fixed at creation. */
function podSpecUpdateErrors(spec: Obj, oldSpec: Obj): FieldError[] {
  // Pods written straight to the store (controllers, tests) may lack the
  // defaults the new spec got; a pull policy defaulted now follows the new image.
  const noPolicy = new Set(objs(oldSpec.containers).filter((c) => c.imagePullPolicy === undefined).map((c) => c.name));
  oldSpec = structuredClone(oldSpec);
  defaultPodSpec(oldSpec);
  const strip = (s: Obj): Obj => {
    const c = structuredClone(s);
    for (const list of [c.containers, c.initContainers]) {
      for (const ct of objs(list)) {
        delete ct.image;
        if (noPolicy.has(ct.name)) delete ct.imagePullPolicy;
      }
    }
    delete c.activeDeadlineSeconds;
    delete c.tolerations;
    delete c.terminationGracePeriodSeconds;
    delete c.schedulingGates;
    // Binding (pods/binding) sets nodeName once; the test cluster's scheduler writes it through the store.
    if (oldSpec.nodeName === undefined) delete c.nodeName;
    return c;
  };
  const canonical = (v: Obj): Json => JSON.parse(JSON.stringify(v)) as Json;
  if (deepEqual(canonical(strip(spec)), canonical(strip(oldSpec)))) return [];
  return [
    {
      type: 'FieldValueForbidden',
      field: 'spec',
      message:
        'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
    },
  ];
}

/**
 * Defaults and validates `obj` (a create when `old` is undefined, else an
 * update of `old`); throws 422 Invalid with every field error found.
 */
export function admit(ctx: AdmitContext, def: ResourceDef, obj: KubeObject, old?: KubeObject): void {
  const errs: FieldError[] = old ? [] : validateName(def, obj.metadata.name);
  errs.push(...validateMeta(obj));
  switch (def.key) {
    case RESOURCES.pods: {
      if (!isObj(obj.spec)) obj.spec = {};
      defaultPodSpec(obj.spec as Obj);
      errs.push(...validatePodSpec(obj.spec, 'spec'));
      if (old && isObj(old.spec)) errs.push(...podSpecUpdateErrors(obj.spec as Obj, old.spec));
      if (!old) obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    }
    case RESOURCES.services:
      defaultService(ctx, obj, old, errs);
      break;
    case RESOURCES.deployments:
    case RESOURCES.replicasets:
      defaultWorkload(def, obj, old, errs);
      break;
    case RESOURCES.namespaces:
      obj.spec = { finalizers: ['kubernetes'] };
      if (!old) obj.status = { phase: 'Active' };
      obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name };
      break;
    case RESOURCES.secrets:
      obj.type ??= 'Opaque';
      break;
  }
  if (errs.length > 0) throw invalid(def.kind, def.group, obj.metadata.name, errs);
}
