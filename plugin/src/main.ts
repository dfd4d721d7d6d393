// The entry point kubectl runs as `kubectl kt ...`: argv → run → exit code.
// The only place that reads process globals or exits.
import { run } from './app.ts';

const controller = new AbortController();
let signals = 0;
function onSignal(sig: NodeJS.Signals): void {
  // The first signal asks the command to undo what it set up and return; a
  // second one means the user is done waiting (128 + SIGINT, as shells report).
  if (++signals === 1) controller.abort(new Error(`received ${sig}`));
  else process.exit(130);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// No top-level await: the bundle is CommonJS.
void run(process.argv.slice(2), {
  out: process.stdout,
  err: process.stderr,
  env: process.env,
  signal: controller.signal,
  clock: { now: () => Date.now() },
}).then((code) => {
  // Exit once stdout is flushed: a command that left a handle open must not hang the shell.
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
});
