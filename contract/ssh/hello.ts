// The wire form of kt-hello@kt.dev (SSH_REQUESTS in contract/protocol.ts):
// the client sends its version as JSON in an SSH string, the proxy answers
// with its own. A client speaking another PROTOCOL_VERSION gets the answer
// (so it can name both versions in its error) and is then disconnected
// (proxy-image/src/ssh/hello-handler.ts).
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
