// Header conditions of a mesh route, compiled once when the route is
// registered (validate at the edge), then matched per request without
// allocation. Pure: no I/O, tested without sockets.
import { describeMatch } from '../protocol/index.ts';
import type { HeaderMatch } from '../protocol/index.ts';
import { baggageCondition } from './baggage.ts';

/** RFC 9110 §5.6.2 token: what a header name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Longest regex source accepted (a route comes from an authenticated developer, but keep it sane). */
export const MAX_REGEX_LENGTH = 256;

/** A compiled condition: the lowercased name and a test on one value. */
export interface Condition {
  name: string;
  /** The form it was registered in, for status and conflict checks. */
  source: HeaderMatch;
  test(value: string): boolean;
  /**
   * Set on baggage conditions: the test reads every line of the header at
   * once (W3C Baggage: several `baggage` lines are one list), through testAll.
   */
  testAll?: (values: readonly string[] | string) => boolean;
  /** Whether a request carries this condition's key at all (header present, baggage member present): for the counters. */
  carried?: (values: readonly string[] | string) => boolean;
}

/** Header values of a request by lowercased name; undefined when absent. */
export type HeaderLookup = (lowerName: string) => readonly string[] | string | undefined;

/** Compiles conditions; a string names what is wrong (it becomes the refusal). */
export function compileConditions(matches: readonly HeaderMatch[]): Condition[] | string {
  if (matches.length === 0) return 'a mesh route needs at least one header condition';
  const out: Condition[] = [];
  const seen = new Set<string>();
  for (const m of matches) {
    if (m && typeof m === 'object' && 'baggage' in m) {
      const c = baggageCondition(m);
      if (typeof c === 'string') return c;
      out.push(c);
      const key = conditionKey(c.source);
      if (seen.has(key)) return `condition ${key} is given twice`;
      seen.add(key);
      continue;
    }
    if (!m || typeof m.name !== 'string' || !TOKEN.test(m.name)) return `header name ${JSON.stringify(m?.name)} is not a valid HTTP field name`;
    const name = m.name.toLowerCase();
    if ('regex' in m && typeof m.regex === 'string') {
      if (m.regex.length > MAX_REGEX_LENGTH) return `the regex for ${name} is longer than ${MAX_REGEX_LENGTH} characters`;
      let re: RegExp;
      try {
        // Anchored: `alice` must not match `malice`. Deny by default means a
        // request goes to a laptop only when the whole value matches.
        re = new RegExp(`^(?:${m.regex})$`);
      } catch (err) {
        return `the regex for ${name} does not compile: ${(err as Error).message}`;
      }
      out.push({ name, source: { name, regex: m.regex }, test: (v) => re.test(v) });
    } else if ('value' in m && typeof m.value === 'string') {
      const want = m.value;
      out.push({ name, source: { name, value: want }, test: (v) => v === want });
    } else {
      return `header condition on ${name} has neither a value nor a regex`;
    }
    const key = conditionKey(out[out.length - 1].source);
    if (seen.has(key)) return `header condition ${key} is given twice`;
    seen.add(key);
  }
  return out;
}

/** All conditions must hold; a condition holds when any of the header's values matches it. */
export function matchesAll(conds: readonly Condition[], lookup: HeaderLookup): boolean {
  for (const c of conds) {
    const v = lookup(c.name);
    if (v === undefined) return false;
    if (c.testAll) {
      if (!c.testAll(v)) return false;
    } else if (typeof v === 'string') {
      if (!c.test(v)) return false;
    } else if (!v.some((x) => c.test(x))) {
      return false;
    }
  }
  return true;
}

function conditionKey(m: HeaderMatch): string {
  return describeMatch(m);
}

/** A canonical text of a condition set (order and name case do not matter): two routes conflict when theirs are equal. */
export function conditionSetKey(conds: readonly Condition[]): string {
  return conds
    .map((c) => conditionKey(c.source))
    .sort()
    .join('\n');
}

/** Human form for messages: `x-kt-version=alice, x-tenant~=a.*`. */
export function describeConditions(conds: readonly Condition[]): string {
  return conds.map((c) => conditionKey(c.source)).join(', ');
}
