// The cluster DNS's answers, following the Kubernetes DNS specification
// (github.com/kubernetes/dns docs/specification.md) as CoreDNS's kubernetes
// plugin implements it. Pure: a question and the objects in, records out.
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Answer } from 'dns-packet';
import type { ClusterRecordSource, EndpointAddress, Service, ServicePort } from './source.ts';

export const TTL = 5;

export type ClusterView = Pick<ClusterRecordSource, 'services' | 'endpoints' | 'pods'>;

export interface ClusterAnswer {
  rcode: 'NOERROR' | 'NXDOMAIN';
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/**
 * Answer `name`/`type` from the cluster objects, or null when the name is
 * none of ours (outside the domain, or a reverse name of no cluster address):
 * the server then forwards it or refuses it. Owner names of direct answers
 * are `name` as the client wrote it.
 */
export function resolveCluster(name: string, type: string, view: ClusterView, domain: string): ClusterAnswer | null {
  const asked = name.replace(/\.$/, '');
  const lower = asked.toLowerCase();
  const reverse = reverseIp(lower);
  if (reverse) return ptr(asked, type, reverse, view, domain);
  if (lower !== domain && !lower.endsWith(`.${domain}`)) return null;

  const soa = soaRecord(domain);
  const nx: ClusterAnswer = { rcode: 'NXDOMAIN', answers: [], authorities: [soa], additionals: [] };
  const nodata: ClusterAnswer = { rcode: 'NOERROR', answers: [], authorities: [soa], additionals: [] };
  const found = (answers: Answer[], additionals: Answer[] = []): ClusterAnswer =>
    answers.length > 0 ? { rcode: 'NOERROR', answers, authorities: [], additionals } : nodata;

  const labels = lower === domain ? [] : lower.slice(0, -(domain.length + 1)).split('.');
  if (labels.length === 0) {
    if (type === 'SOA') return found([{ ...soa, name: asked }]);
    if (type === 'NS') return found([{ type: 'NS', name: asked, ttl: TTL, data: `ns.dns.${domain}` }]);
    return nodata;
  }
  const zone = labels[labels.length - 1];
  const rest = labels.slice(0, -1);
  if (zone === 'svc') {
    if (rest.length === 0) return nodata;
    const ns = rest[rest.length - 1];
    const services = view.services().filter((s) => (s.metadata.namespace ?? '') === ns);
    // A namespace with Services is an empty non-terminal: NODATA, not NXDOMAIN (RFC 8020).
    if (rest.length === 1) return services.length > 0 ? nodata : nx;
    if (rest.length === 2) {
      const svc = services.find((s) => s.metadata.name === rest[0]);
      return svc ? found(...serviceRecords(asked, type, svc, view, domain)) : nx;
    }
    if (rest.length === 3) {
      const svc = services.find((s) => s.metadata.name === rest[1]);
      if (!svc) return nx;
      const addrs = readyAddresses(view, ns, svc.metadata.name).filter((a) => endpointLabel(a) === rest[0]);
      return addrs.length > 0 ? found(addrs.flatMap((a) => addressRecord(asked, type, a.ip))) : nx;
    }
    if (rest.length === 4 && rest[0].startsWith('_') && rest[1].startsWith('_')) {
      const svc = services.find((s) => s.metadata.name === rest[2]);
      if (!svc) return nx;
      const srv = srvRecords(asked, svc, view, domain, rest[0].slice(1), rest[1].slice(1));
      if (srv.answers.length === 0) return nx;
      return type === 'SRV' ? found(srv.answers, srv.additionals) : nodata;
    }
    return nx;
  }
  if (zone === 'pod') {
    if (rest.length === 0) return nodata;
    const ns = rest[rest.length - 1];
    const pods = view.pods().filter((p) => (p.metadata.namespace ?? '') === ns);
    if (rest.length === 1) return pods.length > 0 ? nodata : nx;
    if (rest.length !== 2) return nx;
    // "pods verified": the dashed address must belong to a pod in that namespace.
    const ip = undash(rest[0]);
    if (!ip || !pods.some((p) => podIps(p).some((x) => sameIp(x, ip)))) return nx;
    return found(addressRecord(asked, type, ip));
  }
  return nx;
}

/** A/AAAA (or CNAME for ExternalName) for a Service name, plus SRV for all its named ports. */
function serviceRecords(asked: string, type: string, svc: Service, view: ClusterView, domain: string): [Answer[], Answer[]] {
  const spec = svc.spec ?? {};
  if (spec.type === 'ExternalName' && spec.externalName) {
    return [[{ type: 'CNAME', name: asked, ttl: TTL, data: spec.externalName.replace(/\.$/, '') }], []];
  }
  if (type === 'SRV') {
    const out = { answers: [] as Answer[], additionals: [] as Answer[] };
    for (const p of spec.ports ?? []) {
      if (!p.name) continue;
      const r = srvRecords(asked, svc, view, domain, p.name, (p.protocol ?? 'TCP').toLowerCase());
      out.answers.push(...r.answers);
      out.additionals.push(...r.additionals);
    }
    return [out.answers, dedupe(out.additionals)];
  }
  return [ipsOf(svc, view).flatMap((ip) => addressRecord(asked, type, ip)), []];
}

/** ClusterIPs, or for a headless Service the ready endpoint addresses. */
function ipsOf(svc: Service, view: ClusterView): string[] {
  if (isHeadless(svc)) return readyAddresses(view, svc.metadata.namespace ?? '', svc.metadata.name).map((a) => a.ip);
  const spec = svc.spec ?? {};
  return (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => isIP(ip) !== 0);
}

function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === 'None';
}

