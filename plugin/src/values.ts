// Parsers for flag and argument values: each turns one string from the
// command line into a typed value or throws KT_ERR_BAD_VALUE with an exact
// message, so the command bodies never look at raw strings again (ARCHITECTURE.md
// rule 6, like undici lib/core/request.js validating at the edge).
// `what` names the flag or argument in the message ("--socks-port", "target").
import { isIP } from 'node:net';
import { ktError } from './errors.ts';

function bad(what: string, value: string, reason: string): never {
  throw ktError('KT_ERR_BAD_VALUE', { what, value, reason });
}

/** A TCP port, 1-65535, written in decimal digits only ("08" and "1e3" are refused). */
export function parsePort(raw: string, what: string): number {
  return port(raw, what, raw);
}

/** A port that is part of a larger value (`whole`), which the message quotes. */
function port(s: string, what: string, whole: string): number {
  const n = /^[0-9]{1,5}$/.test(s) && !/^0[0-9]/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= 65535)) bad(what, whole, `${s === whole ? 'a port' : `"${s}" is not a port: a port`} is a whole number from 1 to 65535`);
  return n;
}

/** A whole number of seconds, at least 1 (an environment setting such as KT_COUNT_WINDOW_SECONDS). */
export function parsePositiveSeconds(raw: string, what: string): number {
  const n = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) bad(what, raw, 'expected a whole number of seconds from 1 to 999999, for example 60');
  return n;
}

export function parseBool(raw: string, what: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return bad(what, raw, 'expected true or false');
}

export function parseChoice<T extends string>(choices: readonly T[]): (raw: string, what: string) => T {
  return (raw, what) => {
    if (!(choices as readonly string[]).includes(raw)) bad(what, raw, `expected one of ${choices.join(', ')}`);
    return raw as T;
  };
}

/** A local port and the port it stands for on the other side. */
export interface PortMapping {
  readonly local: number;
  readonly remote: number;
}

/** `LOCAL[:REMOTE][,...]`: REMOTE defaults to LOCAL; each REMOTE at most once. */
export function parseExpose(raw: string, what: string): PortMapping[] {
  if (raw === '') bad(what, raw, 'expected LOCAL[:REMOTE][,...], for example 8080 or 8080:80,9090');
  const out = raw.split(',').map((item) => {
    const m = /^([^:]*)(?::([^:]*))?$/.exec(item);
    if (!m || m[1] === '') bad(what, raw, `"${item}" is not LOCAL[:REMOTE] (example: 8080:80)`);
    const local = port(m[1], what, raw);
    return { local, remote: m[2] === undefined ? local : port(m[2], what, raw) };
  });
  checkUniqueRemotes(out, what, raw);
  return out;
}

export function checkUniqueRemotes(mappings: readonly PortMapping[], what: string, raw: string): void {
  const seen = new Set<number>();
  for (const m of mappings) {
    if (seen.has(m.remote)) bad(what, raw, `remote port ${m.remote} is given twice`);
    seen.add(m.remote);
  }
}

/** `LOCAL:REMOTE`, or one `PORT` for both sides (as `kubectl port-forward`). */
export function parsePortMapping(raw: string, what: string): PortMapping {
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(raw);
  if (!m) bad(what, raw, 'expected LOCAL:REMOTE or PORT, for example 5432:5432');
  const local = port(m[1], what, raw);
  return { local, remote: m[2] === undefined ? local : port(m[2], what, raw) };
}

/** One rule of `--header`: which requests a mesh sends to the laptop. */
export type HeaderMatch =
  | { readonly name: string; readonly kind: 'exact'; readonly value: string }
  | { readonly name: string; readonly kind: 'regex'; readonly pattern: string };

// RFC 9110 §5.6.2 token characters; `~` is one too, but `NAME~=REGEX` takes
// it as the operator, so a header name cannot end in `~` here.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `NAME=VALUE` (exact match) or `NAME~=REGEX` (RE2 regular expression, matched against the whole value). */
export function parseHeader(raw: string, what: string): HeaderMatch {
  const eq = raw.indexOf('=');
  if (eq <= 0) bad(what, raw, 'expected NAME=VALUE or NAME~=REGEX, for example x-kt-version=alice');
  const regex = raw[eq - 1] === '~';
  const name = raw.slice(0, regex ? eq - 1 : eq);
  const value = raw.slice(eq + 1);
  if (!TOKEN.test(name)) bad(what, raw, `"${name}" is not an HTTP header name`);
  if (/[\r\n\0]/.test(value)) bad(what, raw, 'a header value cannot contain CR, LF or NUL');
  if (value === '') bad(what, raw, 'the value is empty');
  // Header names are case-insensitive (RFC 9110 §5.1); HTTP/2 sends them lower case.
  const lname = name.toLowerCase();
  if (!regex) return { name: lname, kind: 'exact', value };
  // Checked against the router's RE2 engine by checkRegexHeaders (header-regex.ts),
  // which loads the engine only when a rule has a regex.
  return { name: lname, kind: 'regex', pattern: value };
}

/** One W3C baggage member (https://www.w3.org/TR/baggage/): KEY and its decoded VALUE. */
export interface BaggageMember {
  readonly key: string;
  readonly value: string;
}

/**
 * `KEY=VALUE` for `--baggage`: KEY is an RFC 9110 token (the spec's key),
 * VALUE the text as the application reads it (percent-decoded); it is
 * percent-encoded where it goes into a header.
 */
