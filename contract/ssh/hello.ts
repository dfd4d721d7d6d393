// The kt-hello@kt.dev global request (protocol module): the client sends its
// version as JSON in an SSH string, the proxy answers with its own. A client
// speaking another PROTOCOL_VERSION gets the answer (so it can name both
// versions in its error) and is then disconnected.
import { PROTOCOL_VERSION, VERSION } from '../protocol/index.ts';
import type { ConnContext } from './context.ts';
import { readSshString, sshString } from './internals.ts';

export interface HelloInfo {
  version: string;
  protocol: number;
  role?: string;
}

export function encodeHello(info: HelloInfo): Buffer {
  return sshString(JSON.stringify(info));
}

/** Parses a hello payload; undefined when it is not one. */
export function decodeHello(data: Buffer | null | undefined): HelloInfo | undefined {
  if (!data) return undefined;
  const body = readSshString(data);
  if (!body) return undefined;
  try {
    const v = JSON.parse(body.toString('utf8')) as Partial<HelloInfo>;
    if (typeof v.version !== 'string' || typeof v.protocol !== 'number') return undefined;
    return { version: v.version, protocol: v.protocol, ...(typeof v.role === 'string' ? { role: v.role } : {}) };
  } catch {
    return undefined;
  }
}

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
