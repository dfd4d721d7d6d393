// The kubelet's side of the agent protocol (wire.ts).
import { createConnection, type Socket } from 'node:net';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type { ExecProcess } from '../types.ts';
import { FRAME, FrameReader, frame, readLine, writeJsonLine } from './wire.ts';
import type { AgentEvent, AgentReply, AgentRequest } from './wire.ts';

export class AgentError extends Error {}

export class AgentClient {
  readonly sock: string;

  constructor(sock: string) {
    this.sock = sock;
  }

  /** Connect, send the request, read the reply line; the socket is paused after it. */
  async open(req: AgentRequest): Promise<{ reply: AgentReply; socket: Socket }> {
    const socket = createConnection(this.sock);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    writeJsonLine(socket, req);
    const reply = JSON.parse(await readLine(socket)) as AgentReply;
    return { reply, socket };
  }

  async call(req: AgentRequest): Promise<AgentReply> {
    const { reply, socket } = await this.open(req);
    socket.destroy();
    return reply;
  }

  async start(container: string): Promise<void> {
    const r = await this.call({ op: 'start', container });
    if (!r.ok) throw new AgentError(r.error);
  }

  async stop(graceSeconds: number): Promise<void> {
    const r = await this.call({ op: 'stop', graceSeconds });
    if (!r.ok) throw new AgentError(r.error);
  }

  /** Follow the containers' lifecycle events; resolves once subscribed. */
  async events(onEvent: (ev: AgentEvent) => void, onClose: () => void): Promise<() => void> {
    const { reply, socket } = await this.open({ op: 'events' });
    if (!reply.ok) throw new AgentError(reply.error);
    let buf = '';
    socket.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onEvent(JSON.parse(line) as AgentEvent);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', onClose);
    socket.resume();
    return () => {
      socket.off('close', onClose);
      socket.destroy();
    };
  }

  /** Open a request whose reply is followed by a stream; throws the agent's refusal. */
  private async stream(req: AgentRequest): Promise<Socket> {
    const { reply, socket } = await this.open(req);
    if (!reply.ok) {
      socket.destroy();
      throw new AgentError(reply.error);
    }
    return socket;
  }

  portForward(port: number): Promise<Duplex> {
    return this.stream({ op: 'portforward', port });
  }

  async logs(req: Omit<Extract<AgentRequest, { op: 'logs' }>, 'op'>): Promise<Readable> {
    const socket = await this.stream({ op: 'logs', ...req });
    socket.on('error', () => undefined);
    return socket;
  }

  async exec(req: Omit<Extract<AgentRequest, { op: 'exec' }>, 'op'>): Promise<ExecProcess> {
    const socket = await this.stream({ op: 'exec', ...req });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = new PassThrough();
    stdin.on('data', (b: Buffer) => socket.write(frame(FRAME.stdin, b)));
    stdin.on('end', () => socket.write(frame(FRAME.stdinEnd, '')));
    if (!req.stdin) socket.write(frame(FRAME.stdinEnd, ''));
    const exited = new Promise<number>((resolve, reject) => {
      let code: number | undefined;
      const reader = new FrameReader((type, payload) => {
        if (type === FRAME.stdout) stdout.write(payload);
        else if (type === FRAME.stderr) stderr.write(payload);
        else if (type === FRAME.exit) code = (JSON.parse(payload.toString()) as { code: number }).code;
      });
      socket.on('data', (b: Buffer) => reader.push(b));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        stdout.end();
        stderr.end();
        if (code === undefined) reject(new AgentError('exec connection lost'));
        else resolve(code);
      });
      socket.resume();
    });
    exited.catch(() => undefined);
    return {
      stdin: req.stdin ? stdin : null,
      stdout,
      stderr,
      exited,
      kill: () => socket.destroy(),
    };
  }
}
