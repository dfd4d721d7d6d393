// The kubelet: runs the pods bound to this node (and binds unscheduled ones,
// as the only node there is), one network namespace and one agent per pod,
// and writes their status the way a real kubelet does. Also the node's
// streaming API (port-forward, exec, logs) that the API server calls.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { debuglog } from 'node:util';
import type { KubeObject, ObjectStore, WatchEvent } from '../store.ts';
import { KubeletError, type ExecOptions, type ExecProcess, type KubeletHooks, type LogOptions } from '../types.ts';
import { IpAllocator } from '../net/cidr.ts';
import { deleteNetns, podResolvConf, removeEtcNetns, setupPod, sysctl, writeEtcNetnsFile } from '../net/netns.ts';

/**
 * The pod sysctls a kubelet allows by default ("safe": namespaced, and
 * harmless to other pods); the network ones are what a pod namespace here
 * has. Any other is refused, as a kubelet refuses it without
 * --allowed-unsafe-sysctls.
 */
const SAFE_SYSCTLS = new Set([
  'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
import type { StateRecord } from '../net/state.ts';
import { killAndWait, netnsPids } from '../net/state.ts';
import { AgentClient } from './agent-client.ts';
import { containerEnv, EnvError, expand, type ContainerEnvSpec } from './env.ts';
import { resolveImage, type ContainerLike, type ImageContext } from './images.ts';
import type { AgentEvent, ContainerSpec, Probe } from './wire.ts';

const debug = debuglog('kt-cluster');
const AGENT = join(import.meta.dirname, 'agent.ts');

export interface KubeletOptions {
  store: ObjectStore;
  nodeName: string;
  /** Prefix of the pods' netns and veth names. */
  prefix: string;
  /** Where pods' sockets, specs and logs go. */
  podsDir: string;
  nodeNetns: string;
  bridge: string;
  podCidr: string;
  gateway: string;
  dnsIp: string;
  clusterDomain: string;
  record: StateRecord;
  image: ImageContext;
}

type Obj = Record<string, unknown>;

interface ProbeSpec extends Probe {
  tcpSocket?: { port: number; host?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

interface PodContainer extends ContainerLike, ContainerEnvSpec {
  readinessProbe?: Omit<ProbeSpec, 'tcpSocket' | 'httpGet'> & {
    tcpSocket?: { port: number | string; host?: string };
    httpGet?: { port: number | string; host?: string; path?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  };
  workingDir?: string;
  securityContext?: { runAsUser?: number; runAsGroup?: number };
}

interface PodSpec {
  nodeName?: string;
  containers: PodContainer[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  enableServiceLinks?: boolean;
  dnsPolicy?: string;
  securityContext?: { runAsUser?: number; runAsGroup?: number; sysctls?: { name: string; value: string }[] };
}

interface ContainerState {
  name: string;
  image: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: Obj;
  lastState: Obj;
  probe?: { timer?: NodeJS.Timeout; successes: number; failures: number; spec: ProbeSpec };
  restartTimer?: NodeJS.Timeout;
  /** Running now (or about to be restarted). */
  live: boolean;
  /** The container's main process while it runs. */
  pid?: number;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function podKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? 'default'}/${name}`;
}

/** One pod on this node, from binding to removal. */
class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private readonly k: Kubelet;
  private spec: PodSpec;
  private pod: KubeObject;
  netns?: string;
  ip?: string;
  agent?: AgentClient;
  private agentProc?: ChildProcess;
  private unsubscribe?: () => void;
  private readonly containers = new Map<string, ContainerState>();
  private startTime?: string;
  private terminating = false;
  private torndown = false;
  private pullTimer?: NodeJS.Timeout;
  private readonly conditionTimes = new Map<string, { status: string; time: string }>();
  private setupDone: Promise<void> = Promise.resolve();

  constructor(k: Kubelet, pod: KubeObject) {
    this.k = k;
    this.pod = pod;
    this.uid = pod.metadata.uid ?? '';
    this.namespace = pod.metadata.namespace ?? 'default';
    this.name = pod.metadata.name;
    this.spec = pod.spec as PodSpec;
    for (const c of this.spec.containers ?? []) {
      this.containers.set(c.name, {
        name: c.name, image: c.image ?? '', ready: false, started: false, restartCount: 0,
        state: { waiting: { reason: 'ContainerCreating' } }, lastState: {}, live: false,
      });
    }
  }

  private get dir(): string {
    return join(this.k.opts.podsDir, this.uid);
  }

  /** Bring the pod up; failures end as container states, never as throws. */
  start(): void {
    this.startTime = now();
    this.setupDone = this.setup().catch((e: unknown) => {
      debug('pod %s: setup failed: %s', this.name, (e as Error).message);
      for (const c of this.containers.values()) {
        if (!c.live) c.state = { waiting: { reason: 'CreateContainerError', message: (e as Error).message } };
      }
      this.writeStatus();
    });
  }

  private async setup(): Promise<void> {
    const o = this.k.opts;
    this.writeStatus();
    const resolved = new Map<string, Extract<ReturnType<typeof resolveImage>, { ok: true }>>();
    let pullFailed = false;
    for (const c of this.spec.containers) {
      const r = resolveImage(c, o.image);
      const cs = this.containers.get(c.name);
      if (!cs) continue;
      if (r.ok) resolved.set(c.name, r);
      else {
        pullFailed = true;
        cs.state = { waiting: { reason: r.reason, message: r.message } };
      }
    }
    if (pullFailed) {
      this.writeStatus();
      // kubelet reports the pull error, then backs off from pulling again.
      this.pullTimer = setTimeout(() => {
        for (const cs of this.containers.values()) {
          const w = cs.state.waiting as { reason?: string; message?: string } | undefined;
          if (w?.reason === 'ErrImagePull') cs.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${cs.image}"` } };
        }
        this.writeStatus();
      }, 1000);
      return;
    }

    const n = this.k.nextPodIndex();
    const netns = `${o.prefix}-p${n}`;
    const ip = this.k.ips.allocate();
    this.ip = ip;
    this.netns = netns;
    o.record.addNetns(netns);
    await setupPod({
      nodeNetns: o.nodeNetns, bridge: o.bridge, podNetns: netns, hostVeth: `${o.prefix}v${n}`,
      ip, prefixLen: Number(o.podCidr.split('/')[1]), gateway: o.gateway,
    });
    for (const s of this.spec.securityContext?.sysctls ?? []) {
      if (!SAFE_SYSCTLS.has(s.name)) throw new Error(`forbidden sysctl: "${s.name}" not allowlisted`);
      await sysctl(netns, s.name, s.value);
    }
    if (this.spec.dnsPolicy !== 'Default') {
      o.record.addEtcNetns(writeEtcNetnsFile(netns, 'resolv.conf', podResolvConf(this.namespace, o.clusterDomain, o.dnsIp)));
    }
    if (this.terminating) return;

    // Environment and commands need the pod's IP (status.podIP, $(VAR) expansion).
    const containers: ContainerSpec[] = [];
    const services = [
      ...o.store.list('services', this.namespace),
      ...(this.namespace === 'default' ? [] : o.store.list('services', 'default').filter((s) => s.metadata.name === 'kubernetes')),
    ];
    let configError = false;
    for (const c of this.spec.containers) {
      const r = resolved.get(c.name);
      const cs = this.containers.get(c.name);
      if (!r || !cs) continue;
      try {
        const env = containerEnv(c, {
          pod: this.pod, podIP: ip, hostIP: o.gateway, services,
          configMap: (nm) => o.store.get('configmaps', this.namespace, nm),
          secret: (nm) => o.store.get('secrets', this.namespace, nm),
        }, this.spec.enableServiceLinks !== false);
        const sc = { ...this.spec.securityContext, ...c.securityContext };
        const base: Record<string, string> = {
          PATH: `${join(o.image.node, '..')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
          HOSTNAME: this.name,
          HOME: sc.runAsUser ? '/' : '/root',
        };
        if (r.kind === 'echo') Object.assign(base, { POD_NAME: this.name, POD_NAMESPACE: this.namespace, POD_IP: ip });
        const fullEnv = { ...base, ...r.env, ...env };
        containers.push({
          name: c.name,
          command: r.command.map((a) => expand(a, fullEnv)),
          env: fullEnv,
          cwd: c.workingDir,
          uid: sc.runAsUser,
          gid: sc.runAsGroup ?? (sc.runAsUser !== undefined ? sc.runAsUser : undefined),
        });
      } catch (e) {
        if (!(e instanceof EnvError)) throw e;
        configError = true;
        cs.state = { waiting: { reason: 'CreateContainerConfigError', message: e.message } };
      }
    }
    if (configError) {
      this.writeStatus();
      return;
    }

    mkdirSync(this.dir, { recursive: true });
    const specFile = join(this.dir, 'spec.json');
    const sock = join(this.dir, 'agent.sock');
    writeFileSync(specFile, JSON.stringify({ podIP: ip, logDir: join(this.dir, 'logs'), containers }));
    await this.startAgent(netns, sock, specFile);
    if (this.terminating) return;
    const agent = new AgentClient(sock);
    this.agent = agent;
    this.unsubscribe = await agent.events((ev) => this.onEvent(ev), () => undefined);
    for (const c of containers) await agent.start(c.name);
  }

  private startAgent(netns: string, sock: string, specFile: string): Promise<void> {
    const log = createWriteStream(join(this.dir, 'agent.log'));
    // Its own UTS namespace too, so `hostname` in the pod says the pod's name, as in a real pod.
    const hostname = ((this.spec as { hostname?: string }).hostname ?? this.name).slice(0, 63);
    const setHostname = 'echo "$0" > /proc/sys/kernel/hostname && exec "$@"';
    const argv = ['netns', 'exec', netns, 'unshare', '--uts', '--', 'sh', '-c', setHostname, hostname, this.k.opts.image.node, AGENT, '--sock', sock, '--spec', specFile];
    const child = spawn('ip', argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Every pod starts an agent: V8's code cache halves its start-up after the first.
      env: { ...process.env, NODE_COMPILE_CACHE: join(this.k.opts.podsDir, '..', 'compile-cache') },
    });
    this.agentProc = child;
    child.stderr.pipe(log);
    return new Promise((resolve, reject) => {
      let out = '';
      const onData = (b: Buffer): void => {
        out += b.toString();
        if (out.includes('ready\n')) {
          child.stdout.off('data', onData);
          child.stdout.resume();
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`pod agent exited with ${code} before it was ready; see ${join(this.dir, 'agent.log')}`)));
    });
  }

  private onEvent(ev: AgentEvent): void {
    const cs = this.containers.get(ev.container);
    if (!cs) return;
    const c = this.spec.containers.find((x) => x.name === ev.container);
    if (ev.type === 'started') {
      cs.state = { running: { startedAt: ev.startedAt.replace(/\.\d+Z$/, 'Z') } };
      cs.started = true;
      cs.live = true;
      cs.restartCount = ev.restartCount;
      cs.pid = ev.pid;
      if (c?.readinessProbe) this.startProbe(cs, c);
      else cs.ready = true;
      this.writeStatus();
      return;
    }
    this.stopProbe(cs);
    cs.ready = false;
    cs.started = false;
    cs.pid = undefined;
    const terminated: Obj = {
      exitCode: ev.exitCode, reason: ev.reason, startedAt: ev.startedAt?.replace(/\.\d+Z$/, 'Z'),
      finishedAt: ev.finishedAt.replace(/\.\d+Z$/, 'Z'), containerID: `kt://${this.uid}/${ev.container}`,
    };
    if (ev.signal) terminated.signal = ev.signal === 'SIGKILL' ? 9 : 15;
    if (ev.message) terminated.message = ev.message;
    const policy = this.spec.restartPolicy ?? 'Always';
    const restart = !this.terminating && (policy === 'Always' || (policy === 'OnFailure' && ev.exitCode !== 0));
    if (!restart) {
      cs.state = { terminated };
      cs.live = false;
      this.writeStatus();
      return;
    }
    // Back-off as kubelet does (10 s doubling to 5 min there; shorter here so tests stay fast).
    const delay = ev.restartCount === 0 ? 0 : Math.min(2 ** (ev.restartCount - 1), 10) * 1000;
    cs.lastState = { terminated };
    cs.state = delay > 0
      ? { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${delay / 1000}s restarting failed container=${cs.name} pod=${this.name}_${this.namespace}(${this.uid})` } }
      : { terminated };
    cs.restartCount = ev.restartCount + 1;
    this.writeStatus();
    cs.restartTimer = setTimeout(() => {
      cs.restartTimer = undefined;
      if (this.terminating || !this.agent) return;
      this.agent.start(cs.name).catch((e: unknown) => debug('pod %s: restart %s: %s', this.name, cs.name, (e as Error).message));
    }, delay);
  }

  private startProbe(cs: ContainerState, c: PodContainer): void {
    const p = c.readinessProbe;
    if (!p) return;
    const port = (v: number | string): number => {
      if (typeof v === 'number') return v;
      const named = c.ports?.find((x) => x.name === v);
      return named ? named.containerPort : Number(v);
    };
    const spec: ProbeSpec = {
      ...p,
      tcpSocket: p.tcpSocket ? { ...p.tcpSocket, port: port(p.tcpSocket.port) } : undefined,
      httpGet: p.httpGet ? { ...p.httpGet, port: port(p.httpGet.port) } : undefined,
    };
    const probe = { successes: 0, failures: 0, spec, timer: undefined as NodeJS.Timeout | undefined };
    cs.probe = probe;
    const tick = async (): Promise<void> => {
      if (cs.probe !== probe || !this.agent) return;
      let ok = false;
      try {
        const r = await this.agent.call({ op: 'probe', container: cs.name, probe: spec });
        ok = r.ok;
      } catch {
        ok = false;
      }
      if (cs.probe !== probe) return;
      if (ok) {
        probe.failures = 0;
        probe.successes++;
        if (!cs.ready && probe.successes >= (spec.successThreshold ?? 1)) {
          cs.ready = true;
          this.writeStatus();
        }
      } else {
        probe.successes = 0;
        probe.failures++;
        if (cs.ready && probe.failures >= (spec.failureThreshold ?? 3)) {
          cs.ready = false;
          this.writeStatus();
        }
      }
      probe.timer = setTimeout(() => void tick(), (spec.periodSeconds ?? 10) * 1000);
    };
    // Probes are the one place the kubelet runs on a clock (initialDelaySeconds, periodSeconds).
    probe.timer = setTimeout(() => void tick(), (spec.initialDelaySeconds ?? 0) * 1000);
  }

  private stopProbe(cs: ContainerState): void {
    if (cs.probe?.timer) clearTimeout(cs.probe.timer);
    cs.probe = undefined;
  }

  private condition(type: string, ok: boolean): Obj {
    const status = ok ? 'True' : 'False';
    const prev = this.conditionTimes.get(type);
    const time = prev && prev.status === status ? prev.time : now();
    this.conditionTimes.set(type, { status, time });
    const c: Obj = { type, status, lastProbeTime: null, lastTransitionTime: time };
    if (!ok && (type === 'Ready' || type === 'ContainersReady')) {
      const notReady = [...this.containers.values()].filter((x) => !x.ready).map((x) => x.name);
      c.reason = 'ContainersNotReady';
      c.message = `containers with unready status: [${notReady.join(' ')}]`;
    }
    return c;
  }

  private phase(): string {
    const all = [...this.containers.values()];
    if (all.some((c) => c.live)) return 'Running';
    const done = all.length > 0 && all.every((c) => 'terminated' in c.state);
    if (!done) return 'Pending';
    return all.every((c) => (c.state.terminated as { exitCode: number }).exitCode === 0) ? 'Succeeded' : 'Failed';
  }

  /** Write the pod's status from what the worker knows now. */
  writeStatus(): void {
    if (this.torndown) return;
    const all = [...this.containers.values()];
    const ready = all.length > 0 && all.every((c) => c.ready);
    const status: Obj = {
      phase: this.phase(),
      conditions: [
        this.condition('PodReadyToStartContainers', !!this.ip),
        this.condition('Initialized', true),
        this.condition('Ready', ready),
        this.condition('ContainersReady', ready),
        this.condition('PodScheduled', true),
      ],
      hostIP: this.k.opts.gateway,
      hostIPs: [{ ip: this.k.opts.gateway }],
      ...(this.ip ? { podIP: this.ip, podIPs: [{ ip: this.ip }] } : {}),
      startTime: this.startTime,
      qosClass: 'BestEffort',
      containerStatuses: all.map((c) => ({
        name: c.name,
        state: c.state,
        lastState: c.lastState,
        ready: c.ready,
        restartCount: c.restartCount,
        image: c.image,
        imageID: `kt-test://${c.image}`,
        ...(c.started || 'terminated' in c.state ? { containerID: `kt://${this.uid}/${c.name}` } : {}),
        started: c.started,
      })),
    };
    try {
      this.k.opts.store.mutate('pods', this.namespace, this.name, (p) => {
        if (p.metadata.uid !== this.uid) return undefined;
        // The API server sets the QoS class at creation and refuses a change to it.
        const qos = (p.status as { qosClass?: string } | undefined)?.qosClass;
        p.status = qos ? { ...status, qosClass: qos } : status;
        p.metadata.resourceVersion = undefined;
        return p;
      });
    } catch (e) {
      debug('pod %s: status write failed: %s', this.name, (e as Error).message);
    }
  }

  update(pod: KubeObject): void {
    this.pod = pod;
    if (pod.metadata.deletionTimestamp && !this.terminating) void this.terminate(pod.metadata.deletionGracePeriodSeconds);
  }

  /**
   * Graceful deletion: stop the containers within the grace period, clean
   * up, remove the pod. As the kubelet does, readiness probes keep running
   * until the containers stop, so the pod's Ready condition says whether it
   * still serves (the EndpointSlice controller then marks its endpoint
   * `ready: false, serving: <Ready>, terminating: true`; a router that drains
   * turns unready itself, proxy-image/src/router/drain.ts).
   */
  async terminate(graceSeconds: number | undefined): Promise<void> {
    this.terminating = true;
    clearTimeout(this.pullTimer);
    for (const cs of this.containers.values()) clearTimeout(cs.restartTimer);
    this.writeStatus();
    await this.setupDone;
    const grace = graceSeconds ?? this.spec.terminationGracePeriodSeconds ?? 30;
    try {
      await this.agent?.stop(grace);
    } catch (e) {
      debug('pod %s: stop: %s', this.name, (e as Error).message);
    }
    await this.teardown();
    try {
      const cur = this.k.opts.store.get('pods', this.namespace, this.name);
      if (cur && cur.metadata.uid === this.uid) this.k.opts.store.delete('pods', this.namespace, this.name);
    } catch {
      // Deleted meanwhile (grace 0 from a client).
    }
  }

  /** Remove the pod's processes, namespace, files and address. Idempotent. */
  async teardown(): Promise<void> {
    if (this.torndown) return;
    this.torndown = true;
    this.terminating = true;
    clearTimeout(this.pullTimer);
    for (const cs of this.containers.values()) {
      this.stopProbe(cs);
      clearTimeout(cs.restartTimer);
    }
    this.k.workers.delete(this.uid);
    await this.setupDone;
    this.unsubscribe?.();
    const o = this.k.opts;
    if (this.netns) {
      await killAndWait([...(await netnsPids(this.netns)), ...(this.agentProc?.pid ? [this.agentProc.pid] : [])]);
      await deleteNetns(this.netns);
      removeEtcNetns(this.netns);
      o.record.removeEtcNetns(join('/etc/netns', this.netns));
      o.record.removeNetns(this.netns);
    }
    if (this.ip) this.k.ips.release(this.ip);
    rmSync(this.dir, { recursive: true, force: true });
  }

  requireAgent(container?: string): AgentClient {
    if (container && !this.containers.has(container)) {
      throw new KubeletError(400, `container ${container} is not valid for pod ${this.name}`);
    }
    if (!this.agent || this.torndown) {
      const cs = container ? this.containers.get(container) : this.containers.values().next().value;
      const w = cs?.state.waiting as { reason?: string } | undefined;
      const why = w?.reason === 'ImagePullBackOff' || w?.reason === 'ErrImagePull' ? 'trying and failing to pull image' : 'ContainerCreating';
      throw new KubeletError(400, `container "${cs?.name ?? ''}" in pod "${this.name}" is waiting to start: ${why}`);
    }
    return this.agent;
  }

  /** The main process of a running container and how often it was restarted. */
  containerProcess(container: string): { pid: number; restartCount: number } {
    const cs = this.containers.get(container);
    if (!cs?.pid) throw new KubeletError(400, `container ${container} of pod ${this.name} is not running`);
    return { pid: cs.pid, restartCount: cs.restartCount };
  }

  defaultContainer(): string {
    const annotated = this.pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
    return annotated ?? this.spec.containers[0]?.name ?? '';
  }
}

