// The router's handlers of kt-route@kt.dev and kt-route-cancel@kt.dev (the
// wire form: contract/ssh/route-request.ts). Served only by a server started
// with a route handler (the router role); the shadow refuses the request.
import type { RouteRefusal, RouteReply, RouteRequest } from '../../../contract/protocol.ts';
import { decodeRouteCancel, decodeRouteRequest, encodeRouteReply } from '../../../contract/ssh/route-request.ts';
import type { ConnContext } from './context.ts';
import type { RequestHandler } from './policy.ts';

/** Registers a validated request for a connection; the router's route table answers. */
export type RouteRegistrar = (ctx: ConnContext, req: RouteRequest) => RouteReply | RouteRefusal;
export type RouteCanceller = (ctx: ConnContext, id: string) => boolean;

export function makeRouteHandler(register: RouteRegistrar): RequestHandler {
  return async function handleRoute(ctx, data) {
    const req = decodeRouteRequest(data);
    const reply: RouteReply | RouteRefusal = typeof req === 'string' ? { refused: req, code: 'invalid' } : register(ctx, req);
    // Accepted routes are logged by the router (one line each, bounded by its caps); refusals are rate-limited there.
    if ('refused' in reply) ctx.log(`${ctx.id} route refused: ${reply.refused}`);
    return encodeRouteReply(reply);
  };
}

export function makeRouteCancelHandler(cancel: RouteCanceller): RequestHandler {
  return async function handleRouteCancel(ctx, data) {
    const id = decodeRouteCancel(data);
    return id === undefined ? false : cancel(ctx, id);
  };
}
