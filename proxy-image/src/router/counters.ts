// What the router saw in the last minute, per route and per Service port:
// requests a route matched, requests that carried a route's header (or
// baggage key) with another value, and untagged requests. This is how a
// developer sees where a tag gets lost (the caller does not pass it on, a
// connection opened before the mesh never reaches the router). Pure apart
// from the clock it is given: tested without sockets.
import type { HeaderLookup } from './match.ts';
import type { Route } from './table.ts';

/** The window counts cover; `KT_ROUTER_COUNT_WINDOW_SECONDS` on the router shortens it (tests). */
export const DEFAULT_COUNT_WINDOW_MS = 60_000;
/** The window is kept as this many slots: a count leaves the window at most 1/SLOTS of it late. */
const SLOTS = 60;

export interface RouteCounts {
  /** Requests this route took. */
  matched: number;
  /** Requests that carried one of the route's header names or baggage keys, but did not go to it. */
  otherValue: number;
  /** Requests that carried none of the route's header names or baggage keys. */
  untagged: number;
}

export interface PortCounts {
  servicePort: number;
  /** Every HTTP request (h2 stream) the port routed. */
  requests: number;
  /** Requests that carried no header name or baggage key of any mesh route on the port. */
  untagged: number;
}

/** Sums over a sliding window of SLOTS slots; each slot holds `fields` counters. */
class Rolling {
  readonly #counts: Float64Array;
  readonly #stamp: Float64Array;
  readonly #fields: number;
  readonly #slotMs: number;

  constructor(fields: number, windowMs: number) {
    this.#fields = fields;
    this.#slotMs = windowMs / SLOTS;
    this.#counts = new Float64Array(SLOTS * fields);
    this.#stamp = new Float64Array(SLOTS).fill(-1);
  }

  add(field: number, now: number): void {
    const idx = Math.floor(now / this.#slotMs);
    const s = idx % SLOTS;
    if (this.#stamp[s] !== idx) {
      this.#stamp[s] = idx;
      this.#counts.fill(0, s * this.#fields, (s + 1) * this.#fields);
    }
    this.#counts[s * this.#fields + field]++;
  }

  sums(now: number): number[] {
    const idx = Math.floor(now / this.#slotMs);
    const out = new Array<number>(this.#fields).fill(0);
    for (let s = 0; s < SLOTS; s++) {
      if (this.#stamp[s] <= idx - SLOTS || this.#stamp[s] < 0) continue;
      for (let f = 0; f < this.#fields; f++) out[f] += this.#counts[s * this.#fields + f];
    }
    return out;
  }
}

const MATCHED = 0;
const OTHER = 1;
const UNTAGGED = 2;
const REQUESTS = 0;
const PORT_UNTAGGED = 1;

export interface CountersOptions {
  windowMs?: number;
  now?: () => number;
}

export class Counters {
  readonly windowMs: number;
  readonly #now: () => number;
  readonly #routes = new Map<string, Rolling>();
  readonly #ports = new Map<number, Rolling>();

  constructor(opts: CountersOptions = {}) {
    this.windowMs = opts.windowMs ?? DEFAULT_COUNT_WINDOW_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** One request on a port where no route could take it (none registered): untagged. */
  recordUnrouted(servicePort: number): void {
    const now = this.#now();
    const p = this.#port(servicePort);
    p.add(REQUESTS, now);
    p.add(PORT_UNTAGGED, now);
  }

  /**
   * One request: `routes` are the port's routes (in table order), `chosen`
   * the one it went to (undefined: origin). Exchanges are not counted per
   * route (they take everything); mesh routes are classified by what the
   * request carried.
   */
  record<H>(servicePort: number, routes: readonly Route<H>[], chosen: Route<H> | undefined, lookup: HeaderLookup): void {
    const now = this.#now();
    const p = this.#port(servicePort);
    p.add(REQUESTS, now);
    let tagged = false;
    for (const r of routes) {
      if (r.kind !== 'mesh') continue;
      const c = this.#route(r.id);
      if (r === chosen) {
        c.add(MATCHED, now);
        tagged = true;
      } else if (carries(r, lookup)) {
        c.add(OTHER, now);
        tagged = true;
      } else {
        c.add(UNTAGGED, now);
      }
    }
    if (!tagged) p.add(PORT_UNTAGGED, now);
  }

  route(id: string): RouteCounts {
    const s = this.#routes.get(id)?.sums(this.#now()) ?? [0, 0, 0];
    return { matched: s[MATCHED], otherValue: s[OTHER], untagged: s[UNTAGGED] };
  }

  port(servicePort: number): PortCounts {
    const s = this.#ports.get(servicePort)?.sums(this.#now()) ?? [0, 0];
    return { servicePort, requests: s[REQUESTS], untagged: s[PORT_UNTAGGED] };
  }

  /** A route is gone: its counts go with it. */
  drop(id: string): void {
    this.#routes.delete(id);
  }

  #route(id: string): Rolling {
    let r = this.#routes.get(id);
    if (!r) this.#routes.set(id, (r = new Rolling(3, this.windowMs)));
    return r;
  }

  #port(servicePort: number): Rolling {
    let r = this.#ports.get(servicePort);
    if (!r) this.#ports.set(servicePort, (r = new Rolling(2, this.windowMs)));
    return r;
  }
}

/** Whether a request carries any of the route's keys: a header it names, a baggage member it names. */
function carries<H>(r: Route<H>, lookup: HeaderLookup): boolean {
  for (const c of r.conditions) {
    const v = lookup(c.name);
    if (v !== undefined && (c.carried ? c.carried(v) : true)) return true;
  }
  return false;
}
