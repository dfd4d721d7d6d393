// The proxy's answer to kt-hello@kt.dev (the wire form: contract/ssh/hello.ts).
import { PROTOCOL_VERSION, VERSION } from '../../../contract/protocol.ts';
import { decodeHello, encodeHello } from '../../../contract/ssh/hello.ts';
import type { ConnContext } from './context.ts';

export function makeHelloHandler(role: string) {
  return async function handleHello(ctx: ConnContext, data: unknown): Promise<Buffer> {
    const theirs = Buffer.isBuffer(data) ? decodeHello(data) : undefined;
    const reply = encodeHello({ version: VERSION, protocol: PROTOCOL_VERSION, role });
    ctx.log(`${ctx.id} hello from ${theirs ? `${theirs.version} (protocol ${theirs.protocol})` : 'a client that sent no version'}`);
    if (theirs && theirs.protocol !== PROTOCOL_VERSION) {
      ctx.log(`${ctx.id} protocol ${theirs.protocol} is not ${PROTOCOL_VERSION}: disconnecting`);
      // After the reply is on the wire: end() queues behind it.
      setImmediate(() => ctx.conn.end());
    }
    return reply;
  };
}
