// The last line of defence against memory exhaustion: every per-connection
// cap (streams, head size, buffering) bounds one client, but many clients
// at their caps could still take the pod past its memory limit, where the
// kernel kills the router and the Service loses its backend. So the RSS is
// watched against the limit (the cgroup's, which node reads, or one given):
// above 80 % new connections are closed at accept, new HTTP/1 requests get
// 503 and new HTTP/2 streams REFUSED_STREAM; below 70 % service resumes.
// Requests already in flight go on.

export interface MemoryGuard {
  overloaded(): boolean;
  close(): void;
}

export interface MemoryGuardOptions {
  /** Bytes; absent = the cgroup limit (process.constrainedMemory()); none = no guard. */
  limitBytes?: number;
  log(msg: string): void;
  /** Tests inject the RSS; default process.memoryUsage.rss. */
  rss?: () => number;
  everyMs?: number;
}

/** process.constrainedMemory() answers 2^64 (or 0) when no limit applies. */
const NO_LIMIT = 2 ** 60;
export const HIGH = 0.8;
export const LOW = 0.7;

export function memoryGuard(opts: MemoryGuardOptions): MemoryGuard {
  const limit = opts.limitBytes ?? process.constrainedMemory();
  if (!limit || limit >= NO_LIMIT) return { overloaded: () => false, close: () => {} };
  const rss = opts.rss ?? process.memoryUsage.rss;
  let over = false;
  const check = () => {
    const now = rss();
    if (!over && now > HIGH * limit) {
      over = true;
      opts.log(`router: RSS ${mb(now)} MB is over ${HIGH * 100} % of the ${mb(limit)} MB memory limit: refusing new connections, requests and streams`);
    } else if (over && now < LOW * limit) {
      over = false;
      opts.log(`router: RSS ${mb(now)} MB, under ${LOW * 100} % of the limit again: serving`);
    }
  };
  check();
  const timer = setInterval(check, opts.everyMs ?? 250);
  timer.unref();
  return {
    overloaded: () => over,
    close: () => clearInterval(timer),
  };
}

const mb = (n: number) => (n / 2 ** 20).toFixed(0);
