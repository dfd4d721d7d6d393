// The plugin's side of kt-route@kt.dev: register an exchange or mesh route
// on a router for the lifetime of this tunnel, and deliver the router's
// forwarded-tcpip channels for it (they carry the reply's address and the
// Service port) to a local port. The route ends with the tunnel, or earlier
// with close().
import { SSH_REQUESTS } from '../../../proxy-image/src/protocol/index.ts';
import type { RouteRefusalCode, RouteRequest } from '../../../proxy-image/src/protocol/index.ts';
import { decodeRouteReply, encodeJson, ROUTE_CANCEL_REQUEST } from '../../../proxy-image/src/ssh/route-request.ts';
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
  /** Why (protocol RouteRefusal.code); a router that sends none is read as `taken`. */
  readonly code: RouteRefusalCode;
  constructor(refused: string, code: RouteRefusalCode = 'taken') {
    super(`the router refused the route: ${refused}`);
    this.name = 'RouteRefusedError';
    this.refused = refused;
    this.code = code;
  }
}

export async function requestRoute(tunnel: Tunnel, req: RouteRequest, toLocal: ForwardTarget): Promise<RouteHandle> {
  const raw = await tunnel.request(SSH_REQUESTS.route, encodeJson(req));
  const reply = decodeRouteReply(raw);
  if (!reply) throw new Error('the router answered the route request with something that is not a route reply (is it a router?)');
  if ('refused' in reply) throw new RouteRefusedError(reply.refused, reply.code);
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
        await tunnel.request(ROUTE_CANCEL_REQUEST, encodeJson({ id: reply.id })).catch(() => null);
      })()),
  };
}
