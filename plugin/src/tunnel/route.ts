// The plugin's side of kt-route@kt.dev: register an exchange or mesh route
// on a router for the lifetime of this tunnel, and deliver the router's
// forwarded-tcpip channels for it (they carry the reply's address and the
// Service port) to a local port. The route ends with the tunnel, or earlier
// with close().
import { SSH_REQUESTS } from '../../../contract/protocol.ts';
import type { RouteRefusalCode, RouteRequest } from '../../../contract/protocol.ts';
import { decodeRouteReply, encodeRouteCancel, encodeRouteRequest } from '../../../contract/ssh/route-request.ts';
import { ktError, type ErrorCode, type KtError } from '../errors.ts';
import type { ForwardTarget } from './forward-in.ts';
import type { Tunnel } from './tunnel.ts';

export interface RouteHandle {
  id: string;
  /** The forwarded-tcpip address the router uses for this route's channels. */
  address: string;
  /** Removes the route on the router (best effort) and stops delivering its channels. */
  close(): Promise<void>;
}

/** The router said no; `refused` is its reason (for a conflict it names the holder). */
export class RouteRefusedError extends Error {
  readonly refused: string;
  /** Why (RouteRefusal.code in contract/protocol.ts; decodeRouteReply reads a missing code as `taken`). */
  readonly code: RouteRefusalCode;
  /** The session holding the slot, when the code is `taken` (RouteRefusal.heldBy). */
  readonly heldBy: string | undefined;
  constructor(refused: string, code: RouteRefusalCode = 'taken', heldBy?: string) {
    super(`the router refused the route: ${refused}`);
    this.name = 'RouteRefusedError';
    this.refused = refused;
    this.code = code;
    this.heldBy = heldBy;
  }
}

/** The plugin's error for each refusal reason (the README's error table says what each means). */
export const ROUTE_REFUSAL_ERRORS = {
  taken: 'KT_ERR_ROUTE_TAKEN',
  limit: 'KT_ERR_ROUTE_LIMIT',
  invalid: 'KT_ERR_ROUTE_INVALID',
  closing: 'KT_ERR_TUNNEL_FAILED',
  leaving: 'KT_ERR_ROUTER_GONE',
} as const satisfies Record<RouteRefusalCode, ErrorCode>;

/** The user's error for a refused route of a Service on the router pod `router` (both in `namespace`). */
export function routeRefusalError(err: RouteRefusedError, where: { namespace: string; service: string; router: string }): KtError {
  if (err.code === 'closing') {
    return ktError('KT_ERR_TUNNEL_FAILED', { namespace: where.namespace, pod: where.router, reason: `the router had this connection closing when the route was asked for (${err.refused}); run the command again` });
  }
  if (err.code === 'leaving') return ktError('KT_ERR_ROUTER_GONE', { namespace: where.namespace, service: where.service, reason: `${where.router}: ${err.refused}` });
  return ktError(ROUTE_REFUSAL_ERRORS[err.code], { service: `${where.namespace}/${where.service}`, reason: err.refused });
}

export async function requestRoute(tunnel: Tunnel, req: RouteRequest, toLocal: ForwardTarget): Promise<RouteHandle> {
  const raw = await tunnel.request(SSH_REQUESTS.route, encodeRouteRequest(req));
  const reply = decodeRouteReply(raw);
  if (!reply) throw new Error('the router answered the route request with something that is not a route reply (is it a router?)');
  if ('refused' in reply) throw new RouteRefusedError(reply.refused, reply.code, reply.heldBy);
  const stop = tunnel.acceptForwarded(reply.address, req.servicePort, toLocal);
  let closing: Promise<void> | undefined;
  return {
    id: reply.id,
    address: reply.address,
    close: () =>
      (closing ??= (async () => {
        stop();
        if (tunnel.closed) return;
        // Routes die with the connection anyway; a failed cancel changes nothing.
        await tunnel.request(SSH_REQUESTS.routeCancel, encodeRouteCancel(reply.id)).catch(() => null);
      })()),
  };
}
