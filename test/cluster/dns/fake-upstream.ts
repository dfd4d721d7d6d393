// A scripted upstream name server for tests: answers from a fixed table,
// follows CNAMEs inside it, sets RA like a recursive server, echoes EDNS
// (with a server cookie when the client sent one) and truncates over UDP
// when the answer does not fit. It records every question it was asked.
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { serveDns, type DnsListener } from '../../../proxy-image/src/dns/server.ts';

export interface FakeUpstream extends DnsListener {
  /** Every question received, as "name TYPE transport". */
  asked: string[];
}

/** Records by owner name (lower case, no trailing dot). */
export type ZoneTable = Record<string, Answer[]>;

const COOKIE = 10;

export async function startFakeUpstream(zone: ZoneTable, opts: { host?: string; port?: number; silent?: boolean } = {}): Promise<FakeUpstream> {
  const asked: string[] = [];
  const listener = await serveDns({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    handler: async (msg, ctx) => {
      const q: DecodedPacket = packet.decode(msg);
      const question = q.questions?.[0];
      if (!question) return null;
      asked.push(`${question.name} ${question.type} ${ctx.transport}`);
      if (opts.silent) return null;
      const answers: Answer[] = [];
      let name = question.name.toLowerCase();
      for (let hops = 0; hops < 8; hops++) {
        const rrs = zone[name] ?? [];
        const direct = rrs.filter((r) => r.type === question.type);
        const cname = rrs.find((r) => r.type === 'CNAME');
        if (direct.length > 0 || !cname || question.type === 'CNAME') {
          answers.push(...direct.map((r) => ({ ...r, name: hops === 0 ? question.name : r.name })));
          break;
        }
        answers.push({ ...cname, name: hops === 0 ? question.name : cname.name });
        name = String((cname as { data: unknown }).data).toLowerCase();
      }
      const exists = question.name.toLowerCase() in zone;
      const optIn = q.additionals?.find((a) => a.type === 'OPT');
      const additionals: Answer[] = [];
      if (optIn && 'options' in optIn) {
        // dns-packet's types list only the options it parses; a cookie is a plain {code, data}.
        const cookie = (optIn.options as { code: number; data?: Buffer }[]).find((o) => o.code === COOKIE);
        additionals.push({
          type: 'OPT',
          name: '.',
          udpPayloadSize: 1232,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: cookie?.data ? [{ code: COOKIE, data: Buffer.concat([cookie.data.subarray(0, 8), Buffer.from('srvcooki')]) } as never] : [],
        });
      }
      const rcode = exists ? 0 : 3;
      const authorities: Answer[] = answers.length === 0 ? [{ type: 'SOA', name: 'example.', ttl: 30, data: { mname: 'ns.example', rname: 'hostmaster.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 30 } }] : [];
      let out = packet.encode({
        type: 'response',
        id: q.id,
        flags: packet.RECURSION_AVAILABLE | ((q.flags ?? 0) & packet.RECURSION_DESIRED) | rcode,
        questions: q.questions,
        answers,
        authorities,
        additionals,
      });
      const limit = optIn && 'udpPayloadSize' in optIn ? optIn.udpPayloadSize : 512;
      if (ctx.transport === 'udp' && out.length > limit) {
        out = packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE | packet.TRUNCATED_RESPONSE, questions: q.questions, additionals });
      }
      return out;
    },
  });
  return { ...listener, asked };
}
