// A session with one proxy pod: make keys, create the pod, wait for it by
// watching, port-forward to its SSH port, keep the tunnel up (reconnect with
// backoff, say so), renew the heartbeat, and on close delete the pod.
// Commands build on it: connect dials through it, exchange/mesh/preview
// register reverse forwards on it.
import { EventEmitter } from 'node:events';
import { hostname, userInfo } from 'node:os';
import type { Duplex } from 'node:stream';
import { ANNOTATIONS, PORTS, PROTOCOL_VERSION, type Role } from '../../../contract/protocol.ts';
import { isKtError, ktError, toKtError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { CacheWarmth, keepChunkCache } from '../kube/chunk.ts';
import { openPortForward, PortForwardError } from '../kube/portforward.ts';
import { annotatePod, createPod, deletePod, podRunning, waitForPod } from '../kube/pods.ts';
import { newSessionId, proxyPod } from '../kube/shadow.ts';
import { makeSessionKey, openTunnel, pinHostKey, type KeyPair, type Tunnel } from '../tunnel/index.ts';

export interface Progress {
  /** A step starts; the returned function marks it done (and prints its time). */
  step(text: string): (detail?: string) => void;
  /** A notice while running (reconnects, warnings). */
  note(text: string): void;
}

export interface ProxySessionOptions {
  api: KubeApi;
  namespace: string;
  image: string;
  role: Role;
  kind: string;
  /** Pod name; default kt-<kind>-<session>. */
  name?: string;
  labels?: Record<string, string>;
  ports?: { name: string; containerPort: number; protocol?: 'TCP' | 'UDP' }[];
  progress: Progress;
  debug: (msg: string) => void;
  signal: AbortSignal;
  /**
   * Keys to use instead of fresh per-session ones: a shared router's client
   * pair and host key come from its Secret, so every developer's session
   * authenticates to the same pod.
   */
  keys?: { client: KeyPair; host: KeyPair };
  /**
   * The pod exists already (a shared router): start() only connects, there is
   * no pod heartbeat, and close() leaves the pod alone. `name` is required.
   */
  attach?: boolean;
}

export interface ProxySessionEvents {
  /** The tunnel is (again) up. */
  up: [tunnel: Tunnel];
  /** The tunnel dropped; a reconnect follows unless the session is closing. */
  down: [err: Error | undefined];
  /** While reconnecting, the API server said the pod is not there (404): it was deleted. */
  gone: [];
  /** Reconnecting gave up: the session cannot go on. */
  lost: [err: Error];
}

/**
 * One port-forward + SSH handshake may take this long. A path that drops
 * packets leaves a TCP connect waiting for its SYN to be answered for about
 * two minutes (Linux: 6 retries, tcp_syn_retries); given up after this, the
 * next try starts at once when the path is back.
 */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** How long a reconnect keeps asking when the API server refuses it (403/401) before giving up. */
export const REFUSED_RETRY_MS = 60_000;
/** The longest pause between two reconnect attempts. */
export const RECONNECT_MAX_DELAY_MS = 2000;

export class ProxySession extends EventEmitter<ProxySessionEvents> {
  readonly id: string;
  readonly podName: string;
  /** The proxy's SSH port in its pod; a shared router's is known once its pod has been read. */
  sshPort: number = PORTS.ssh;
  readonly namespace: string;
  readonly owner: string;
  readonly since: string;
  private readonly opts: ProxySessionOptions;
  private readonly key: KeyPair;
  private readonly hostKey: KeyPair;
  private current: Tunnel | undefined;
  private waiting: { resolve: (t: Tunnel) => void; reject: (e: Error) => void }[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;
  private podCreated = false;
  private reconnecting: Promise<void> | undefined;
  private downSince = 0;
  /** When the last tunnel last heard from the proxy (performance.now()). */
  private lastHeard = 0;

  constructor(opts: ProxySessionOptions) {
    super();
    this.opts = opts;
    this.key = opts.keys?.client ?? makeSessionKey('kubectl-kt session');
    this.hostKey = opts.keys?.host ?? makeSessionKey('kubectl-kt proxy host');
    this.id = newSessionId();
    this.podName = opts.name ?? `kt-${opts.kind}-${this.id}`;
    this.namespace = opts.namespace;
    this.owner = `${safeUser()}@${hostname()}`;
    this.since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  }

  /** The tunnel, waiting for a reconnect when it is down. */
  tunnel(): Promise<Tunnel> {
    if (this.current && !this.current.closed) return Promise.resolve(this.current);
    if (this.closing) return Promise.reject(ktError('KT_ERR_INTERRUPTED', { what: 'the session' }));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Milliseconds since the proxy last sent anything on the tunnel (while it is down: on the last one). */
  quietMs(): number {
    return this.current && !this.current.closed ? this.current.quietMs() : performance.now() - this.lastHeard;
  }

  /** A connection to host:port as the proxy pod sees it. */
  async dial(host: string, port: number): Promise<Duplex> {
    const t = await this.tunnel();
    return await t.connect(host, port);
  }

  /** Creates the pod and brings the tunnel up; throws a KtError (and removes the pod) on failure. */
  async start(): Promise<Tunnel> {
    const { api, namespace, progress } = this.opts;
    if (this.opts.attach) {
      try {
        const done = progress.step(`opening the tunnel to ${namespace}/${this.podName}`);
        const tunnel = await this.connectWithRetry(true);
        done();
        return tunnel;
      } catch (err) {
        await this.close();
        throw toKtError(err);
      }
    }
    try {
      let done = progress.step(`creating proxy pod ${namespace}/${this.podName}`);
      await createPod(api, proxyPod({
        name: this.podName,
        namespace,
        image: this.opts.image,
        role: this.opts.role,
        kind: this.opts.kind,
        session: this.id,
        owner: this.owner,
        since: this.since,
        authorizedKey: this.key.publicKey,
        hostKey: this.hostKey.privateKey,
        labels: this.opts.labels,
        ports: this.opts.ports,
      }));
      this.podCreated = true;
      done();
      done = progress.step('waiting for the proxy pod');
      await waitForPod(api, { namespace, name: this.podName }, podRunning, {
        timeoutMs: 120_000,
        signal: this.opts.signal,
        what: `pod ${namespace}/${this.podName} to run`,
      });
      done();
      done = progress.step('opening the tunnel');
      const tunnel = await this.connectWithRetry(true);
      done();
      this.startHeartbeat();
      return tunnel;
    } catch (err) {
      await this.close();
      throw toKtError(err);
    }
  }

  /**
   * One port-forward + SSH handshake. Right after the pod starts, its SSH
   * server may not listen yet (the kubelet reports Running when the process
   * starts, not when it has bound its port), so refused attempts are retried
   * with backoff for a bounded time.
   */
  private async connectWithRetry(first: boolean): Promise<Tunnel> {
    const deadline = Date.now() + (first ? 30_000 : 3_600_000);
    let delay = 100;
    let refusedSince: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.closing || this.opts.signal.aborted) throw ktError('KT_ERR_INTERRUPTED', { what: 'the tunnel' });
      try {
        const t = await this.connectOnce();
        this.current = t;
        for (const w of this.waiting.splice(0)) w.resolve(t);
        t.on('close', (err) => this.onTunnelClosed(t, err));
        this.emit('up', t);
        if (first) keepWarmCache();
        return t;
      } catch (err) {
        // Refusals that another try cannot change end the wait at once. But
        // an API server that has just restarted refuses everyone (403) until
        // its RBAC caches are filled again: what was allowed a moment ago is
        // asked again for a while before it counts as taken away.
        if (isKtError(err) && err.code === 'KT_ERR_PROTOCOL_MISMATCH') throw err;
        if (isKtError(err) && ['KT_ERR_API_FORBIDDEN', 'KT_ERR_API_UNAUTHORIZED'].includes(err.code)) {
          refusedSince ??= Date.now();
          if (first || Date.now() - refusedSince > REFUSED_RETRY_MS) throw err;
        } else {
          refusedSince = undefined;
        }
        if (err instanceof PortForwardError && err.status === 404) {
          // The pod is not there. Coming up, it was there a moment ago (running, or read as Ready when
          // joining): it went, and no retry brings it back; the caller says what that means.
          if (first) throw ktError('KT_ERR_TUNNEL_FAILED', { pod: this.podName, namespace: this.namespace, reason: 'the pod is not there any more' }, err);
          this.emit('gone');
        }
        this.opts.debug(`tunnel attempt ${attempt} failed: ${(err as Error).message}`);
        if (Date.now() + delay > deadline) {
          throw ktError('KT_ERR_TUNNEL_FAILED', { pod: this.podName, namespace: this.namespace, reason: (err as Error).message }, err);
        }
        await abortableDelay(delay, this.opts.signal);
        delay = Math.min(delay * 2, first ? 1000 : RECONNECT_MAX_DELAY_MS);
      }
    }
  }

  /** connectOnce, given up after ATTEMPT_TIMEOUT_MS (a tunnel that comes up later is closed). */
  private connectOnce(): Promise<Tunnel> {
    const attempt = this.connectOnceUnbounded();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        attempt.then((t) => t.close(), () => undefined);
        reject(new Error(`no tunnel after ${ATTEMPT_TIMEOUT_MS / 1000} s (is the API server reachable?)`));
      }, ATTEMPT_TIMEOUT_MS);
    });
    return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
  }

  private async connectOnceUnbounded(): Promise<Tunnel> {
    const stream = await openPortForward(this.opts.api, { namespace: this.namespace, pod: this.podName, port: this.sshPort }).catch((err: unknown) => {
      // RBAC checks the upgrade as `create` on pods/portforward (a WebSocket
      // GET included, since Kubernetes 1.30): name that call, as for any API refusal.
      const status = err instanceof PortForwardError ? err.status : undefined;
      const call = { verb: 'create', resource: 'pods/portforward', namespace: this.namespace, name: this.podName };
      if (status === 403) throw ktError('KT_ERR_API_FORBIDDEN', call, err);
      if (status === 401) throw ktError('KT_ERR_API_UNAUTHORIZED', call, err);
      throw err;
    });
    const tunnel = await openTunnel({
      stream,
      privateKey: this.key.privateKey,
      hostKeyCheck: pinHostKey(this.hostKey.publicKey),
      debug: this.opts.debug,
    }).catch((err: unknown) => {
      stream.destroy();
      throw err;
    });
    const hello = await tunnel.hello();
    if (hello.protocol !== PROTOCOL_VERSION) {
      await tunnel.close();
      throw ktError('KT_ERR_PROTOCOL_MISMATCH', { proxy: hello.version, proxyProtocol: hello.protocol, protocol: PROTOCOL_VERSION });
    }
    return tunnel;
  }

  private onTunnelClosed(t: Tunnel, err: Error | undefined): void {
    if (this.current !== t) return;
    this.current = undefined;
    this.downSince = performance.now();
    this.lastHeard = this.downSince - t.quietMs();
    this.emit('down', err);
    if (this.closing || this.opts.signal.aborted) return;
    this.opts.progress.note(`tunnel to ${this.namespace}/${this.podName} dropped${err ? ` (${err.message})` : ''}; reconnecting`);
    this.reconnecting ??= this.connectWithRetry(false).then(
      () => {
        this.reconnecting = undefined;
        this.opts.progress.note(`tunnel up again after ${((performance.now() - this.downSince) / 1000).toFixed(1)} s`);
      },
      (e: unknown) => {
        this.reconnecting = undefined;
        const ke = toKtError(e);
        for (const w of this.waiting.splice(0)) w.reject(ke);
        if (this.closing || this.opts.signal.aborted) return;
        this.opts.progress.note(`cannot reconnect: ${ke.message}`);
        this.emit('lost', ke);
      },
    );
  }

  private startHeartbeat(): void {
    const every = 10_000;
    const beat = (): void => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      annotatePod(this.opts.api, { namespace: this.namespace, name: this.podName }, { [ANNOTATIONS.heartbeat]: now }).catch((err: unknown) => {
        this.opts.debug(`heartbeat failed: ${(err as Error).message}`);
      });
    };
    this.heartbeat = setInterval(beat, every);
    this.heartbeat.unref();
  }

  /** Ends the session: closes the tunnel and deletes the pod. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const w of this.waiting.splice(0)) w.reject(ktError('KT_ERR_INTERRUPTED', { what: 'the session' }));
    const t = this.current;
    this.current = undefined;
    await t?.close().catch(() => undefined);
    if (this.podCreated) {
      await deletePod(this.opts.api, { namespace: this.namespace, name: this.podName }, 0).catch((err: unknown) => {
        this.opts.progress.note(`could not delete pod ${this.namespace}/${this.podName}: ${(err as Error).message}; \`kubectl kt clean\` removes it`);
      });
    }
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

let warmKept = false;

/**
 * Once a session's tunnel is up, and its command has had a moment to
 * register routes, point a Service and start its watches: the Kubernetes
 * client's code cache with all of that in it, for every later start
 * (kube/chunk.ts). Once per process, off the path of anything waiting.
 */
function keepWarmCache(): void {
  if (warmKept) return;
  warmKept = true;
  setTimeout(() => keepChunkCache(CacheWarmth.session), 2000).unref();
}
