// The router role (exchange and mesh): see router.ts.
export { startRouter } from './router.ts';
export type { Router, RouterOptions } from './router.ts';
export type { RouteStatus } from './health.ts';
export { parseRouterPorts } from './env.ts';
export { DRAIN_DEFAULTS } from './drain.ts';
