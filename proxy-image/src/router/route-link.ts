// The link from a route back to its developer: forwarded-tcpip channels on
// the SSH connection that registered the route, which the route lives
// exactly as long as (ARCHITECTURE.md rule 1).
import type { Duplex } from 'node:stream';
import type { ConnContext } from '../ssh/context.ts';
import type { Route } from './table.ts';
import type { RouteLink } from './upstream.ts';

/** Opens forwarded-tcpip channels to the developer on the route's own SSH connection. */
export function routeLink(ctx: ConnContext, route: () => Route<RouteLink> | undefined): RouteLink {
  let active = 0;
  return {
    active: () => active,
    open(from) {
      const r = route();
      if (!r || ctx.closed) return Promise.reject(new Error('the route is gone'));
      return new Promise<Duplex>((resolve, reject) => {
        // RFC 4254 §7.2: "address that was connected" / "port that was
        // connected" — the route's address and the Service port, which the
        // plugin's requestRoute matches to hand the channel to its local port.
        ctx.conn.forwardOut(r.address, r.servicePort, from.ip || '0.0.0.0', from.port, (err, channel) => {
          if (err) {
            reject(new Error(`the developer refused the channel: ${err.message}`));
            return;
          }
          active++;
          channel.once('close', () => active--);
          resolve(channel);
        });
      });
    },
  };
}
