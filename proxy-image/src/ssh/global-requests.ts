// SSH_MSG_GLOBAL_REQUEST dispatch. Replies must go out in the order the
// requests came (RFC 4254 §4: replies carry no request id), while handlers
// finish in any order (a listen may take longer than a hello), so each
// request takes a slot in a queue and the queue drains from the front.
import type { ConnContext } from './context.ts';
import { replyGlobalRequest, takeOverGlobalRequests } from '../../../contract/ssh/internals.ts';
import { requestHandler } from './policy.ts';
import type { RequestHandler } from './policy.ts';

/**
 * Global requests one connection may have in flight (handlers not finished);
 * more get REQUEST_FAILURE at once, so a client cannot queue work without
 * bound. The plugin sends a handful (hello, a route per port).
 */
export const MAX_PENDING_REQUESTS = 32;

interface Slot {
  reply?: Buffer | boolean;
}

/** extra: handlers this server adds to policy.ts (a role's own requests), looked up first. */
export function serveGlobalRequests(ctx: ConnContext, extra?: ReadonlyMap<string, RequestHandler>): void {
  const queue: Slot[] = [];
  let running = 0;
  const drain = () => {
    while (queue.length > 0 && queue[0].reply !== undefined) {
      const { reply } = queue.shift() as Slot;
      if (ctx.closed) continue;
      replyGlobalRequest(ctx.conn, reply !== false, Buffer.isBuffer(reply) ? reply : undefined);
    }
  };
  takeOverGlobalRequests(ctx.conn, (name, wantReply, data) => {
    const slot: Slot = {};
    if (wantReply) queue.push(slot);
    const finish = (reply: Buffer | boolean) => {
      slot.reply = reply;
      if (wantReply) drain();
    };
    const handler = extra?.get(name) ?? requestHandler(name);
    // Before authentication nothing is served (RFC 4252 §1: the connection
    // protocol starts only after user authentication succeeds).
    if (!handler || !ctx.conn.authenticated) {
      // keepalive@openssh.com lands here every few seconds; not worth a log line.
      if (name !== 'keepalive@openssh.com') ctx.log(`${ctx.id} refused global request ${name}`);
      finish(false);
      return;
    }
    if (running >= MAX_PENDING_REQUESTS) {
      ctx.log(`${ctx.id} global request ${name} refused: ${MAX_PENDING_REQUESTS} in flight`);
      finish(false);
      return;
    }
    running++;
    handler(ctx, data)
      .then(finish, (err: Error) => {
        ctx.log(`${ctx.id} global request ${name} failed: ${err.message}`);
        finish(false);
      })
      .finally(() => running--);
  });
}
