// The route table: which developer (if any) gets a request. Pure: no
// sockets, no timers, so precedence and conflicts are tested on their own.
//
// Per Service port: at most one exchange, any number of mesh routes with
// distinct header sets. Precedence per request: mesh header routes
// first (in registration order), then the exchange, then origin. Deny by
// default: a request goes to a developer only on a full rule match.
//
// Lookup is by header name and value, not a scan: a mesh route with an
// exact header condition is indexed under that condition's name and value,
// so a request costs one map lookup per indexed header name (in practice
// one: x-kt-version) plus the routes with no exact header condition (regex
// or baggage rules only), which are tried in turn and capped.
import { compileConditions, conditionSetKey, describeConditions, matchesAll, valueForms } from './match.ts';
import type { Condition, HeaderLookup } from './match.ts';
import type { HeaderMatch, RouteRefusalCode, RouteRequest } from '../../../contract/protocol.ts';

/**
 * Caps (README, Limits). Routes per router: a developer holds one per
 * Service port, so 1,000 is far above a team's need while registering them
 * all stays cheap (each is a few hundred bytes and an index entry). Per SSH
 * connection (one plugin session): 32. Routes whose conditions are all
 * regexes or baggage members cannot be indexed and are tried on every
 * request: 64 per router.
 */
export const MAX_ROUTES = 1000;
export const MAX_ROUTES_PER_HOLDER = 32;
export const MAX_SCAN_ROUTES = 64;

export interface Route<H> {
  id: string;
  kind: 'exchange' | 'mesh';
  servicePort: number;
  conditions: Condition[];
  owner: string;
  session: string;
  since: Date;
  /** Registration order (earlier wins when two mesh routes match one request). */
  order: number;
  /** The forwarded-tcpip "address that was connected" for this route's channels. */
  address: string;
  /** Who registered it (the SSH connection); all its routes go when it goes. */
  holder: string;
  /** How the I/O side reaches the developer (opaque here). */
  handle: H;
}

export type AddResult<H> = { route: Route<H> } | { refused: string; code: RouteRefusalCode; heldBy?: string };

/** A port's routes: the exchange, mesh routes by an exact condition, the rest to scan. */
interface PortRoutes<H> {
  all: Route<H>[];
  exchange?: Route<H>;
  /** conditionSetKey → mesh route (conflicts). */
  keys: Map<string, Route<H>>;
  /** `${name}\n${value}` of the route's first exact condition → routes. */
  exact: Map<string, Route<H>[]>;
  /** Indexed header names → how many routes use them. */
  names: Map<string, number>;
  /** Mesh routes with no exact header condition (regexes, baggage members). */
  scan: Route<H>[];
}

const indexKey = (name: string, value: string) => `${name}\n${value}`;
function indexCondition(conds: readonly Condition[]): { name: string; value: string } | undefined {
  // A baggage condition carries a value too, but of one member inside the
  // header, not of the header: it cannot be looked up by the header's value.
  for (const c of conds) if ('value' in c.source && !('baggage' in c.source)) return { name: c.name, value: c.source.value };
  return undefined;
}

export interface RouteView {
  id: string;
  kind: 'exchange' | 'mesh';
  servicePort: number;
  headers: HeaderMatch[];
  owner: string;
  session: string;
  since: string;
}

export class RouteTable<H> {
  readonly #byPort = new Map<number, PortRoutes<H>>();
  readonly #perHolder = new Map<string, number>();
  #scanCount = 0;
  readonly #byId = new Map<string, Route<H>>();
  readonly #ports: ReadonlySet<number>;
  #seq = 0;
  readonly #listeners = new Set<(route: Route<H>) => void>();

  /** ports: the Service ports this router serves; routes for others are refused. */
  constructor(ports: Iterable<number>) {
    this.#ports = new Set(ports);
  }