export class Kubelet implements KubeletHooks {
  readonly opts: KubeletOptions;
  readonly workers = new Map<string, PodWorker>();
  readonly ips: IpAllocator;
  private podIndex = 0;
  private unwatch?: () => void;

  constructor(opts: KubeletOptions) {
    this.opts = opts;
    this.ips = new IpAllocator(opts.podCidr, [opts.gateway]);
  }

  nextPodIndex(): number {
    return ++this.podIndex;
  }

  start(): void {
    this.unwatch = this.opts.store.watch((ev) => this.onEvent(ev));
    for (const pod of this.opts.store.list('pods')) this.sync(pod);
  }

  private onEvent(ev: WatchEvent): void {
    if (ev.resource !== 'pods') return;
    if (ev.type === 'DELETED') {
      const w = this.workers.get(ev.object.metadata.uid ?? '');
      if (w) void w.teardown();
      return;
    }
    this.sync(ev.object);
  }

  private sync(pod: KubeObject): void {
    const spec = pod.spec as PodSpec | undefined;
    if (!spec) return;
    // Unbound pods wait for the scheduler (upstream kube-scheduler binds them).
    if (spec.nodeName !== this.opts.nodeName) return;
    const uid = pod.metadata.uid ?? '';
    let w = this.workers.get(uid);
    if (!w) {
      const phase = (pod.status as { phase?: string } | undefined)?.phase;
      // A finished pod from before this kubelet started has nothing to run.
      if (phase === 'Succeeded' || phase === 'Failed') return;
      if (pod.metadata.deletionTimestamp) {
        this.opts.store.delete('pods', pod.metadata.namespace, pod.metadata.name);
        return;
      }
      w = new PodWorker(this, pod);
      this.workers.set(uid, w);
      w.start();
    }
    w.update(pod);
  }

