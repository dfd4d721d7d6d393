// The kt-route@kt.dev global request (protocol module, router section): a
// developer registers an exchange or mesh route for the lifetime of this SSH
// connection. The payload and the reply are JSON in an SSH string. ssh2
// cannot attach data to REQUEST_FAILURE, so a refusal is a success reply
// carrying { refused } (RouteRefusal). Served only by a server started with
// a route handler (the router role); the shadow refuses the request.
import { PROTOCOL_VERSION, ROUTE_REFUSAL_CODES } from '../protocol/index.ts';
import type { RouteRefusal, RouteReply, RouteRequest } from '../protocol/index.ts';
import type { ConnContext } from './context.ts';
import { readSshString, sshString } from './internals.ts';
import type { RequestHandler } from './policy.ts';

/** Cancels one route of this connection early: payload { id }. */
export const ROUTE_CANCEL_REQUEST = 'kt-route-cancel@kt.dev';

/** Registers a validated request for a connection; the router's route table answers. */
export type RouteRegistrar = (ctx: ConnContext, req: RouteRequest) => RouteReply | RouteRefusal;
export type RouteCanceller = (ctx: ConnContext, id: string) => boolean;

export function encodeJson(value: unknown): Buffer {
  return sshString(JSON.stringify(value));
}

function decodeJson(data: unknown): unknown {
  if (!Buffer.isBuffer(data)) return undefined;
  const body = readSshString(data);
  if (!body) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
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

export function decodeRouteReply(data: Buffer | null | undefined): RouteReply | RouteRefusal | undefined {
  const v = decodeJson(data) as Partial<RouteReply & RouteRefusal> | undefined;
  if (!v || typeof v !== 'object') return undefined;
  if (typeof v.refused === 'string') {
    return v.code !== undefined && ROUTE_REFUSAL_CODES.includes(v.code) ? { refused: v.refused, code: v.code } : { refused: v.refused };
  }
  if (typeof v.id === 'string' && typeof v.address === 'string') return { id: v.id, address: v.address };
  return undefined;
}

export function makeRouteHandler(register: RouteRegistrar): RequestHandler {
  return async function handleRoute(ctx, data) {
    const req = decodeRouteRequest(data);
    const reply: RouteReply | RouteRefusal = typeof req === 'string' ? { refused: req, code: 'invalid' } : register(ctx, req);
    // Accepted routes are logged by the router (one line each, bounded by its caps); refusals are rate-limited there.
    if ('refused' in reply) ctx.log(`${ctx.id} route refused: ${reply.refused}`);
    return encodeJson(reply);
  };
}

export function makeRouteCancelHandler(cancel: RouteCanceller): RequestHandler {
  return async function handleRouteCancel(ctx, data) {
    const v = decodeJson(data) as { id?: unknown } | undefined;
    if (!v || typeof v.id !== 'string') return false;
    return cancel(ctx, v.id);
  };
}
