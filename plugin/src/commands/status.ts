// `kubectl kt status`: every connect, exchange, mesh and preview — who, what,
// since when, and whether the laptop behind it is still alive.
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { fetchStatus } from '../status/fetch.ts';
import { describeMatch, type HeaderMatch } from '../../../contract/protocol.ts';
import type { RouteInfo, StatusReport } from '../status/model.ts';

export async function run(opts: OptionsOf<'status'>, deps: Deps): Promise<StatusReport> {
  const target = await deps.kube();
  return await fetchStatus(await deps.api(), { namespace: target.namespace, all: opts.allNamespaces }, deps.clock.now());
}

function age(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd()).join('\n');
}

/** `12 matched, 3 other value, 40 untagged of 55 (last 60 s)`: the route's counts, per port. */
export function trafficText(rt: RouteInfo): string {
  const t = rt.traffic;
  if (!t || t.ports.length === 0) return '';
  return t.ports.map((p) => `${t.ports.length > 1 ? `:${p.servicePort} ` : ''}${p.matched} matched, ${p.otherValue} other value, ${p.untagged} untagged of ${p.requests}`).join('; ')
    + ` (last ${t.windowSeconds} s)`;
}

export function text(data: unknown): string {
  const r = data as StatusReport;
  const out: string[] = [];
  if (r.sessions.length === 0 && r.services.length === 0) {
    return `no kubectl-kt sessions in ${r.namespaces === 'all' ? 'any namespace' : `namespace ${r.namespaces.join(', ')}`}`;
  }
  if (r.sessions.length > 0) {
    out.push(table([
      ['NAMESPACE', 'KIND', 'OWNER', 'SINCE', 'HEARTBEAT', 'POD', 'PHASE', 'TARGET'],
      ...r.sessions.map((s) => [s.namespace, s.kind, s.owner, s.since, `${age(s.heartbeatAgeSeconds)}${s.stale ? ' (stale)' : ''}`, s.pod, s.phase, s.target ?? '']),
    ]));
  }
  if (r.services.length > 0) {
    if (out.length > 0) out.push('');
    const rows: string[][] = [['NAMESPACE', 'SERVICE', 'STATE', 'ROUTER', 'ROUTE', 'OWNER', 'SINCE', 'HEARTBEAT', 'REQUESTS']];
    for (const s of r.services) {
      const router = s.router ? `${s.router.pod}${s.router.ready ? '' : ' (not ready)'}` : '';
      if (s.routes.length === 0) rows.push([s.namespace, s.name, s.state, router, '', s.owner ?? '', '', '', '']);
      for (const rt of s.routes) {
        const what = rt.kind === 'mesh' ? `mesh ${(rt.headers ?? []).map((h) => describeMatch(h as HeaderMatch)).join(',')}` : 'exchange';
        rows.push([s.namespace, s.name, s.state, router, `${what}${rt.servicePort ? ` :${rt.servicePort}` : ''}`, rt.owner, rt.since, `${age(rt.heartbeatAgeSeconds)}${rt.stale ? ' (stale)' : ''}`, trafficText(rt)]);
      }
    }
    out.push(table(rows));
  }
  return out.join('\n');
}
