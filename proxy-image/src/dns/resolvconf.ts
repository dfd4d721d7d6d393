// resolv.conf parsing, as glibc's stub resolver reads it (resolv.conf(5)).
// Pure: takes the file's text, returns the settings the forwarder needs.
import { isIP } from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

export interface ResolvConf {
  nameservers: Upstream[];
  search: string[];
  ndots: number;
  /** options timeout:N, in milliseconds (glibc default 5 s). */
  timeoutMs: number;
  /** options attempts:N (glibc default 2). */
  attempts: number;
  /** options rotate: spread queries over the nameservers instead of always starting at the first. */
  rotate: boolean;
}

/** glibc's MAXNS: later nameserver lines are ignored. */
const MAX_NAMESERVERS = 3;

/**
 * Parse resolv.conf text. Rules from resolv.conf(5): comments start with
 * `#` or `;` in the first column; `domain` and `search` override each other
 * (the last one wins); ndots is capped at 15, timeout at 30 s, attempts at 5;
 * with no usable nameserver line the resolver uses the local name server.
 */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], ndots: 1, timeoutMs: 5000, attempts: 2, rotate: false };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver': {
        const host = args[0]?.replace(/%.*$/, '') ?? '';
        if (out.nameservers.length < MAX_NAMESERVERS && isIP(host) !== 0) out.nameservers.push({ host, port: 53 });
        break;
      }
      case 'domain':
        out.search = args.length > 0 ? [normalizeDomain(args[0])] : [];
        break;
      case 'search':
        out.search = args.map(normalizeDomain).filter((d) => d !== '');
        break;
      case 'options':
        for (const opt of args) applyOption(out, opt);
        break;
      default:
        // sortlist and unknown keywords do not concern a forwarder.
        break;
    }
  }
  if (out.nameservers.length === 0) out.nameservers.push({ host: '127.0.0.1', port: 53 });
  return out;
}

function applyOption(out: ResolvConf, opt: string): void {
  const [name, value] = opt.split(':', 2);
  const n = value === undefined ? NaN : Number.parseInt(value, 10);
  if (name === 'ndots' && Number.isInteger(n) && n >= 0) out.ndots = Math.min(n, 15);
  else if (name === 'timeout' && Number.isInteger(n) && n >= 1) out.timeoutMs = Math.min(n, 30) * 1000;
  else if (name === 'attempts' && Number.isInteger(n) && n >= 1) out.attempts = Math.min(n, 5);
  else if (name === 'rotate') out.rotate = true;
}

function normalizeDomain(d: string): string {
  return d.replace(/^\.+|\.+$/g, '').toLowerCase();
}
