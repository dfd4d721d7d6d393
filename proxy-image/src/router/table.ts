// The route table: which developer (if any) gets a request. Pure: no
// sockets, no timers, so precedence and conflicts are tested on their own.
//
// Per Service port: at most one exchange, any number of mesh routes with
// distinct header sets. Precedence per request (issue 6): mesh header routes
// first (in registration order), then the exchange, then origin. Deny by
// default: a request goes to a developer only on a full rule match.
import { compileConditions, conditionSetKey, describeConditions, matchesAll } from './match.ts';
import type { Condition, HeaderLookup } from './match.ts';
import type { HeaderMatch, RouteRequest } from '../protocol/index.ts';

export interface Route<H> {
  id: string;
  kind: 'exchange' | 'mesh';
  servicePort: number;
  conditions: Condition[];
  owner: string;
  session: string;
  since: Date;
  /** The forwarded-tcpip "address that was connected" for this route's channels. */
  address: string;
  /** Who registered it (the SSH connection); all its routes go when it goes. */
  holder: string;
  /** How the I/O side reaches the developer (opaque here). */
  handle: H;
}

export type AddResult<H> = { route: Route<H> } | { refused: string };

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
  readonly #byPort = new Map<number, Route<H>[]>();
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
    if (req.kind !== 'exchange' && req.kind !== 'mesh') return { refused: `unknown route kind ${JSON.stringify(req.kind)}` };
    if (!this.#ports.has(req.servicePort)) {
      return { refused: `this router serves port(s) ${[...this.#ports].join(', ')}, not ${req.servicePort}` };
    }
    const list = this.#byPort.get(req.servicePort) ?? [];
    let conditions: Condition[] = [];
    if (req.kind === 'exchange') {
      if (req.headers && req.headers.length > 0) return { refused: 'an exchange takes every request; it has no header conditions' };
      const held = list.find((r) => r.kind === 'exchange');
      if (held) return { refused: `port ${req.servicePort} is already exchanged by ${held.owner} (session ${held.session})` };
    } else {
      const compiled = compileConditions(req.headers ?? []);
      if (typeof compiled === 'string') return { refused: compiled };
      conditions = compiled;
      const key = conditionSetKey(conditions);
      const held = list.find((r) => r.kind === 'mesh' && conditionSetKey(r.conditions) === key);
      if (held) {
        return { refused: `port ${req.servicePort} with ${describeConditions(conditions)} is already routed to ${held.owner} (session ${held.session})` };
      }
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
      address: `kt-route-${id}`,
      holder,
      handle,
    };
    list.push(route);
    this.#byPort.set(req.servicePort, list);
    this.#byId.set(id, route);
    return { route };
  }

  /** Removes one route; false when it was not there. */
  remove(id: string, holder?: string): boolean {
    const route = this.#byId.get(id);
    if (!route || (holder !== undefined && route.holder !== holder)) return false;
    this.#byId.delete(id);
    const list = this.#byPort.get(route.servicePort) ?? [];
    const i = list.indexOf(route);
    if (i >= 0) list.splice(i, 1);
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
    if (!list || list.length === 0) return undefined;
    for (const r of list) if (r.kind === 'mesh' && matchesAll(r.conditions, lookup)) return r;
    return list.find((r) => r.kind === 'exchange');
  }

  /** The route for a connection that is not HTTP: the exchange, else undefined (origin). */
  defaultRoute(servicePort: number): Route<H> | undefined {
    return this.#byPort.get(servicePort)?.find((r) => r.kind === 'exchange');
  }

  /** Whether any route exists on a port (the HTTP fast path skips header lookups when none does). */
  hasRoutes(servicePort: number): boolean {
    return (this.#byPort.get(servicePort)?.length ?? 0) > 0;
  }

  /** The routes of one port in precedence order (read only; for the counters). */
  routesOn(servicePort: number): readonly Route<H>[] {
    return this.#byPort.get(servicePort) ?? [];
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
