// The wire form of kt-route@kt.dev and kt-route-cancel@kt.dev (SSH_REQUESTS
// in contract/protocol.ts): a developer registers an exchange or mesh route
// for the lifetime of this SSH connection. The payload and the reply are JSON
// in an SSH string. ssh2 cannot attach data to REQUEST_FAILURE, so a refusal
// is a success reply carrying { refused, code } (RouteRefusal). The router's
// handlers are proxy-image/src/ssh/route-handler.ts; the plugin's caller is
// plugin/src/tunnel/route.ts.
import { PROTOCOL_VERSION, ROUTE_REFUSAL_CODES } from '../protocol.ts';
import type { RouteRefusal, RouteRefusalCode, RouteReply, RouteRequest } from '../protocol.ts';
import { readSshString, sshString } from './internals.ts';

export function encodeJson(value: unknown): Buffer {
  return sshString(JSON.stringify(value));
}

/** JSON in an SSH string; undefined when it is not that. */
export function decodeJson(data: unknown): unknown {
  if (!Buffer.isBuffer(data)) return undefined;
  const body = readSshString(data);
  if (!body) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function encodeRouteRequest(req: RouteRequest): Buffer {
  return encodeJson(req);
}

/** Checks the shape of a route request; a string says what is wrong. Header details are the route table's to check. */
export function decodeRouteRequest(data: unknown): RouteRequest | string {
  const v = decodeJson(data) as Partial<RouteRequest> | undefined;
  if (!v || typeof v !== 'object') return 'the route request is not JSON in an SSH string';
  if (v.protocol !== PROTOCOL_VERSION) return `route request protocol ${String(v.protocol)}, this router speaks ${PROTOCOL_VERSION}`;
  if (v.kind !== 'exchange' && v.kind !== 'mesh') return `route kind must be exchange or mesh, not ${JSON.stringify(v.kind)}`;
  if (!Number.isInteger(v.servicePort)) return 'servicePort must be an integer';
  if (typeof v.owner !== 'string' || typeof v.session !== 'string') return 'owner and session must be strings';
  if (v.headers !== undefined && !Array.isArray(v.headers)) return 'headers must be a list';
  return v as RouteRequest;
}

export function encodeRouteReply(reply: RouteReply | RouteRefusal): Buffer {
  return encodeJson(reply);
}

/** The router's answer; a refusal without a code (an older router) is `taken`, one with a code this side does not know is `invalid`. */
export function decodeRouteReply(data: Buffer | null | undefined): RouteReply | (RouteRefusal & { code: RouteRefusalCode }) | undefined {
  const v = decodeJson(data) as Partial<RouteReply & RouteRefusal> | undefined;
  if (!v || typeof v !== 'object') return undefined;
  if (typeof v.refused === 'string') {
    const code = v.code === undefined ? 'taken' : ROUTE_REFUSAL_CODES.includes(v.code) ? v.code : 'invalid';
    return { refused: v.refused, code, ...(code === 'taken' && typeof v.heldBy === 'string' ? { heldBy: v.heldBy } : {}) };
  }
  if (typeof v.id === 'string' && typeof v.address === 'string') return { id: v.id, address: v.address };
  return undefined;
}

export function encodeRouteCancel(id: string): Buffer {
  return encodeJson({ id });
}

/** The id of the route to cancel; undefined when the payload is not { id: string }. */
export function decodeRouteCancel(data: unknown): string | undefined {
  const v = decodeJson(data) as { id?: unknown } | undefined;
  return v && typeof v === 'object' && typeof v.id === 'string' ? v.id : undefined;
}