export function parseBaggageMember(raw: string, what: string): BaggageMember {
  const eq = raw.indexOf('=');
  if (eq <= 0) bad(what, raw, 'expected KEY=VALUE, for example kt=alice');
  const key = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  if (!TOKEN.test(key)) bad(what, raw, `"${key}" is not a baggage key: letters, digits and !#$%&'*+-.^_\`|~ only, for example kt=alice`);
  if (value === '') bad(what, raw, 'the value is empty, for example kt=alice');
  if (/[\0-\x1f\x7f]/.test(value)) bad(what, raw, 'a baggage value cannot contain control characters');
  return { key, value };
}

// Headers the HTTP proxy must own (framing, hop-by-hop, RFC 9110 §7.6.1, the
// target): adding them to every request would break requests, not tag them.
const NOT_INJECTABLE = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization']);

/** `NAME=VALUE` for `connect --header`: a header set on every request (no regex form here). */
export function parseHeaderToAdd(raw: string, what: string): { readonly name: string; readonly value: string } {
  const h = parseHeader(raw, what);
  if (h.kind !== 'exact') bad(what, raw, 'connect sets a header value; NAME~=REGEX is a mesh rule. Use NAME=VALUE, for example x-kt-version=alice');
  if (NOT_INJECTABLE.has(h.name)) bad(what, raw, `the proxy sets ${h.name} itself; pick another header, for example x-kt-version=alice`);
  if (h.name === 'baggage') bad(what, raw, 'use --baggage KEY=VALUE to add a baggage member (members are merged, not replaced)');
  return { name: h.name, value: h.value };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_RULE = 'a name is at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit';
const SUBDOMAIN_RULE = 'a name is lower-case letters, digits, "-" and ".", each dot-separated part starting and ending with a letter or digit';

const isLabel = (s: string): boolean => s.length <= 63 && DNS_LABEL.test(s);
const isSubdomain = (s: string): boolean => s.length <= 253 && s.split('.').every(isLabel);

/** RFC 1123 label, as Kubernetes requires for Service and namespace names. */
export function parseDnsLabel(raw: string, what: string): string {
  if (!isLabel(raw)) bad(what, raw, LABEL_RULE);
  return raw;
}

/** RFC 1123 subdomain, as Kubernetes requires for Deployment names. */
export function parseDnsSubdomain(raw: string, what: string): string {
  if (!isSubdomain(raw)) bad(what, raw, SUBDOMAIN_RULE);
  return raw;
}

/** A comma-separated list of namespace names. */
export function parseNamespaces(raw: string, what: string): string[] {
  return raw.split(',').map((n) => parseDnsLabel(n, what));
}

export type WorkloadKind = 'deployment' | 'service';

/** `deploy/NAME`, `svc/NAME`, or a bare `NAME` (kind left to the command). */
export interface WorkloadRef {
  readonly kind?: WorkloadKind;
  readonly name: string;
}

// The spellings kubectl accepts for the two kinds (short name, singular, plural, group-qualified).
const KINDS: Record<string, WorkloadKind> = {
  deploy: 'deployment', deployment: 'deployment', deployments: 'deployment',
  'deployment.apps': 'deployment', 'deployments.apps': 'deployment',
  svc: 'service', service: 'service', services: 'service',
};

export function parseWorkloadRef(raw: string, what: string, allowed: readonly WorkloadKind[] = ['deployment', 'service']): WorkloadRef {
  const slash = raw.indexOf('/');
  const forms = allowed.map((k) => (k === 'deployment' ? 'deploy/NAME' : 'svc/NAME')).join(', ');
  const kind = slash < 0 ? undefined : KINDS[raw.slice(0, slash).toLowerCase()];
  if (slash >= 0 && (!kind || !allowed.includes(kind))) bad(what, raw, `expected ${forms} or NAME`);
  const name = raw.slice(slash + 1);
  // Services are DNS labels; Deployments may also contain dots. A bare name
  // may be a Service, so it must be a label unless only Deployments are allowed.
  const asService = kind ? kind === 'service' : allowed.includes('service');
  if (asService ? !isLabel(name) : !isSubdomain(name)) bad(what, raw, asService ? LABEL_RULE : SUBDOMAIN_RULE);
  return kind ? { kind, name } : { name };
}

/** `svc/NAME`, or a host name or IP address the cluster can reach. */
export type ForwardTarget =
  | { readonly kind: 'service'; readonly name: string }
  | { readonly kind: 'host'; readonly host: string };

export function parseForwardTarget(raw: string, what: string): ForwardTarget {
  if (raw.includes('/')) {
    const ref = parseWorkloadRef(raw, what, ['service']);
    return { kind: 'service', name: ref.name };
  }
  if (isIP(raw)) return { kind: 'host', host: raw };
  const host = raw.toLowerCase().replace(/\.$/, '');
  if (!isSubdomain(host)) {
    bad(what, raw, 'expected svc/NAME, a host name (web.shop.svc.cluster.local) or an IP address');
  }
  return { kind: 'host', host };
}

/** `[NAMESPACE:]NAME` of a ServiceAccount, as `kubectl create rolebinding --serviceaccount`. */
export interface ServiceAccountRef {
  readonly namespace?: string;
  readonly name: string;
}

export function parseServiceAccount(raw: string, what: string): ServiceAccountRef {
  const parts = raw.split(':');
  if (parts.length > 2) bad(what, raw, 'expected [NAMESPACE:]NAME');
  if (parts.length === 1) return { name: parseDnsSubdomain(raw, what) };
  return { namespace: parseDnsLabel(parts[0], what), name: parseDnsSubdomain(parts[1], what) };
}

/** A non-empty string (user and group names are free-form in Kubernetes). */
export function parseNonEmpty(raw: string, what: string): string {
  if (raw === '') bad(what, raw, 'the value is empty');
  return raw;
}
