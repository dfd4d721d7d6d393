// The shadow proxy's DNS forwarder. The laptop's queries arrive here (over
// an SSH channel, so mostly TCP; UDP for clients inside the pod) and go to
// the pod's own name servers from /etc/resolv.conf, with the pod's search
// list applied, so `web`, `web.shop` and `web.shop.svc.cluster.local`
// resolve on the laptop as they do in the pod.
//
// Built on dns-packet with our own UDP/TCP server rather than the `dns` /
// native-dns packages: those are abandoned, drop EDNS options and leave RA
// unset in forwarded answers. Queries that need no search expansion are
// forwarded as raw bytes with only the ID changed, so EDNS options (cookies,
// padding), DNSSEC records and types dns-packet does not know (HTTPS, SVCB)
// pass untouched.
import { readFileSync } from 'node:fs';
import { debuglog } from 'node:util';
import * as packet from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { parseResolvConf, type Upstream } from './resolvconf.ts';
import { RCODE, classify, rewriteAnswer, searchCandidates, settle, withQuestionName, type Outcome } from './search.ts';
import { serveDns, type DnsRequestContext } from './server.ts';
import { UpstreamPool } from './upstream.ts';
import { answerCount, errorReply, fitUdp, isTruncated, parseQuery, rcodeOf, withId, type Query } from './wire.ts';

export type { Upstream } from './resolvconf.ts';

export interface DnsForwarderOptions {
  host: string;
  /** 0: a free port. */
  port: number;
  /** Default /etc/resolv.conf. */
  resolvConf?: string;
  /** Name servers to use instead of resolv.conf's (tests). */
  upstreams?: Upstream[];
  /** Search list instead of resolv.conf's. */
  search?: string[];
  /** ndots instead of resolv.conf's. */
  ndots?: number;
  /** Per upstream try; default resolv.conf's timeout, capped at 2 s so the client's own retry comes after ours. */
  timeoutMs?: number;
  /** Queries waiting for an upstream at once (default 4096); beyond it the client gets SERVFAIL. */
  maxPending?: number;
  debug?: (m: string) => void;
}

export interface DnsForwarder {
  port: number;
  close(): Promise<void>;
}

export async function startDnsForwarder(opts: DnsForwarderOptions): Promise<DnsForwarder> {
  // NODE_DEBUG=kt-dns shows the forwarder's decisions when no debug sink is given.
  const debug = opts.debug ?? debuglog('kt-dns');
  // Read once at start, synchronously: node:fs/promises would load Node's readline (1.5 MiB resident).
  const needFile = !opts.upstreams || !opts.search || opts.ndots === undefined;
  const conf = parseResolvConf(needFile ? readFileSync(opts.resolvConf ?? '/etc/resolv.conf', 'utf8') : '');
  const search = { search: opts.search ?? conf.search, ndots: opts.ndots ?? conf.ndots };
  const pool = new UpstreamPool({
    upstreams: opts.upstreams ?? conf.nameservers,
    timeoutMs: opts.timeoutMs ?? Math.min(conf.timeoutMs, 2000),
    attempts: conf.attempts,
    rotate: conf.rotate,
    maxPending: opts.maxPending ?? 4096,
    debug,
  });
  debug(`dns forwarder: upstreams ${(opts.upstreams ?? conf.nameservers).map((u) => `${u.host}:${u.port}`).join(' ')}, search [${search.search.join(' ')}] ndots ${search.ndots}`);

  // Not async: the raw path is one promise from the pool's, the hot path of
  // test/bench/dns.bench.ts.
  const handler = (msg: Buffer, ctx: DnsRequestContext): Promise<Buffer | null> => {
    const parsed = parseQuery(msg);
    if (!parsed.ok) return Promise.resolve(parsed.reply);
    const q = parsed.query;
    const candidates = searchCandidates(q.name, search);
    if (candidates.length === 1 && candidates[0] === q.name) {
      return pool.query(msg, ctx.transport).then((resp) => (resp ? withId(resp, q.id) : errorReply(msg, RCODE.SERVFAIL)));
    }
    return expand(q, msg, candidates, ctx.transport);
  };

  /** Try the candidates in order (one at a time, as the stub resolver does) and answer as the asked name. */
  const expand = async (q: Query, msg: Buffer, candidates: string[], transport: 'udp' | 'tcp'): Promise<Buffer> => {
    const responses: Buffer[] = [];
    const outcomes: Outcome[] = [];
    let pick = -1;
    while (pick < 0) {
      const name = candidates[outcomes.length];
      const sent = name === q.name ? msg : packet.encode(withQuestionName(q.packet, name));
      const resp = await pool.query(sent, transport);
      if (!resp) return errorReply(msg, RCODE.SERVFAIL);
      responses.push(resp);
      outcomes.push(classify(rcodeOf(resp), answerCount(resp), isTruncated(resp)));
      pick = settle(outcomes, candidates.length);
    }
    const resp = responses[pick];
    // The as-is name answered: its bytes can go back untouched.
    if (candidates[pick] === q.name) return withId(resp, q.id);
    let decoded: DecodedPacket;
    let encoded: Buffer;
    try {
      decoded = { ...packet.decode(resp), id: q.id };
      const rewritten = rewriteAnswer(decoded, candidates[pick], q.name);
      encoded = packet.encode(rewritten);
      decoded = rewritten as DecodedPacket;
    } catch (err) {
      debug(`dns: cannot rewrite the answer for ${candidates[pick]}: ${(err as Error).message}`);
      return errorReply(msg, RCODE.SERVFAIL);
    }
    debug(`dns: ${q.name} ${q.type} answered as ${candidates[pick]}`);
    // dns-packet does not compress names, so a rewritten answer can outgrow
    // what the client takes over UDP; then it gets TC and asks over TCP.
    return transport === 'udp' ? fitUdp(decoded, encoded, q.udpSize) : encoded;
  };

  const listener = await serveDns({ host: opts.host, port: opts.port, handler, debug });
  return {
    port: listener.port,
    async close() {
      await listener.close();
      await pool.close();
    },
  };
}
