// What a command gets besides its options: the seams. main.ts
// fills them from the process; tests fill them with buffers and fakes.
import type { Table } from './args.ts';
import type { KubeApi } from './kube/api.ts';
import type { KubeTarget } from './kube/config.ts';

export interface Writer {
  write(chunk: string): unknown;
}

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
}

/** What main.ts passes in: everything that comes from the process. */
export interface BaseDeps {
  readonly out: Writer;
  readonly err: Writer;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on the first SIGINT/SIGTERM: long-running commands clean up and return. */
  readonly signal: AbortSignal;
  readonly clock: Clock;
}

export interface Deps extends BaseDeps {
  /** The kubeconfig context the global flags select; read on first call, then cached. */
  readonly kube: () => Promise<KubeTarget>;
  /**
   * The Kubernetes API of that context (kube/api.ts), the one way commands
   * reach the cluster; loads the client on first call, then cached. A command
   * that never calls it never loads the client.
   */
  readonly api: () => Promise<KubeApi>;
  /** A line for --debug (or NODE_DEBUG=kt); never for normal output. */
  readonly debug: (message: string) => void;
  /**
   * The command table the parser used: help and completion read it here, so
   * no command imports cli.ts at run time (cli.ts loads the commands).
   */
  readonly table: Table;
}
