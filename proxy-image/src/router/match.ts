// Header conditions of a mesh route, compiled once when the route is
// registered (validate at the edge), then matched per request without
// allocation. Pure: no I/O, tested without sockets.
import { describeMatch } from '../../../contract/protocol.ts';
import type { HeaderMatch } from '../../../contract/protocol.ts';
import { baggageCondition } from './baggage-match.ts';
import { compileLinearRegex } from '../../../contract/http/regex.ts';

export { MAX_REGEX_LENGTH } from '../../../contract/http/regex.ts';

/** RFC 9110 §5.6.2 token: what a header name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Most header conditions one route may carry (each is tested per request). */
export const MAX_CONDITIONS = 8;

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
  if (matches.length > MAX_CONDITIONS) return `a mesh route takes at most ${MAX_CONDITIONS} header conditions, not ${matches.length}`;
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
      // Linear-time engine (regex.ts): a header value is attacker-controlled.
      const re = compileLinearRegex(m.regex);
      if (typeof re === 'string') return `the regex for ${name} is ${re}`;
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

/**
 * The forms of a header a condition is tested against. One rule for HTTP/1.1
 * and HTTP/2: several field lines of one name are one field, their
 * values joined with ", " (RFC 9110 §5.3 — what node:http2 hands us for a
 * repeated header, and what a proxy that folds lines sends). A condition
 * holds when the whole combined value matches, or when one element of that
 * comma-separated list matches: `x-kt-version: bob` and `x-kt-version: alice`
 * as two lines, as `bob, alice` on one line, or as two HTTP/2 fields are the
 * same request and go to the same place. When elements match routes of two
 * developers, the earlier registration wins (table.ts precedence).
 */
export function valueForms(v: readonly string[] | string): string[] {
  const combined = typeof v === 'string' ? v : v.length === 1 ? v[0] : v.join(', ');
  if (!combined.includes(',')) return [combined];
  const out = [combined];
  for (const part of combined.split(',')) {
    const e = part.trim();
    if (e !== '' && e !== combined) out.push(e);
  }
  return out;
}

/** All conditions must hold; a condition holds when one of the header's forms (valueForms) matches it. */
export function matchesAll(conds: readonly Condition[], lookup: HeaderLookup): boolean {
  for (const c of conds) {
    const v = lookup(c.name);
    if (v === undefined) return false;
    if (c.testAll) {
      if (!c.testAll(v)) return false;
    } else if (typeof v === 'string' && !v.includes(',')) {
      if (!c.test(v)) return false;
    } else if (!valueForms(v).some((x) => c.test(x))) {
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