  private worker(namespace: string, pod: string): PodWorker {
    for (const w of this.workers.values()) if (w.namespace === namespace && w.name === pod) return w;
    throw new KubeletError(404, `pod ${podKey(namespace, pod)} is not running on this node`);
  }

  async portForward(namespace: string, pod: string, port: number): Promise<Duplex> {
    const w = this.worker(namespace, pod);
    try {
      return await w.requireAgent().portForward(port);
    } catch (e) {
      if (e instanceof KubeletError) throw e;
      throw new KubeletError(500, `error forwarding port ${port} to pod ${w.uid}: ${(e as Error).message}`);
    }
  }

  /** The main process of a running container (default: the pod's default container), for tests that kill it. */
  containerProcess(namespace: string, pod: string, container?: string): { pid: number; restartCount: number } {
    const w = this.worker(namespace, pod);
    return w.containerProcess(container ?? w.defaultContainer());
  }

  async logs(namespace: string, pod: string, opts: LogOptions): Promise<Readable> {
    const w = this.worker(namespace, pod);
    const container = opts.container ?? w.defaultContainer();
    try {
      return await w.requireAgent(container).logs({
        container, follow: opts.follow, previous: opts.previous, tailLines: opts.tailLines, sinceSeconds: opts.sinceSeconds, timestamps: opts.timestamps,
      });
    } catch (e) {
      if (e instanceof KubeletError) throw e;
      throw new KubeletError(400, (e as Error).message);
    }
  }

  async exec(namespace: string, pod: string, opts: ExecOptions): Promise<ExecProcess> {
    const w = this.worker(namespace, pod);
    const container = opts.container ?? w.defaultContainer();
    try {
      return await w.requireAgent(container).exec({ container, command: opts.command, stdin: opts.stdin, tty: opts.tty });
    } catch (e) {
      if (e instanceof KubeletError) throw e;
      throw new KubeletError(500, (e as Error).message);
    }
  }

  /** Stop watching and remove every pod's processes and namespace (the store keeps the objects). */
  async close(): Promise<void> {
    this.unwatch?.();
    await Promise.all([...this.workers.values()].map((w) => w.teardown()));
  }
}
