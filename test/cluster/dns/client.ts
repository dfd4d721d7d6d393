// A minimal DNS client for tests and the benchmark: one query over UDP or
// TCP, resolved with the raw response (or rejected after a timeout, so a
// broken server fails a test instead of hanging it).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as packet from 'dns-packet';
import type { DecodedPacket, Packet } from 'dns-packet';
import { FrameReader, frame } from '../../../contract/dns/framing.ts';

export interface Target {
  host: string;
  port: number;
}

export function rawQuery(to: Target, msg: Buffer, transport: 'udp' | 'tcp' = 'udp', timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, resp?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      if (err) reject(err);
      else resolve(resp as Buffer);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ${to.host}:${to.port} over ${transport} within ${timeoutMs} ms`)), timeoutMs);
    let cleanup: () => void;
    if (transport === 'udp') {
      const s = createSocket('udp4');
      cleanup = () => s.close();
      s.on('message', (m) => finish(null, m));
      s.on('error', (e) => finish(e));
      s.send(msg, to.port, to.host);
    } else {
      const s = connect(to);
      cleanup = () => s.destroy();
      const reader = new FrameReader((m) => finish(null, Buffer.from(m)));
      s.on('data', (d: Buffer) => reader.push(d));
      s.on('error', (e) => finish(e));
      s.on('close', () => finish(new Error('connection closed before an answer')));
      s.write(frame(msg));
    }
  });
}

let nextId = 1;

/** Ask one question; `edns` adds an OPT record (4096 bytes, optional extra options). */
export async function ask(
  to: Target,
  name: string,
  type: string,
  opts: { transport?: 'udp' | 'tcp'; edns?: boolean; rd?: boolean } = {},
): Promise<DecodedPacket & { rcode: string }> {
  const q: Packet = {
    type: 'query',
    id: (nextId = (nextId % 65535) + 1),
    flags: opts.rd === false ? 0 : packet.RECURSION_DESIRED,
    questions: [{ name, type: type as never, class: 'IN' }],
    additionals: opts.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  };
  const resp = await rawQuery(to, packet.encode(q), opts.transport ?? 'udp');
  return packet.decode(resp) as DecodedPacket & { rcode: string };
}
