// The test cluster's DNS: Kubernetes records for the cluster domain from a
// ClusterRecordSource, authoritative (AA), TTL 5, over UDP and TCP. Names
// outside the domain go to `upstream` when there is one, else REFUSED.
import { debuglog } from 'node:util';
import * as packet from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import { serveDns, type DnsRequestContext } from '../../../proxy-image/src/dns/server.ts';
import { UpstreamPool } from '../../../proxy-image/src/dns/upstream.ts';
import { RCODE } from '../../../proxy-image/src/dns/search.ts';
import { errorReply, fitUdp, parseQuery, withId } from '../../../proxy-image/src/dns/wire.ts';
import { resolveCluster } from './records.ts';
import type { ClusterRecordSource } from './source.ts';

export type { ClusterRecordSource } from './source.ts';
export { storeSource, watchSource } from './source.ts';

export interface ClusterDnsOptions {
  host: string;
  /** 0: a free port. */
  port: number;
  domain?: string;
  source: ClusterRecordSource;
  upstream?: { host: string; port: number };
  debug?: (m: string) => void;
}

export interface ClusterDns {
  port: number;
  close(): Promise<void>;
}

/** The largest UDP answer we send to an EDNS client (the DNS Flag Day 2020 size). */
const EDNS_SIZE = 1232;

export async function startClusterDns(opts: ClusterDnsOptions): Promise<ClusterDns> {
  const domain = (opts.domain ?? 'cluster.local').replace(/^\.+|\.+$/g, '').toLowerCase();
  const debug = opts.debug ?? debuglog('kt-cluster-dns');
  const pool = opts.upstream
    ? new UpstreamPool({ upstreams: [opts.upstream], timeoutMs: 2000, attempts: 2, rotate: false, maxPending: 4096, debug })
    : undefined;

  const handler = async (msg: Buffer, ctx: DnsRequestContext): Promise<Buffer | null> => {
    const parsed = parseQuery(msg);
    if (!parsed.ok) return parsed.reply;
    const q = parsed.query;
    const result = resolveCluster(q.name, q.type, opts.source, domain);
    if (!result) {
      if (!pool) return errorReply(msg, RCODE.REFUSED);
      const resp = await pool.query(msg, ctx.transport);
      return resp ? withId(resp, q.id) : errorReply(msg, RCODE.SERVFAIL);
    }
    const ednsIn = q.packet.additionals?.some((a) => a.type === 'OPT');
    const opt: Answer[] = ednsIn ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
    const reply: Packet = {
      type: 'response',
      id: q.id,
      flags:
        packet.AUTHORITATIVE_ANSWER |
        (q.flags & packet.RECURSION_DESIRED) |
        // Recursion is available only when there is somewhere to recurse to.
        (pool ? packet.RECURSION_AVAILABLE : 0) |
        (result.rcode === 'NXDOMAIN' ? RCODE.NXDOMAIN : RCODE.NOERROR),
      questions: q.packet.questions,
      answers: result.answers,
      authorities: result.authorities,
      additionals: [...result.additionals, ...opt],
    };
    const encoded = packet.encode(reply);
    return ctx.transport === 'udp' ? fitUdp(packet.decode(encoded), encoded, ednsIn ? Math.min(q.udpSize, EDNS_SIZE) : q.udpSize) : encoded;
  };

  const listener = await serveDns({ host: opts.host, port: opts.port, handler, debug });
  return {
    port: listener.port,
    async close() {
      await listener.close();
      await pool?.close();
    },
  };
}
