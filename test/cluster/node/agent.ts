// The per-pod agent: the pause-container analogue. It is started inside the
// pod's network namespace (`ip netns exec POD node agent.ts --sock S --spec F`),
// holds the namespace for the pod's lifetime, runs the pod's containers, keeps
// their logs, and serves the kubelet on a unix socket: start/stop, events,
// probes, port-forward, exec and logs (see wire.ts for the protocol).
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { splice } from '../net/splice.ts';
import { FRAME, FrameReader, frame, readLine, writeJsonLine } from './wire.ts';
import type { AgentEvent, AgentRequest, AgentSpec, ContainerSpec, Probe } from './wire.ts';

interface Container {
  spec: ContainerSpec;
  child?: ChildProcess;
  /** Number of starts so far minus one (the kubelet's restartCount). */
  restartCount: number;
  startedAt?: string;
  last?: AgentEvent;
  logFile?: string;
  /** New log lines (formatted records), for followers. */
  lines: EventEmitter;
  exited?: Promise<void>;
}

function now(): string {
  return new Date().toISOString().replace(/(\.\d{3})Z$/, '$1000000Z');
}

export class Agent {
  private readonly spec: AgentSpec;
  private readonly containers = new Map<string, Container>();
  private readonly events = new EventEmitter();
  private stopping = false;

  constructor(spec: AgentSpec) {
    this.spec = spec;
    for (const c of spec.containers) {
      this.containers.set(c.name, { spec: c, restartCount: -1, lines: new EventEmitter() });
      mkdirSync(join(spec.logDir, c.name), { recursive: true });
    }
  }

  private container(name: string | undefined): Container {
    const c = name ? this.containers.get(name) : this.containers.values().next().value;
    if (!c) throw new Error(`container ${name ?? ''} is not valid for this pod`);
    return c;
  }

  private emitEvent(c: Container, ev: AgentEvent): void {
    c.last = ev;
    this.events.emit('event', ev);
  }

