// The service proxy (kube-proxy's nftables mode, reduced): ClusterIP:port →
// a ready endpoint chosen at random, for TCP and UDP; hairpin traffic (a pod
// reaching its own Service) is masqueraded; a ClusterIP port without
// endpoints is rejected at once instead of timing out. The whole table is
// rebuilt and replaced in one `nft -f` transaction on every change.
import { EventEmitter } from 'node:events';
import type { KubeObject, ObjectStore, WatchEvent } from '../store.ts';
import { debuglog } from 'node:util';
import { runResult } from './run.ts';

const debug = debuglog('kt-cluster');

interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
}

interface SlicePort {
  name?: string;
  port?: number;
  protocol?: string;
}

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
}

export interface ProxyRule {
  clusterIp: string;
  protocol: 'tcp' | 'udp';
  port: number;
  /** Ready backends as ip . port; empty means reject. */
  backends: { ip: string; port: number }[];
}

const ENDPOINT_SLICES = 'endpointslices.discovery.k8s.io';
const PROTOCOLS: Record<string, 'tcp' | 'udp'> = { TCP: 'tcp', UDP: 'udp' };

/**
 * The DNAT rules for the given Services and EndpointSlices (kube-proxy reads
 * slices, found by their `kubernetes.io/service-name` label; an endpoint
 * whose `ready` condition is absent counts as ready, as the API documents).
 * A terminating pod's endpoint is not ready (the EndpointSlice controller
 * says so), so it leaves the rules; only when a port has no ready endpoint
 * at all are the ones still serving while terminating used, as kube-proxy
 * does since Kubernetes 1.28 (KEP-1669, pkg/proxy/topology.go
 * CategorizeEndpoints): better a pod that finishes its work than a reset. Pure.
 */
