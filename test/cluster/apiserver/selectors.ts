// Label and field selectors, parsed once into requirements and matched
// without I/O. Grammar and semantics follow k8s.io/apimachinery's
// labels.Parse and fields.ParseSelector: `=`/`==`/`!=`, `in`/`notin`,
// `key` (exists), `!key` (does not exist), and `>`/`<` for integers.
import { badRequest } from './status.ts';

export type LabelOp = 'eq' | 'ne' | 'in' | 'notin' | 'exists' | 'notexists' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function checkKey(key: string, whole: string): void {
  if (!KEY_RE.test(key) || key.length > 316) {
    throw badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${whole}"`);
  }
}

function checkValue(v: string, whole: string): void {
  if (!VALUE_RE.test(v) || v.length > 63) {
    throw badRequest(`unable to parse requirement: invalid label value: "${v}" in selector "${whole}"`);
  }
}

export function parseLabelSelector(s: string): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  if (s.trim() === '') return reqs;
  for (const raw of splitOn(s, ',', true)) {
    const part = raw.trim();
    if (part === '') throw badRequest(`found '', expected: !, identifier, or 'end of string' in selector "${s}"`);
    let m: RegExpMatchArray | null;
    if ((m = /^!\s*(\S+)$/.exec(part))) {
      checkKey(m[1], s);
      reqs.push({ key: m[1], op: 'notexists', values: [] });
    } else if ((m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      checkKey(m[1], s);
      const values = m[3].split(',').map((v) => v.trim());
      for (const v of values) checkValue(v, s);
      reqs.push({ key: m[1], op: m[2] as 'in' | 'notin', values });
    } else if ((m = /^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*([^=!<>\s]*)$/.exec(part))) {
      checkKey(m[1], s);
      const op: LabelOp = m[2] === '!=' ? 'ne' : m[2] === '>' ? 'gt' : m[2] === '<' ? 'lt' : 'eq';
      if ((op === 'gt' || op === 'lt') && !/^-?\d+$/.test(m[3])) {
        throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in selector "${s}"`);
      }
      checkValue(m[3], s);
      reqs.push({ key: m[1], op, values: [m[3]] });
    } else if (/^[^=!<>\s(),]+$/.test(part)) {
      checkKey(part, s);
      reqs.push({ key: part, op: 'exists', values: [] });
    } else {
      throw badRequest(`unable to parse requirement: couldn't parse the selector string "${s}"`);
    }
  }
  return reqs;
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
      case 'in':
        return has && r.values.includes(v);
      case 'ne':
      case 'notin':
        return !has || !r.values.includes(v);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'gt':
        return has && /^-?\d+$/.test(v) && Number(v) > Number(r.values[0]);
      case 'lt':
        return has && /^-?\d+$/.test(v) && Number(v) < Number(r.values[0]);
    }
    return false;
  });
}

/** A metav1.LabelSelector (matchLabels + matchExpressions) as the API carries it. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** metav1.LabelSelectorAsSelector: an empty selector matches everything. */
export function requirementsOf(sel: LabelSelectorObject | undefined): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  for (const [key, v] of Object.entries(sel?.matchLabels ?? {})) reqs.push({ key, op: 'eq', values: [v] });
  for (const e of sel?.matchExpressions ?? []) {
    const op: LabelOp =
      e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : 'notexists';
    reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return reqs;
}

/** The selector string form (Scale's status.selector, `kubectl get -o wide`'s SELECTOR column). */
export function labelSelectorString(reqs: LabelRequirement[]): string {
  return [...reqs]
    .sort((a, b) => a.key.localeCompare(b.key))
    .map((r) => {
      switch (r.op) {
        case 'eq':
          return `${r.key}=${r.values[0]}`;
        case 'ne':
          return `${r.key}!=${r.values[0]}`;
        case 'in':
          return `${r.key} in (${[...r.values].sort().join(',')})`;
        case 'notin':
          return `${r.key} notin (${[...r.values].sort().join(',')})`;
        case 'exists':
          return r.key;
        case 'notexists':
          return `!${r.key}`;
        case 'gt':
          return `${r.key}>${r.values[0]}`;
        case 'lt':
          return `${r.key}<${r.values[0]}`;
      }
      return '';
    })
    .join(',');
}

export interface FieldRequirement {
  field: string;
  op: 'eq' | 'ne';
  value: string;
}

/**
 * Split on `sep` where it is not escaped by `\\` (field selectors escape `\\`,
 * `,` and `=`) and, with `parens`, not inside parentheses (`in (a,b)`).
 */
function splitOn(s: string, sep: string, parens: boolean): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (!parens && ch === '\\' && i + 1 < s.length) {
      cur += ch + s[++i];
      continue;
    }
    if (parens && ch === '(') depth++;
    if (parens && ch === ')') depth--;
    if (ch === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

export function parseFieldSelector(s: string): FieldRequirement[] {
  const reqs: FieldRequirement[] = [];
  if (s.trim() === '') return reqs;
  for (const part of splitOn(s, ',', false)) {
    const m = /^(.*?[^\\])(!=|==|=)(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    reqs.push({ field: unescape(m[1].trim()), op: m[2] === '!=' ? 'ne' : 'eq', value: unescape(m[3].trim()) });
  }
  return reqs;
}

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/**
 * The fields each resource supports in field selectors (the real API server
 * rejects any other with 400); metadata.name and metadata.namespace always.
 */
const FIELDS: Record<string, string[]> = {
  pods: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  services: ['spec.clusterIP', 'spec.type'],
  secrets: ['type'],
  namespaces: ['status.phase'],
  events: [
    'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion',
    'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type',
  ],
  'replicasets.apps': ['status.replicas'],
};

/** Checks every field is supported for `resource` (store key); throws 400 as the real server does. */
export function checkFields(resource: string, reqs: FieldRequirement[]): void {
  const allowed = FIELDS[resource] ?? [];
  for (const r of reqs) {
    if (r.field !== 'metadata.name' && r.field !== 'metadata.namespace' && !allowed.includes(r.field)) {
      throw badRequest(`field label not supported: ${r.field}`);
    }
  }
}

function fieldValue(obj: unknown, field: string): string {
  if (field === 'source') {
    const src = get(obj, 'source.component');
    return typeof src === 'string' ? src : '';
  }
  const v = get(obj, field);
  if (v === undefined || v === null) return field === 'spec.hostNetwork' ? 'false' : '';
  return String(v);
}

export function matchFields(reqs: FieldRequirement[], obj: unknown): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === 'eq'));
}
