// The agent protocol on the pod's unix socket: every connection starts with
// one JSON line (the request), answered by one JSON line; port-forward then
// carries raw bytes, exec carries frames (type byte, uint32 length, payload),
// logs and events carry their stream until the end.
import type { Socket } from 'node:net';

export const FRAME = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  exit: 3,
  stdinEnd: 4,
  resize: 5,
} as const;

export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly onFrame: (type: number, payload: Buffer) => void;

  constructor(onFrame: (type: number, payload: Buffer) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      const type = this.buf.readUInt8(0);
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      this.onFrame(type, payload);
    }
  }
}

/**
 * Read the first line of a socket; the bytes after it are pushed back, and
 * the socket is left neither flowing nor paused, so whoever takes it next can
 * pipe it or add a 'data' listener as on a fresh socket.
 */
export function readLine(sock: Socket, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = (): void => {
      sock.off('readable', onReadable);
      sock.off('error', onErr);
      sock.off('close', onClose);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = sock.read() as Buffer | null) !== null) {
        buf = Buffer.concat([buf, chunk]);
        const nl = buf.indexOf(10);
        if (nl >= 0) {
          cleanup();
          const rest = buf.subarray(nl + 1);
          if (rest.length > 0) sock.unshift(rest);
          resolve(buf.subarray(0, nl).toString());
          return;
        }
        if (buf.length > limit) {
          cleanup();
          reject(new Error('request line too long'));
          return;
        }
      }
    };
    const onErr = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('connection closed before a line was read'));
    };
    sock.on('readable', onReadable);
    sock.on('error', onErr);
    sock.on('close', onClose);
  });
}

export function writeJsonLine(sock: Socket, v: unknown): void {
  sock.write(JSON.stringify(v) + '\n');
}

/** A container as the agent runs it (the kubelet resolves env, image and user). */
export interface ContainerSpec {
  name: string;
  command: string[];
  env: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export interface AgentSpec {
  podIP: string;
  logDir: string;
  containers: ContainerSpec[];
}

export interface Probe {
  tcpSocket?: { port: number; host?: string };
  httpGet?: { port: number; host?: string; path?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  exec?: { command: string[] };
  timeoutSeconds?: number;
}

export type AgentEvent =
  | { type: 'started'; container: string; pid: number; startedAt: string; restartCount: number }
  | { type: 'exited'; container: string; exitCode: number; signal?: string; reason: string; message?: string; startedAt?: string; finishedAt: string; restartCount: number };

export type AgentRequest =
  | { op: 'events' }
  | { op: 'start'; container: string }
  | { op: 'stop'; graceSeconds: number }
  | { op: 'probe'; container: string; probe: Probe }
  | { op: 'portforward'; port: number }
  | { op: 'exec'; container?: string; command: string[]; stdin: boolean; tty: boolean }
  | { op: 'logs'; container: string; follow?: boolean; previous?: boolean; tailLines?: number; sinceSeconds?: number; timestamps?: boolean };

export interface AgentReply {
  ok: boolean;
  error?: string;
  /** For probes: why it failed. */
  message?: string;
}