export function proxyRules(services: KubeObject[], slices: KubeObject[]): ProxyRule[] {
  const bySvc = new Map<string, KubeObject[]>();
  for (const sl of slices) {
    const svc = sl.metadata.labels?.['kubernetes.io/service-name'];
    if (!svc || sl.addressType !== 'IPv4') continue;
    const k = `${sl.metadata.namespace}/${svc}`;
    bySvc.set(k, [...(bySvc.get(k) ?? []), sl]);
  }
  const rules: ProxyRule[] = [];
  for (const svc of services) {
    const spec = svc.spec as { clusterIP?: string; ports?: ServicePort[] } | undefined;
    const clusterIp = spec?.clusterIP;
    if (!clusterIp || clusterIp === 'None') continue;
    const mine = bySvc.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [];
    for (const sp of spec?.ports ?? []) {
      const protocol = PROTOCOLS[sp.protocol ?? 'TCP'];
      if (!protocol) continue;
      const pick = (use: (c: SliceEndpoint['conditions']) => boolean): { ip: string; port: number }[] => {
        const backends: { ip: string; port: number }[] = [];
        const seen = new Set<string>();
        for (const sl of mine) {
          const ep = ((sl.ports as SlicePort[] | undefined) ?? []).find((p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === (sp.protocol ?? 'TCP'));
          if (!ep?.port) continue;
          for (const e of (sl.endpoints as SliceEndpoint[] | undefined) ?? []) {
            if (!use(e.conditions)) continue;
            const ip = e.addresses?.[0];
            if (!ip || seen.has(`${ip}:${ep.port}`)) continue;
            seen.add(`${ip}:${ep.port}`);
            backends.push({ ip, port: ep.port });
          }
        }
        return backends;
      };
      const ready = pick((c) => c?.ready !== false);
      const backends = ready.length > 0 ? ready : pick((c) => c?.serving === true && c.terminating === true);
      rules.push({ clusterIp, protocol, port: sp.port, backends });
    }
  }
  return rules;
}

// A TCP reset reaches a pod on the bridge; the ICMP error kube-proxy sends
// for other protocols is lost on the br_netfilter path, so UDP just drops.
const REJECT = [
  '    ip daddr . meta l4proto . th dport @no_endpoints meta l4proto tcp reject with tcp reset',
  '    ip daddr . meta l4proto . th dport @no_endpoints reject',
];

/** The complete nftables table for the rules, as one atomic `nft -f` script. Pure. */
export function nftScript(table: string, rules: ProxyRule[]): string {
  const dnat: string[] = [];
  const noEndpoints: string[] = [];
  const hairpin = new Set<string>();
  for (const r of rules) {
    const match = `ip daddr ${r.clusterIp} ${r.protocol} dport ${r.port}`;
    if (r.backends.length === 0) {
      noEndpoints.push(`${r.clusterIp} . ${r.protocol} . ${r.port}`);
      continue;
    }
    for (const b of r.backends) hairpin.add(`${b.ip} . ${b.ip}`);
    if (r.backends.length === 1) {
      dnat.push(`    ${match} dnat ip to ${r.backends[0].ip}:${r.backends[0].port}`);
    } else {
      const map = r.backends.map((b, i) => `${i} : ${b.ip} . ${b.port}`).join(', ');
      dnat.push(`    ${match} dnat ip to numgen random mod ${r.backends.length} map { ${map} }`);
    }
  }
  const set = (name: string, type: string, elements: Iterable<string>): string => {
    const els = [...elements];
    return `  set ${name} { type ${type};${els.length > 0 ? ` elements = { ${els.join(', ')} }` : ''} }`;
  };
  return [
    // Declaring then deleting makes the replace work whether or not the table exists, in one transaction.
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    set('no_endpoints', 'ipv4_addr . inet_proto . inet_service', noEndpoints),
    set('hairpin', 'ipv4_addr . ipv4_addr', hairpin),
    '  chain services {',
    ...dnat,
    '  }',
    '  chain nat_prerouting { type nat hook prerouting priority -100; policy accept; jump services; }',
    '  chain nat_output { type nat hook output priority -100; policy accept; jump services; }',
    '  chain nat_postrouting { type nat hook postrouting priority 100; policy accept;',
    '    ct status dnat ip saddr . ip daddr @hairpin masquerade',
    '  }',
    '  chain filter_forward { type filter hook forward priority 0; policy accept;',
    ...REJECT,
    '  }',
    '  chain filter_output { type filter hook output priority 0; policy accept;',
    ...REJECT,
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface ServiceProxyOptions {
  store: ObjectStore;
  netns: string;
  table: string;
}

/**
 * Keeps the table in `netns` equal to the store's Services and EndpointSlices.
 * Changes that arrive while `nft` runs are folded into the next run, so a
 * burst of events costs one or two rebuilds, without timers.
 */
export class ServiceProxy extends EventEmitter {
  private readonly opts: ServiceProxyOptions;
  private unwatch?: () => void;
  private running = false;
  private dirty = false;
  private closed = false;
  private generation = 0;
  private appliedGeneration = 0;
  lastError?: Error;

  constructor(opts: ServiceProxyOptions) {
    super();
    this.opts = opts;
  }

  async start(): Promise<void> {
    this.unwatch = this.opts.store.watch((ev: WatchEvent) => {
      if (ev.resource === 'services' || ev.resource === ENDPOINT_SLICES) this.schedule();
    });
    this.schedule();
    await this.synced();
  }

  /** Resolves once the table reflects every change seen so far. */
  synced(): Promise<void> {
    const want = this.generation;
    if (this.appliedGeneration >= want) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (): void => {
        if (this.appliedGeneration >= want || this.closed) {
          this.off('applied', on);
          resolve();
        }
      };
      this.on('applied', on);
    });
  }

  private schedule(): void {
    this.generation++;
    this.dirty = true;
    if (!this.running) {
      this.running = true;
      // Let the rest of this tick's events arrive before the first rebuild.
      setImmediate(() => void this.loop());
    }
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      const gen = this.generation;
      const rules = proxyRules(this.opts.store.list('services'), this.opts.store.list(ENDPOINT_SLICES));
      const r = await runResult('ip', ['netns', 'exec', this.opts.netns, 'nft', '-f', '-'], { input: nftScript(this.opts.table, rules) });
      if (r.code !== 0) {
        // A rule this module wrote wrongly: keep the old table, say why.
        this.lastError = new Error(`nft: ${r.stderr.trim()}`);
        debug('service proxy: %s', this.lastError.message);
      } else {
        this.lastError = undefined;
      }
      this.appliedGeneration = gen;
      this.emit('applied');
    }
    this.running = false;
  }

  close(): void {
    this.closed = true;
    this.unwatch?.();
    this.emit('applied');
  }
}
