// A log that a flood cannot turn into a flood of lines (a rapid
// reset storm wrote 144,655 lines in 10 s). Up to `burst` lines pass per
// interval; the rest are counted and summed up in one line when the
// interval ends. Used for per-request and per-stream events; start-up,
// route and shutdown lines do not go through it.

export interface RateLogOptions {
  log: (msg: string) => void;
  /** Lines passed per interval. */
  burst: number;
  intervalMs: number;
  /** Names the source in the summary line ("router", "ssh"). */
  what: string;
}

export interface RateLog {
  (msg: string): void;
  /** Lines held back so far (all intervals). */
  suppressed(): number;
  /** Writes the pending summary and stops the timer. */
  close(): void;
}

export function rateLimitedLog(opts: RateLogOptions): RateLog {
  let passed = 0;
  let held = 0;
  let total = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (held > 0) opts.log(`${opts.what}: ${held} more log line(s) like the above held back in ${opts.intervalMs / 1000} s`);
    held = 0;
    passed = 0;
    timer = undefined;
  };
  const fn = ((msg: string) => {
    // The window starts with its first line; the timer ends it (unref'd: it never keeps the process up).
    if (!timer) {
      timer = setTimeout(flush, opts.intervalMs);
      timer.unref();
    }
    if (passed < opts.burst) {
      passed++;
      opts.log(msg);
      return;
    }
    held++;
    total++;
  }) as RateLog;
  fn.suppressed = () => total;
  fn.close = () => {
    if (timer) clearTimeout(timer);
    flush();
  };
  return fn;
}
