// Runs the system tools the node is built from (ip, nft, sysctl) and turns a
// non-zero exit into an error that carries the tool's own message.
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Kill the command after this long (it then resolves with code 124, as timeout(1) does). */
  timeoutMs?: number;
}

/** Wait for a spawned child (stdio pipes) to end: its output and exit code; `input` goes to its stdin. */
export function collect(child: ChildProcess, opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: timedOut ? 124 : (code ?? (signal ? 128 : 1)),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    // The command may exit before reading its input; its exit code says what happened.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}

/** Run a command to completion; never throws for a non-zero exit. */
export function runResult(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return collect(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env }), opts);
}

/** Run a command; reject with its stderr when it exits non-zero. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await runResult(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** `ip …` (iproute2). */
export function ip(...args: string[]): Promise<string> {
  return run('ip', args);
}

/** Run `cmd args` inside network namespace `ns`. */
export function inNetns(ns: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runResult('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}
