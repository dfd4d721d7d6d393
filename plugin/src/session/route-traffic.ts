// The router's counts of one session's routes (proxy-image/src/router/counters.ts),
// read from its /routes endpoint at every heartbeat and written into the
// session's route annotation, where `status` and the dashboard read them
// (the same place they read the routes from: no new connection, no new
// right). Pure: the parsing and the "your route matched nothing" line are
// tested without a cluster.
import type { RouteTraffic } from '../status/model.ts';

/** What the router's /routes answers (only the fields read here). */
export interface RouterAnswer {
  routes?: { session?: unknown; servicePort?: unknown; counts?: { matched?: unknown; otherValue?: unknown; untagged?: unknown } }[];
  ports?: { servicePort?: unknown; requests?: unknown; untagged?: unknown }[];
  windowSeconds?: unknown;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The counts of `session`'s mesh routes, one entry per Service port; undefined when the router sends none (an older router). */
export function trafficOf(answer: RouterAnswer, session: string, at: Date): RouteTraffic | undefined {
  if (typeof answer.windowSeconds !== 'number' || !Array.isArray(answer.ports)) return undefined;
  const ports: RouteTraffic['ports'] = [];
  for (const r of answer.routes ?? []) {
    if (String(r.session) !== session || !r.counts) continue;
    const servicePort = num(r.servicePort);
    const port = answer.ports.find((p) => p.servicePort === servicePort);
    ports.push({
      servicePort,
      matched: num(r.counts.matched),
      otherValue: num(r.counts.otherValue),
      untagged: num(r.counts.untagged),
      requests: num(port?.requests),
      portUntagged: num(port?.untagged),
    });
  }
  return { windowSeconds: answer.windowSeconds, at: at.toISOString(), ports };
}

/** "the last minute", or the window the router was started with. */
export function windowText(seconds: number): string {
  return seconds === 60 ? 'the last minute' : `the last ${seconds} s`;
}

/**
 * The line `mesh` prints when its route took nothing for a whole window
 * while the Service received requests: the tag is lost before this hop.
 */
export function quietLine(p: RouteTraffic['ports'][number], windowSeconds: number, rules: string, service: string): string | undefined {
  if (p.matched > 0 || p.requests === 0) return undefined;
  const seen = [
    ...(p.untagged > 0 ? [`${p.untagged} untagged request${p.untagged === 1 ? '' : 's'}`] : []),
    ...(p.otherValue > 0 ? [`${p.otherValue} with another value`] : []),
  ].join(' and ');
  return `no request carried ${rules} in ${windowText(windowSeconds)}; ${seen} reached ${service} — is the tag passed on by the caller? `
    + '(connections opened before the mesh stay on the original pods until they reconnect)';
}