/** SRV for `_port._proto.svc.ns.svc.domain`: the Service name for a ClusterIP Service, one per endpoint for a headless one. */
function srvRecords(asked: string, svc: Service, view: ClusterView, domain: string, portName: string, proto: string): { answers: Answer[]; additionals: Answer[] } {
  const ns = svc.metadata.namespace ?? '';
  const svcName = `${svc.metadata.name}.${ns}.svc.${domain}`;
  const matches = (p: ServicePort): boolean => p.name === portName && (p.protocol ?? 'TCP').toLowerCase() === proto;
  if (!isHeadless(svc)) {
    const ports = (svc.spec?.ports ?? []).filter(matches);
    const ips = ipsOf(svc, view);
    return {
      answers: ports.map((p) => ({ type: 'SRV', name: asked, ttl: TTL, data: { priority: 0, weight: 100, port: p.port, target: svcName } })),
      additionals: ports.length > 0 ? ips.flatMap((ip) => addressRecord(svcName, isIPv6(ip) ? 'AAAA' : 'A', ip)) : [],
    };
  }
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  const ep = view.endpoints(ns, svc.metadata.name);
  for (const subset of ep?.subsets ?? []) {
    const ports = (subset.ports ?? []).filter(matches);
    for (const a of subset.addresses ?? []) {
      const target = `${endpointLabel(a)}.${svcName}`;
      for (const p of ports) answers.push({ type: 'SRV', name: asked, ttl: TTL, data: { priority: 0, weight: 100, port: p.port, target } });
      if (ports.length > 0) additionals.push(...addressRecord(target, isIPv6(a.ip) ? 'AAAA' : 'A', a.ip));
    }
  }
  return { answers, additionals };
}

function readyAddresses(view: ClusterView, ns: string, name: string): EndpointAddress[] {
  return (view.endpoints(ns, name)?.subsets ?? []).flatMap((s) => s.addresses ?? []).filter((a) => isIP(a.ip) !== 0);
}

/** An endpoint's name under its Service: its hostname, else its dashed address (CoreDNS's endpoint_pod_names off). */
function endpointLabel(a: EndpointAddress): string {
  return (a.hostname ?? dash(a.ip)).toLowerCase();
}

function addressRecord(owner: string, type: string, ip: string): Answer[] {
  if (type === 'A' && isIPv4(ip)) return [{ type: 'A', name: owner, ttl: TTL, data: ip }];
  if (type === 'AAAA' && isIPv6(ip)) return [{ type: 'AAAA', name: owner, ttl: TTL, data: ip }];
  return [];
}

function ptr(asked: string, type: string, ip: string, view: ClusterView, domain: string): ClusterAnswer | null {
  const targets: string[] = [];
  for (const svc of view.services()) {
    const ns = svc.metadata.namespace ?? '';
    if (!isHeadless(svc) && ipsOf(svc, view).some((x) => sameIp(x, ip))) targets.push(`${svc.metadata.name}.${ns}.svc.${domain}`);
  }
  if (targets.length === 0) {
    for (const svc of view.services().filter(isHeadless)) {
      const ns = svc.metadata.namespace ?? '';
      for (const a of readyAddresses(view, ns, svc.metadata.name)) {
        if (sameIp(a.ip, ip)) targets.push(`${endpointLabel(a)}.${svc.metadata.name}.${ns}.svc.${domain}`);
      }
    }
  }
  if (targets.length === 0) {
    const pod = view.pods().find((p) => podIps(p).some((x) => sameIp(x, ip)));
    if (pod) targets.push(`${dash(ip)}.${pod.metadata.namespace ?? ''}.pod.${domain}`);
  }
  if (targets.length === 0) return null;
  if (type !== 'PTR') return { rcode: 'NOERROR', answers: [], authorities: [soaRecord(domain)], additionals: [] };
  return { rcode: 'NOERROR', answers: targets.map((t) => ({ type: 'PTR', name: asked, ttl: TTL, data: t })), authorities: [], additionals: [] };
}

function podIps(p: { status?: { podIP?: string; podIPs?: { ip: string }[] } }): string[] {
  return p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []);
}

export function soaRecord(domain: string): Answer {
  return {
    type: 'SOA',
    name: domain,
    ttl: TTL,
    // minimum is the negative-caching TTL (RFC 2308 §5): keep it as short as the records.
    data: { mname: `ns.dns.${domain}`, rname: `hostmaster.${domain}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: TTL },
  };
}

/** 10.0.0.5 → 10-0-0-5; 2001:db8::1 → 2001-db8--1 (the spec's dashed form). */
export function dash(ip: string): string {
  return ip.replace(/[.:]/g, '-');
}

function undash(label: string): string | undefined {
  const v4 = label.replace(/-/g, '.');
  if (isIPv4(v4)) return v4;
  const v6 = label.replace(/-/g, ':');
  return isIPv6(v6) ? v6 : undefined;
}

/** The address a reverse name (in-addr.arpa / ip6.arpa, full length) stands for. */
export function reverseIp(name: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (v4) {
    const ip = [v4[4], v4[3], v4[2], v4[1]].map(Number).join('.');
    return isIPv4(ip) ? ip : undefined;
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (v6) {
    const hex = v6[1].split('.').filter(Boolean).reverse().join('');
    return hex.match(/.{4}/g)?.join(':');
  }
  return undefined;
}

function sameIp(a: string, b: string): boolean {
  if (a === b) return true;
  if (!isIPv6(a) || !isIPv6(b)) return false;
  return expand6(a) === expand6(b);
}

function expand6(ip: string): string {
  const [head, tail = ''] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

function dedupe(rrs: Answer[]): Answer[] {
  const seen = new Set<string>();
  return rrs.filter((r) => {
    const k = JSON.stringify(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
