// Interfaces between the test cluster's node parts: the kubelet's hooks and
// the streaming protocols that serve them.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { IncomingMessage } from 'node:http';

export interface LogOptions {
  container?: string;
  follow?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  timestamps?: boolean;
  previous?: boolean;
}

export interface ExecOptions {
  container?: string;
  command: string[];
  stdin: boolean;
  tty: boolean;
}

/** A running exec: write to stdin, read stdout/stderr, learn the exit code. */
export interface ExecProcess {
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code (or rejects when the command cannot start). */
  exited: Promise<number>;
  resize?(cols: number, rows: number): void;
  kill(): void;
}

/** Thrown by the kubelet hooks; the API server turns it into a Status. */
export class KubeletError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * What the node offers the API server (the kubelet's streaming API).
 * Every call throws KubeletError(404|400|500, message) when the pod is
 * unknown, not running, or the target refuses.
 */
export interface KubeletHooks {
  /**
   * A TCP connection to `port` on the pod's own loopback (as kubelet's
   * port-forward does: inside the pod's network namespace, to localhost).
   */
  portForward(namespace: string, pod: string, port: number): Promise<Duplex>;
  /** The container's log, as bytes (follow keeps it open until the pod ends or the caller destroys it). */
  logs(namespace: string, pod: string, opts: LogOptions): Promise<Readable>;
  /** Run a command inside the pod's namespace (pods/exec). */
  exec?(namespace: string, pod: string, opts: ExecOptions): Promise<ExecProcess>;
}

/** The streaming endpoints (pods/portforward, pods/exec), as the API server calls them on an HTTP upgrade. */
export interface StreamHandlers {
  portForward(req: IncomingMessage, socket: Duplex, head: Buffer, target: { namespace: string; pod: string; ports: number[] }, kubelet: KubeletHooks): void;
  exec?(req: IncomingMessage, socket: Duplex, head: Buffer, target: { namespace: string; pod: string; opts: ExecOptions }, kubelet: KubeletHooks): void;
}
