// Search-list expansion the way glibc's res_search does it, and the rewrite
// that makes an answer for an expanded name look like an answer for the name
// the client asked. Pure: no sockets, tested on their own.
import type { Answer, DecodedPacket, Packet } from 'dns-packet';

export interface SearchConfig {
  search: readonly string[];
  ndots: number;
}

/** Longest name that fits the wire format (RFC 1035 §3.1: 255 octets, i.e. 253 characters in text form). */
const MAX_NAME = 253;

/**
 * The names to try, in order, for a question name (glibc res_search):
 * fewer dots than ndots → every search suffix first, then the name as is;
 * otherwise the name as is first, then the suffixes. Reverse-lookup names
 * (in-addr.arpa, ip6.arpa) and the root are never expanded: the stub's
 * reverse lookups use res_query, which skips the search list. Candidates
 * longer than a DNS name can be are skipped.
 *
 * One departure from glibc: a name that already ends in a search domain
 * (`web.shop.svc.cluster.local`, which the laptop's own search list made) is
 * tried as it is first. With ndots 5 glibc would first ask for
 * `web.shop.svc.cluster.local.shop.svc.cluster.local` and two more such
 * names, three NXDOMAIN round trips before the answer on every lookup.
 */
export function searchCandidates(name: string, cfg: SearchConfig): string[] {
  const bare = name.replace(/\.$/, '');
  if (bare === '' || cfg.search.length === 0 || /(^|\.)(in-addr|ip6)\.arpa$/i.test(bare)) return [bare];
  const dots = bare.split('.').length - 1;
  const lower = bare.toLowerCase();
  const underSearch = cfg.search.some((d) => lower.endsWith(`.${d.toLowerCase().replace(/\.$/, '')}`));
  const expanded = cfg.search.map((d) => `${bare}.${d}`).filter((n) => n.length <= MAX_NAME);
  return dots >= cfg.ndots || underSearch ? [bare, ...expanded] : [...expanded, bare];
}

/** What one try told us, as res_search sorts it. */
export type Outcome = 'answer' | 'nodata' | 'nxdomain' | 'servfail' | 'final';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export function classify(rcode: number, answerCount: number, truncated: boolean): Outcome {
  // A truncated answer ends the search: the client retries over TCP, where
  // the whole search runs again with complete answers.
  if (truncated) return 'final';
  if (rcode === RCODE.NOERROR) return answerCount > 0 ? 'answer' : 'nodata';
  if (rcode === RCODE.NXDOMAIN) return 'nxdomain';
  if (rcode === RCODE.SERVFAIL) return 'servfail';
  // REFUSED, FORMERR, NOTIMP...: glibc stops searching ("done").
  return 'final';
}

/**
 * Which try's response the client gets, or -1 to try the next candidate.
 * `outcomes` are the tries so far, `total` the number of candidates.
 * Stops at the first answer with records (or a final error). When every
 * candidate failed: a NODATA wins over NXDOMAIN (glibc's got_nodata: an
 * AAAA query for a name that only has an A record must not say the name
 * does not exist, or resolvers cache the NXDOMAIN for the A query too,
 * RFC 8020), then SERVFAIL (got_servfail), else the last NXDOMAIN.
 */
export function settle(outcomes: readonly Outcome[], total: number): number {
  const last = outcomes.length - 1;
  if (last < 0) return -1;
  if (outcomes[last] === 'answer' || outcomes[last] === 'final') return last;
  if (outcomes.length < total) return -1;
  const nodata = outcomes.indexOf('nodata');
  if (nodata >= 0) return nodata;
  const servfail = outcomes.indexOf('servfail');
  if (servfail >= 0) return servfail;
  return last;
}

/** The client's query with its question name replaced (header, EDNS OPT and flags kept). */
export function withQuestionName(query: DecodedPacket, name: string): Packet {
  return {
    ...query,
    questions: (query.questions ?? []).map((q) => ({ ...q, name })),
  };
}

/**
 * Make an upstream answer for `tried` (an expanded name) read as an answer
 * for `asked`, the name in the client's question.
 *
 * Choice: records owned by the expanded name get the asked name as owner;
 * no synthetic CNAME `asked → tried` is added. The client sent `web` and
 * gets `web A 10.0.0.5`, exactly as if the name existed as asked. A CNAME
 * form would also be valid DNS, but stub resolvers and caches on the laptop
 * (systemd-resolved, mDNSResponder, unbound) check that every answer record
 * belongs to the chain starting at the question, and some then re-query the
 * CNAME target through their own configuration, where `*.svc.cluster.local`
 * may not be routed at all. Owner rewriting needs nothing of the client.
 * Records further down a CNAME chain the upstream returned (an ExternalName
 * service) keep their names, so the chain still starts at the question.
 * The authority section (SOA of the zone for negative answers) is left as is.
 */
export function rewriteAnswer(resp: DecodedPacket, tried: string, asked: string): Packet {
  const from = tried.replace(/\.$/, '').toLowerCase();
  const rename = <T extends Answer>(a: T): T => (a.name.replace(/\.$/, '').toLowerCase() === from ? { ...a, name: asked } : a);
  return {
    ...resp,
    questions: (resp.questions ?? []).map((q) => ({ ...q, name: asked })),
    answers: (resp.answers ?? []).map(rename),
    authorities: resp.authorities ?? [],
    additionals: (resp.additionals ?? []).map(rename),
  };
}
