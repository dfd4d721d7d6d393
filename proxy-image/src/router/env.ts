// KT_ROUTER_PORTS, validated at the edge: the core never re-checks it.
import type { RouterPort } from '../../../contract/protocol.ts';

const isPort = (n: unknown, min = 1): n is number => Number.isInteger(n) && (n as number) >= min && (n as number) <= 65535;

/** Parses the JSON RouterPort[]; throws with the exact problem. */
export function parseRouterPorts(raw: string | undefined): RouterPort[] {
  if (!raw) throw new Error('KT_ROUTER_PORTS is empty: the router would serve nothing');
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    throw new Error(`KT_ROUTER_PORTS is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(v) || v.length === 0) throw new Error('KT_ROUTER_PORTS must be a non-empty JSON list');
  const seen = new Set<number>();
  return v.map((p: Partial<RouterPort>, i) => {
    if (!p || typeof p !== 'object') throw new Error(`KT_ROUTER_PORTS[${i}] is not an object`);
    if (!isPort(p.servicePort)) throw new Error(`KT_ROUTER_PORTS[${i}].servicePort must be a port number`);
    if (!isPort(p.listenPort, 0)) throw new Error(`KT_ROUTER_PORTS[${i}].listenPort must be a port number`);
    if (!isPort(p.originPort)) throw new Error(`KT_ROUTER_PORTS[${i}].originPort must be a port number`);
    if (p.protocol !== undefined && p.protocol !== 'TCP') throw new Error(`KT_ROUTER_PORTS[${i}]: only TCP is routed`);
    if (seen.has(p.servicePort)) throw new Error(`KT_ROUTER_PORTS: service port ${p.servicePort} is listed twice`);
    seen.add(p.servicePort);
    return { ...(typeof p.name === 'string' ? { name: p.name } : {}), servicePort: p.servicePort, listenPort: p.listenPort, originPort: p.originPort, protocol: 'TCP' as const };
  });
}
