// kt-proxy: one program, one role per pod (KT_ROLE or argv[2]). The only
// place in the proxy that exits. Every event is one line on stderr, which is
// what `kubectl logs` shows for the pod.
import { DEFAULT_IDLE_EXIT_SECONDS, ENV, PORTS, ROLES, ROUTER_ENV, VERSION } from '../../contract/protocol.ts';
import type { Role, RouterPort } from '../../contract/protocol.ts';
import { bindEarly } from './early-listen.ts';

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
const env = process.env;

function fail(msg: string, code = 2): never {
  log(`kt-proxy ${VERSION}: ${msg}`);
  process.exit(code);
}

function intEnv(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  return n;
}

interface Closable {
  /** The graceful part of SIGTERM (the router drains: router/drain.ts); then close(). */
  drain?(): Promise<void>;
  close(): Promise<void>;
}

async function shadow(): Promise<Closable[]> {
  const sshPort = intEnv(ENV.sshPort, PORTS.ssh);
  // Bound before the SSH server's modules load (early-listen.ts says why).
  const early = await bindEarly(sshPort);
  const { splitKeyLines, startSshServer } = await import('./ssh/index.ts');
  const keys = splitKeyLines(env[ENV.authorizedKeys]).filter((l) => l.trim() !== '');
  if (keys.length === 0) fail(`${ENV.authorizedKeys} is empty: nobody could log in`);
  const idleSeconds = intEnv(ENV.idleExitSeconds, DEFAULT_IDLE_EXIT_SECONDS);
  const closables: Closable[] = [];
  const ssh = await startSshServer({
    port: sshPort,
    listener: early,
    authorizedKeys: keys,
    ...(env[ENV.hostKey] ? { hostKey: env[ENV.hostKey] } : {}),
    idleExitMs: idleSeconds * 1000,
    // Crash cleanup: a pod whose laptop went away without `clean` ends itself.
    onIdle: () => void stop(`no SSH client for ${idleSeconds} s`),
    debug: log,
  });
  closables.push(ssh);
  // Each role loads only its own parts (the router's http2 alone is about
  // 14 MiB of resident memory in a process that would never use it).
  const { startDnsForwarder } = await import('./dns/index.ts');
  const dns = await startDnsForwarder({
    host: '127.0.0.1',
    port: intEnv(ENV.dnsPort, PORTS.dns),
    ...(env[ENV.debug] ? { debug: log } : {}),
  });
  closables.push(dns);
  log(`kt-proxy ${VERSION} shadow: ssh on 127.0.0.1:${ssh.port}, dns on 127.0.0.1:${dns.port}`);
  return closables;
}

/** What the router and its standby both read: the origin, the ports, how a drain ends. */
async function routerBasics(who: string): Promise<{ origin: string; ports: RouterPort[]; drain: { quietMs: number; maxMs: number } }> {
  const origin = env[ROUTER_ENV.origin];
  if (!origin) fail(`${ROUTER_ENV.origin} is empty: the ${who} needs the origin Service to send requests to`);
  const [{ parseRouterPorts }, { DRAIN_DEFAULTS }] = await Promise.all([import('./router/env.ts'), import('./router/drain.ts')]);
  let ports: RouterPort[];
  try {
    ports = parseRouterPorts(env[ROUTER_ENV.ports]);
  } catch (err) {
    fail((err as Error).message);
  }
  return { origin, ports, drain: { quietMs: intEnv(ROUTER_ENV.drainQuietMs, DRAIN_DEFAULTS.quietMs), maxMs: intEnv(ROUTER_ENV.drainMaxMs, DRAIN_DEFAULTS.maxMs) } };
}

async function router(): Promise<Closable[]> {
  const { splitKeyLines } = await import('./ssh/index.ts');
  const keys = splitKeyLines(env[ENV.authorizedKeys]).filter((l) => l.trim() !== '');
  if (keys.length === 0) fail(`${ENV.authorizedKeys} is empty: nobody could register a route`);
  const { origin, ports, drain } = await routerBasics('router');
  const { startRouter } = await import('./router/index.ts');
  // No idle exit: the Service points at the router, which must never leave by itself.
  const r = await startRouter({
    ports,
    originHost: origin,
    ssh: { port: intEnv(ENV.sshPort, PORTS.ssh), authorizedKeys: keys, ...(env[ENV.hostKey] ? { hostKey: env[ENV.hostKey] } : {}) },
    health: { port: intEnv(ROUTER_ENV.healthPort, PORTS.routerHealth) },
    countWindowMs: intEnv(ROUTER_ENV.countWindow, 60) * 1000,
    ...(env[ROUTER_ENV.memoryLimitMb] ? { memoryLimitBytes: intEnv(ROUTER_ENV.memoryLimitMb, 0) * 2 ** 20 } : {}),
    drain,
    ...(env[ROUTER_ENV.standby] ? { standby: env[ROUTER_ENV.standby] } : {}),
    log,
  });
  log(`kt-proxy ${VERSION} router: ssh on 127.0.0.1:${r.sshPort}, health on :${r.healthPort}, ports ${ports.map((p) => `${p.servicePort}→${r.listenPort(p.servicePort)}`).join(', ')}, origin ${origin}`);
  return [r];
}

/** The router pod's second container: serves the Service ports while the router's process is down (router/standby.ts). */
async function standby(): Promise<Closable[]> {
  const socket = env[ROUTER_ENV.standby];
  if (!socket) fail(`${ROUTER_ENV.standby} is empty: the standby needs the socket the router links to`);
  const { origin, ports, drain } = await routerBasics('standby');
  // Not router/index.ts: the standby never loads the SSH server.
  const { startStandby } = await import('./router/standby.ts');
  const s = await startStandby({ ports, originHost: origin, socket, drain, log });
  log(`kt-proxy ${VERSION} standby: waiting for the router on @${socket}; ports ${ports.map((p) => p.listenPort).join(', ')}, origin ${origin}`);
  return [s];
}

let running: Closable[] = [];
let stopping = false;

async function stop(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`stopping: ${why}`);
  // The kubelet's SIGTERM starts a pod's grace period: what can leave gracefully does so first.
  await Promise.all(running.map((c) => c.drain?.()));
  await Promise.all(running.map((c) => c.close()));
  log('stopped');
  process.exit(0);
}

async function main(): Promise<void> {
  const role = env[ENV.role] ?? process.argv[2];
  if (!role || !(ROLES as readonly string[]).includes(role)) {
    fail(`unknown role ${JSON.stringify(role)}; set ${ENV.role} to one of ${ROLES.join(', ')}`);
  }
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    switch (role as Role) {
      case 'shadow':
        running = await shadow();
        break;
      case 'router':
        running = await router();
        break;
      case 'standby':
        running = await standby();
        break;
    }
  } catch (err) {
    fail(`could not start ${role}: ${(err as Error).message}`, 1);
  }
}

// The bundle is CommonJS (no top-level await), hence the explicit call.
void main();