  /** Validates and adds a route; a refusal names what is wrong or who holds the slot. */
  add(req: RouteRequest, holder: string, handle: H, now = new Date()): AddResult<H> {
    if (req.kind !== 'exchange' && req.kind !== 'mesh') return { refused: `unknown route kind ${JSON.stringify(req.kind)}`, code: 'invalid' };
    if (!this.#ports.has(req.servicePort)) {
      return { refused: `this router serves port(s) ${[...this.#ports].join(', ')}, not ${req.servicePort}`, code: 'invalid' };
    }
    const list = this.#port(req.servicePort);
    let conditions: Condition[] = [];
    let key = '';
    if (req.kind === 'exchange') {
      if (req.headers && req.headers.length > 0) return { refused: 'an exchange takes every request; it has no header conditions', code: 'invalid' };
      const held = list.exchange;
      if (held) return { refused: `port ${req.servicePort} is already exchanged by ${held.owner} (session ${held.session})`, code: 'taken', heldBy: held.session };
    } else {
      const compiled = compileConditions(req.headers ?? []);
      if (typeof compiled === 'string') return { refused: compiled, code: 'invalid' };
      conditions = compiled;
      key = conditionSetKey(conditions);
      const held = list.keys.get(key);
      if (held) {
        return { refused: `port ${req.servicePort} with ${describeConditions(conditions)} is already routed to ${held.owner} (session ${held.session})`, code: 'taken', heldBy: held.session };
      }
      if (!indexCondition(conditions) && this.#scanCount >= MAX_SCAN_ROUTES) {
        return { refused: `this router holds ${MAX_SCAN_ROUTES} routes with no exact header condition (regex or baggage rules only), its limit; add an exact --header NAME=VALUE`, code: 'limit' };
      }
    }
    // Caps after the checks above: a taken slot is named as such, even on a full router.
    if (this.#byId.size >= MAX_ROUTES) return { refused: `this router holds ${MAX_ROUTES} routes, its limit`, code: 'limit' };
    if ((this.#perHolder.get(holder) ?? 0) >= MAX_ROUTES_PER_HOLDER) {
      return { refused: `one session may hold ${MAX_ROUTES_PER_HOLDER} routes on a router, and this one has them`, code: 'limit' };
    }
    const id = `r${++this.#seq}`;
    const route: Route<H> = {
      id,
      kind: req.kind,
      servicePort: req.servicePort,
      conditions,
      owner: String(req.owner),
      session: String(req.session),
      since: now,
      order: this.#seq,
      address: `kt-route-${id}`,
      holder,
      handle,
    };
    list.all.push(route);
    if (route.kind === 'exchange') {
      list.exchange = route;
    } else {
      list.keys.set(key, route);
      const ix = indexCondition(conditions);
      if (ix) {
        const k = indexKey(ix.name, ix.value);
        const bucket = list.exact.get(k);
        if (bucket) bucket.push(route);
        else list.exact.set(k, [route]);
        list.names.set(ix.name, (list.names.get(ix.name) ?? 0) + 1);
      } else {
        list.scan.push(route);
        this.#scanCount++;
      }
    }
    this.#byId.set(id, route);
    this.#perHolder.set(holder, (this.#perHolder.get(holder) ?? 0) + 1);
    return { route };
  }

  #port(servicePort: number): PortRoutes<H> {
    let p = this.#byPort.get(servicePort);
    if (!p) this.#byPort.set(servicePort, (p = { all: [], keys: new Map(), exact: new Map(), names: new Map(), scan: [] }));
    return p;
  }

  /** Removes one route; false when it was not there. */
  remove(id: string, holder?: string): boolean {
    const route = this.#byId.get(id);
    if (!route || (holder !== undefined && route.holder !== holder)) return false;
    this.#byId.delete(id);
    const n = (this.#perHolder.get(route.holder) ?? 1) - 1;
    if (n > 0) this.#perHolder.set(route.holder, n);
    else this.#perHolder.delete(route.holder);
    const list = this.#port(route.servicePort);
    const drop = (arr: Route<H>[]) => {
      const i = arr.indexOf(route);
      if (i >= 0) arr.splice(i, 1);
    };
    drop(list.all);
    if (list.exchange === route) list.exchange = undefined;
    if (route.kind === 'mesh') {
      list.keys.delete(conditionSetKey(route.conditions));
      const ix = indexCondition(route.conditions);
      if (ix) {
        const k = indexKey(ix.name, ix.value);
        const bucket = list.exact.get(k) ?? [];
        drop(bucket);
        if (bucket.length === 0) list.exact.delete(k);
        const c = (list.names.get(ix.name) ?? 1) - 1;
        if (c > 0) list.names.set(ix.name, c);
        else list.names.delete(ix.name);
      } else {
        drop(list.scan);
        this.#scanCount--;
      }
    }
    for (const fn of this.#listeners) fn(route);
    return true;
  }

  /** Removes every route of one holder (its SSH connection closed); returns them. */
  removeHolder(holder: string): Route<H>[] {
    const gone = [...this.#byId.values()].filter((r) => r.holder === holder);
    for (const r of gone) this.remove(r.id);
    return gone;
  }

  /** Called for every removed route (to drop its pooled connections). */
  onRemove(fn: (route: Route<H>) => void): void {
    this.#listeners.add(fn);
  }

  get(id: string): Route<H> | undefined {
    const r = this.#byId.get(id);
    return r;
  }

  /** The route for one HTTP request (or h2 stream): mesh match, else exchange, else undefined (origin). */
  decide(servicePort: number, lookup: HeaderLookup): Route<H> | undefined {
    const list = this.#byPort.get(servicePort);
    if (!list || list.all.length === 0) return undefined;
    let best: Route<H> | undefined;
    const consider = (r: Route<H>) => {
      if ((best === undefined || r.order < best.order) && matchesAll(r.conditions, lookup)) best = r;
    };
    for (const name of list.names.keys()) {
      const v = lookup(name);
      if (v === undefined) continue;
      for (const form of valueForms(v)) {
        const bucket = list.exact.get(indexKey(name, form));
        if (bucket) for (const r of bucket) consider(r);
      }
    }
    for (const r of list.scan) consider(r);
    return best ?? list.exchange;
  }

  /** The route for a connection that is not HTTP: the exchange, else undefined (origin). */
  defaultRoute(servicePort: number): Route<H> | undefined {
    return this.#byPort.get(servicePort)?.exchange;
  }

  /** Whether any route exists on a port (the HTTP fast path skips header lookups when none does). */
  hasRoutes(servicePort: number): boolean {
    return (this.#byPort.get(servicePort)?.all.length ?? 0) > 0;
  }

  /** The routes of one port in precedence order (read only; for the counters). */
  routesOn(servicePort: number): readonly Route<H>[] {
    return this.#byPort.get(servicePort)?.all ?? [];
  }

  list(): Route<H>[] {
    return [...this.#byId.values()];
  }

  static view<H>(r: Route<H>): RouteView {
    return {
      id: r.id,
      kind: r.kind,
      servicePort: r.servicePort,
      headers: r.conditions.map((c) => c.source),
      owner: r.owner,
      session: r.session,
      since: r.since.toISOString(),
    };
  }
}
