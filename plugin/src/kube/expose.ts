// Which Service port an `--expose LOCAL:REMOTE` stands for. REMOTE is a
// Service port; but kt-connect's users (and anyone who thinks of the pods)
// type the pods' port, the Service port's targetPort. That is accepted when
// it names exactly one Service port of a Service, and the command says which
// one it chose; two Service ports on that pod port are refused as
// ambiguous, and a number that is neither is refused naming the ports there
// are. A Service port of the number wins over a targetPort of it (a Service
// 80→8080, 8080→9090 with REMOTE 8080 means Service port 8080). Pure.
import { ktError } from '../errors.ts';
import type { PortMapping } from '../values.ts';
import type { ContainerPortLike, ServicePortLike } from './takeover-plan.ts';

export interface ExposeRoute {
  servicePort: number;
  local: number;
  /** Set when REMOTE was the pods' port: the targetPort as the Service names it (a number or a port name). */
  viaTargetPort?: number | string;
}

/** The pod port number a Service port sends to; undefined for a named port no pod declares. */
export function targetPortNumber(p: ServicePortLike, podPorts: readonly ContainerPortLike[]): number | undefined {
  if (p.targetPort === undefined) return p.port;
  if (typeof p.targetPort === 'number' || /^[0-9]+$/.test(p.targetPort)) return Number(p.targetPort);
  const proto = p.protocol ?? 'TCP';
  return podPorts.find((c) => c.name === p.targetPort && (c.protocol ?? 'TCP') === proto)?.containerPort;
}

/** Whether some TCP Service port has a named targetPort (only then are the pods' ports needed). */
export function hasNamedTargetPort(ports: readonly ServicePortLike[]): boolean {
  return ports.some((p) => typeof p.targetPort === 'string' && !/^[0-9]+$/.test(p.targetPort));
}

/** "80 (pods' port 8080)" for each TCP port, for the error that lists them. */
export function describePorts(ports: readonly ServicePortLike[], podPorts: readonly ContainerPortLike[]): string[] {
  return ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => {
    const t = targetPortNumber(p, podPorts);
    if (t === p.port && p.targetPort === undefined) return String(p.port);
    const named = typeof p.targetPort === 'string' && !/^[0-9]+$/.test(p.targetPort) ? `"${p.targetPort}"${t === undefined ? '' : ` = ${t}`}` : String(t);
    return `${p.port} (pods' port ${named})`;
  });
}

/**
 * The route of one --expose on one Service: by Service port, else by the
 * pods' port; undefined when the Service has neither (another Service of a
 * deploy/ target may). Throws KT_ERR_AMBIGUOUS_PORT when the pods' port is
 * the target of several TCP Service ports.
 */
export function routeForExpose(service: string, ports: readonly ServicePortLike[], podPorts: readonly ContainerPortLike[], m: PortMapping): ExposeRoute | undefined {
  const tcp = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  if (tcp.some((p) => p.port === m.remote)) return { servicePort: m.remote, local: m.local };
  const byTarget = tcp.filter((p) => targetPortNumber(p, podPorts) === m.remote);
  if (byTarget.length > 1) throw ktError('KT_ERR_AMBIGUOUS_PORT', { service, port: m.remote, servicePorts: byTarget.map((p) => p.port) });
  const only = byTarget[0];
  if (!only) return undefined;
  return { servicePort: only.port, local: m.local, viaTargetPort: only.targetPort ?? only.port };
}

/** The line that says which Service port a pods' port stood for. */
export function exposeNote(service: string, m: PortMapping, r: ExposeRoute): string {
  const via = typeof r.viaTargetPort === 'string' ? `the pods' port "${r.viaTargetPort}"` : "the pods' port";
  return `--expose ${m.local}:${m.remote}: ${m.remote} is ${via} (targetPort) of service ${service} port ${r.servicePort}; routing ${service}:${r.servicePort} -> localhost:${m.local}`;
}
