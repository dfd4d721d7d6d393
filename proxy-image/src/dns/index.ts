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
import { renameAnswer, encodeName, expandedName, queryFor } from './rename.ts';
import { HEADER_LEN, answerCount, errorReply, fitUdp, isTruncated, rcodeOf, readQuery, withId, type QueryHead } from './wire.ts';

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
  const tracing = opts.debug !== undefined || debuglog('kt-dns').enabled;
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

  // Search domains in wire form, made once; undefined: a label dns-packet must encode.
  const domainWire = new Map(search.search.map((d) => [d, encodeName(d)]));

  // The same few names are asked again and again: their candidates are
  // kept (a bounded map, emptied when full; the search list never changes).
  const candidateCache = new Map<string, string[]>();
  const candidatesOf = (name: string): string[] => {
    let c = candidateCache.get(name);
    if (!c) {
      c = searchCandidates(name, search);
      if (candidateCache.size >= 1024) candidateCache.clear();
      candidateCache.set(name, c);
    }
    return c;
  };

  // Not async: the raw path is one promise and one callback, the hot path
  // of test/bench/dns.bench.ts.
  const handler = (msg: Buffer, ctx: DnsRequestContext): Promise<Buffer | null> => {
    const parsed = readQuery(msg);
    if (!parsed.ok) return Promise.resolve(parsed.reply);
    const q = parsed.query;
    const candidates = candidatesOf(q.name);
    if (candidates.length === 1 && candidates[0] === q.name) {
      return new Promise((resolve) => {
        pool.ask(msg, ctx.transport, (resp) => {
          // The response is ours alone: its ID is changed in place.
          if (resp) resp.writeUInt16BE(q.id, 0);
          resolve(resp ?? errorReply(msg, RCODE.SERVFAIL));
        });
      });
    }
    return expand(q, msg, candidates, ctx.transport);
  };

  /**
   * Try the candidates in order (one at a time, as the stub resolver does)
   * and answer as the asked name. Callbacks rather than an async loop: one
   * promise per query, as on the raw path. They run from the upstream
   * socket's events, so a throw is turned into this promise's rejection,
   * which the server's last-resort catch takes (one answer lost, not the
   * process).
   */
  const expand = (q: QueryHead, msg: Buffer, candidates: string[], transport: 'udp' | 'tcp'): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const responses: Buffer[] = [];
      const outcomes: Outcome[] = [];
      const tried: (Buffer | undefined)[] = [];
      let decodedQuery: DecodedPacket | undefined;
      const next = (): void => {
        const name = candidates[outcomes.length];
        let sent = msg;
        let wire: Buffer | undefined;
        if (name !== q.name) {
          // The expansion is the client's name and a search domain (searchCandidates).
          const domain = q.compressed ? undefined : domainWire.get(name.slice(q.name.length + 1));
          if (domain) {
            wire = expandedName(msg, q.nameEnd, domain);
            sent = queryFor(msg, q.nameEnd, wire);
          } else {
            try {
              decodedQuery ??= packet.decode(msg);
              sent = packet.encode(withQuestionName(decodedQuery, name));
            } catch {
              resolve(errorReply(msg, RCODE.FORMERR));
              return;
            }
          }
        }
        tried.push(wire);
        pool.ask(sent, transport, answered);
      };
      const answered = (resp: Buffer | undefined): void => {
        try {
          if (!resp) {
            resolve(errorReply(msg, RCODE.SERVFAIL));
            return;
          }
          responses.push(resp);
          outcomes.push(classify(rcodeOf(resp), answerCount(resp), isTruncated(resp)));
          const pick = settle(outcomes, candidates.length);
          if (pick < 0) next();
          else resolve(answerAs(q, msg, candidates[pick], responses[pick], tried[pick], transport));
        } catch (err) {
          reject(err);
        }
      };
      next();
    });

  /** The response to the candidate `name` (sent as `tried`, when made at the byte level) as the client's answer. */
  const answerAs = (q: QueryHead, msg: Buffer, name: string, resp: Buffer, tried: Buffer | undefined, transport: 'udp' | 'tcp'): Buffer => {
    // The as-is name answered: its bytes can go back untouched.
    if (name === q.name) return withId(resp, q.id);
    if (tracing) debug(`dns: ${q.name} answered as ${name}`);
    // dns-packet does not compress names, nor does renameAnswer, so a
    // rewritten answer can outgrow what the client takes over UDP; then it
    // gets TC and asks over TCP.
    const renamed = tried && renameAnswer(resp, q.id, tried, msg.subarray(HEADER_LEN, q.nameEnd), transport === 'udp' ? q.udpSize : 0);
    if (renamed) return renamed;
    let decoded: DecodedPacket;
    let encoded: Buffer;
    try {
      decoded = { ...packet.decode(resp), id: q.id };
      const rewritten = rewriteAnswer(decoded, name, q.name);
      encoded = packet.encode(rewritten);
      decoded = rewritten as DecodedPacket;
    } catch (err) {
      debug(`dns: cannot rewrite the answer for ${name}: ${(err as Error).message}`);
      return errorReply(msg, RCODE.SERVFAIL);
    }
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