  start(name: string): void {
    const c = this.container(name);
    if (c.child && c.child.exitCode === null && c.child.signalCode === null) throw new Error(`container ${name} is running`);
    if (this.stopping) throw new Error('pod is stopping');
    c.restartCount++;
    c.logFile = join(this.spec.logDir, c.spec.name, `${c.restartCount}.log`);
    appendFileSync(c.logFile, '');
    const { command, env, cwd, uid, gid } = c.spec;
    const child = spawn(command[0], command.slice(1), {
      env,
      cwd: cwd ?? '/',
      uid,
      gid,
      // Its own process group, so stop reaches whatever the container forks.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    c.child = child;
    c.startedAt = now();
    const logFile = c.logFile;
    const record = (stream: 'stdout' | 'stderr'): ((chunk: Buffer) => void) => {
      let partial = '';
      const flush = (text: string): void => {
        const rec = `${now()} ${stream} ${text}\n`;
        appendFileSync(logFile, rec);
        c.lines.emit('line', rec);
      };
      const on = (chunk: Buffer): void => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) flush(p);
      };
      child[stream]?.on('end', () => {
        if (partial) flush(partial);
        partial = '';
      });
      return on;
    };
    child.stdout?.on('data', record('stdout'));
    child.stderr?.on('data', record('stderr'));
    c.exited = new Promise((resolve) => {
      let spawnError: Error | undefined;
      child.on('error', (e) => {
        spawnError = e;
      });
      child.on('close', (code, signal) => {
        const startedAt = c.startedAt;
        const reason = spawnError ? 'StartError' : code === 0 ? 'Completed' : 'Error';
        const exitCode = spawnError ? 128 : (code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
        c.lines.emit('end');
        this.emitEvent(c, {
          type: 'exited', container: c.spec.name, exitCode, signal: signal ?? undefined, reason,
          message: spawnError?.message, startedAt, finishedAt: now(), restartCount: c.restartCount,
        });
        resolve();
      });
    });
    child.on('spawn', () => {
      this.emitEvent(c, { type: 'started', container: c.spec.name, pid: child.pid ?? 0, startedAt: c.startedAt ?? now(), restartCount: c.restartCount });
    });
  }

  /** SIGTERM every container's process group, SIGKILL after the grace period. */
  async stop(graceSeconds: number): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const c of this.containers.values()) {
      const child = c.child;
      if (!child?.pid || child.exitCode !== null || child.signalCode !== null) continue;
      const pid = child.pid;
      const kill = (sig: NodeJS.Signals): void => {
        try {
          process.kill(-pid, sig);
        } catch {
          // Already gone.
        }
      };
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), Math.max(0, graceSeconds) * 1000);
      waits.push((c.exited ?? Promise.resolve()).finally(() => clearTimeout(timer)));
    }
    await Promise.all(waits);
  }

  killAll(): void {
    for (const c of this.containers.values()) {
      if (c.child?.pid && c.child.exitCode === null && c.child.signalCode === null) {
        try {
          process.kill(-c.child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  }

  async probe(p: Probe): Promise<{ ok: boolean; message?: string }> {
    const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
    if (p.tcpSocket) {
      const host = p.tcpSocket.host ?? this.spec.podIP;
      return await new Promise((resolve) => {
        const s = createConnection({ host, port: p.tcpSocket?.port ?? 0, timeout: timeoutMs });
        s.on('connect', () => {
          s.destroy();
          resolve({ ok: true });
        });
        s.on('timeout', () => {
          s.destroy();
          resolve({ ok: false, message: `dial tcp ${host}:${p.tcpSocket?.port}: i/o timeout` });
        });
        s.on('error', (e) => resolve({ ok: false, message: `dial tcp ${host}:${p.tcpSocket?.port}: ${e.message}` }));
      });
    }
    if (p.httpGet) {
      const g = p.httpGet;
      const host = g.host ?? this.spec.podIP;
      return await new Promise((resolve) => {
        const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.32' };
        for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
        const req = httpRequest({ host, port: g.port, path: g.path ?? '/', headers, timeout: timeoutMs }, (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
        });
        req.on('timeout', () => req.destroy(new Error('context deadline exceeded')));
        req.on('error', (e) => resolve({ ok: false, message: `Get "http://${host}:${g.port}${g.path ?? '/'}": ${e.message}` }));
        req.end();
      });
    }
    if (p.exec) {
      const c = this.container(undefined);
      const cmd = p.exec.command;
      return await new Promise((resolve) => {
        const child = spawn(cmd[0], cmd.slice(1), { env: c.spec.env, uid: c.spec.uid, gid: c.spec.gid, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (out += b.toString()));
        child.on('error', (e) => resolve({ ok: false, message: e.message }));
        child.on('close', (code) => resolve(code === 0 ? { ok: true } : { ok: false, message: out.trim() || `command exited with ${code}` }));
      });
    }
    return { ok: false, message: 'probe has no handler' };
  }

  logs(sock: Socket, req: Extract<AgentRequest, { op: 'logs' }>): void {
    const c = this.container(req.container);
    const n = req.previous ? c.restartCount - 1 : c.restartCount;
    if (n < 0) throw new Error(req.previous ? `previous terminated container "${c.spec.name}" not found` : `container "${c.spec.name}" has not started`);
    const file = join(this.spec.logDir, c.spec.name, `${n}.log`);
    const since = req.sinceSeconds ? Date.now() - req.sinceSeconds * 1000 : 0;
    const format = (rec: string): string => {
      // rec: "<RFC3339Nano> <stream> <text>\n"
      const sp1 = rec.indexOf(' ');
      const sp2 = rec.indexOf(' ', sp1 + 1);
      const ts = rec.slice(0, sp1);
      if (since && Date.parse(ts) < since) return '';
      const text = rec.slice(sp2 + 1);
      return req.timestamps ? `${ts} ${text}` : text;
    };
    let records = readFileSync(file, 'utf8').split(/(?<=\n)/).filter(Boolean);
    if (req.tailLines !== undefined) records = req.tailLines === 0 ? [] : records.slice(-req.tailLines);
    writeJsonLine(sock, { ok: true });
    sock.write(records.map(format).join(''));
    const running = !req.previous && c.child && c.child.exitCode === null && c.child.signalCode === null;
    if (!req.follow || !running) {
      sock.end();
      return;
    }
    const onLine = (rec: string): void => {
      sock.write(format(rec));
    };
    const onEnd = (): void => {
      c.lines.off('line', onLine);
      c.lines.off('end', onEnd);
      sock.end();
    };
    c.lines.on('line', onLine);
    c.lines.on('end', onEnd);
    sock.on('close', onEnd);
  }

  exec(sock: Socket, req: Extract<AgentRequest, { op: 'exec' }>): void {
    const c = this.container(req.container);
    const child = spawn(req.command[0], req.command.slice(1), {
      env: c.spec.env, cwd: c.spec.cwd ?? '/', uid: c.spec.uid, gid: c.spec.gid, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let started = false;
    child.on('spawn', () => {
      started = true;
      writeJsonLine(sock, { ok: true });
      sock.resume();
    });
    child.stdout.on('data', (b: Buffer) => sock.write(frame(FRAME.stdout, b)));
    child.stderr.on('data', (b: Buffer) => sock.write(frame(FRAME.stderr, b)));
    child.stdin.on('error', () => {
      // The command may exit without reading its input.
    });
    const reader = new FrameReader((type, payload) => {
      if (type === FRAME.stdin) child.stdin.write(payload);
      else if (type === FRAME.stdinEnd) child.stdin.end();
    });
    sock.on('data', (b: Buffer) => reader.push(b));
    sock.on('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    sock.on('error', () => undefined);
    child.on('error', (e) => {
      if (!started) {
        writeJsonLine(sock, { ok: false, error: `exec: "${req.command[0]}": ${e.message}` });
        sock.end();
      }
    });
    child.on('close', (code, signal) => {
      if (!started) return;
      sock.end(frame(FRAME.exit, JSON.stringify({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15) })));
    });
  }

  portForward(sock: Socket, port: number): void {
    // kubelet dials localhost inside the pod's network namespace, then copies
    // both ways until the pod's connection and the kubelet's are both done:
    // when the pod closes first, the kubelet gets every byte and then EOF.
    const tryDial = (hosts: string[]): void => {
      const host = hosts[0];
      const up = createConnection({ host, port, noDelay: true });
      const onDialError = (e: Error): void => {
        if (hosts.length > 1) return tryDial(hosts.slice(1));
        writeJsonLine(sock, { ok: false, error: `failed to connect to localhost:${port} inside namespace: ${e.message}` });
        sock.end();
      };
      up.once('error', onDialError);
      up.once('connect', () => {
        up.off('error', onDialError);
        writeJsonLine(sock, { ok: true });
        splice(sock, up);
      });
    };
    sock.on('error', () => undefined);
    tryDial(['127.0.0.1', '::1']);
  }

  async handle(sock: Socket): Promise<void> {
    sock.on('error', () => undefined);
    let req: AgentRequest;
    try {
      req = JSON.parse(await readLine(sock)) as AgentRequest;
    } catch {
      sock.destroy();
      return;
    }
    try {
      switch (req.op) {
        case 'events': {
          writeJsonLine(sock, { ok: true });
          for (const c of this.containers.values()) if (c.last) writeJsonLine(sock, c.last);
          const on = (ev: AgentEvent): void => writeJsonLine(sock, ev);
          this.events.on('event', on);
          sock.on('close', () => this.events.off('event', on));
          sock.resume();
          return;
        }
        case 'start':
          this.start(req.container);
          writeJsonLine(sock, { ok: true });
          sock.end();
          return;
        case 'stop':
          await this.stop(req.graceSeconds);
          writeJsonLine(sock, { ok: true });
          sock.end();
          return;
        case 'probe': {
          const r = await this.probe(req.probe);
          writeJsonLine(sock, r);
          sock.end();
          return;
        }
        case 'portforward':
          this.portForward(sock, req.port);
          return;
        case 'exec':
          this.exec(sock, req);
          return;
        case 'logs':
          this.logs(sock, req);
          return;
        default:
          throw new Error(`unknown op`);
      }
    } catch (e) {
      writeJsonLine(sock, { ok: false, error: (e as Error).message });
      sock.end();
    }
  }
}

function main(): void {
  const { values } = parseArgs({ options: { sock: { type: 'string' }, spec: { type: 'string' } } });
  if (!values.sock || !values.spec) {
    process.stderr.write('usage: agent.ts --sock SOCKET --spec SPEC.json\n');
    process.exit(2);
  }
  const spec = JSON.parse(readFileSync(values.spec, 'utf8')) as AgentSpec;
  const agent = new Agent(spec);
  rmSync(values.sock, { force: true });
  const server = createServer((s) => void agent.handle(s));
  server.listen(values.sock, () => process.stdout.write('ready\n'));
  const quit = (): void => {
    agent.killAll();
    process.exit(0);
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

if (import.meta.main) main();
