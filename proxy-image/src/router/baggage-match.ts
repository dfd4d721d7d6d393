// The router's baggage member conditions (mesh --baggage KEY=VALUE); the
// header's syntax is contract/http/baggage.ts.
import { BAGGAGE_HEADER } from '../../../contract/protocol.ts';
import { isBaggageKey, parseBaggage } from '../../../contract/http/baggage.ts';
import type { Condition } from './match.ts';

/**
 * A compiled baggage member condition for match.ts. The last parsed
 * lines are kept: the match and the counters (router/counters.ts) ask about
 * the same request one after the other, and parse it once.
 */
export function baggageCondition(m: { baggage: unknown; value: unknown }): Condition | string {
  if (typeof m.baggage !== 'string' || !isBaggageKey(m.baggage)) return `baggage key ${JSON.stringify(m.baggage)} is not a valid key (an HTTP token)`;
  if (typeof m.value !== 'string') return `baggage condition on ${m.baggage} has no value`;
  const key = m.baggage;
  const want = m.value;
  let lastIn: readonly string[] | string | undefined;
  let lastOut: ReturnType<typeof parseBaggage>;
  const parsed = (v: readonly string[] | string): ReturnType<typeof parseBaggage> => {
    if (!sameLines(v, lastIn)) {
      lastIn = v;
      lastOut = parseBaggage(v);
    }
    return lastOut;
  };
  const testAll = (v: readonly string[] | string): boolean => parsed(v)?.get(key)?.includes(want) ?? false;
  return {
    name: BAGGAGE_HEADER,
    source: { baggage: key, value: want },
    test: (v) => testAll(v),
    testAll,
    carried: (v) => parsed(v)?.has(key) ?? false,
  };
}

/** Same header lines (lookups may build a new array per call). */
function sameLines(a: readonly string[] | string, b: readonly string[] | string | undefined): boolean {
  if (typeof a === 'string' || typeof b === 'string' || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
