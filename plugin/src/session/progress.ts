// Progress lines for long-running commands, on stderr (stdout stays for the
// command's result, so `-o json` output is never mixed with progress):
//   ✓ creating proxy pod shop/kt-connect-x7k2 (0.12 s)
import type { Writer } from '../deps.ts';
import type { Progress } from './proxy-session.ts';

export function progressPrinter(err: Writer, now: () => number = () => Date.now()): Progress {
  return {
    step(text) {
      const started = now();
      return (detail) => {
        const secs = ((now() - started) / 1000).toFixed(2);
        err.write(`✓ ${text}${detail ? `: ${detail}` : ''} (${secs} s)\n`);
      };
    },
    note(text) {
      err.write(`• ${text}\n`);
    },
  };
}
