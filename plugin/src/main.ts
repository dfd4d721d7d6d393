// The entry point kubectl runs as `kubectl kt ...`: argv → run → exit code.
// The only place that reads process globals or exits.
import { run } from './app.ts';
import { ktError } from './errors.ts';
import { CacheWarmth, keepChunkCache } from './kube/chunk.ts';
import { errorLine } from './output.ts';
import { runtimeProblem } from './runtime.ts';

// First, before any command: a Node too old for the bundle would print
// `version` and then fail inside the Kubernetes client (see runtime.ts).
const tooOld = runtimeProblem({ version: process.versions.node, execPath: process.execPath });
if (tooOld) {
  process.stderr.write(errorLine(ktError('KT_ERR_NODE_TOO_OLD', tooOld)));
  process.exit(1);
}

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

// A command whose work is left waiting on nothing (a promise no timer or
// socket will ever settle) would let the event loop run dry and Node exit 0:
// a silent success. Never: say so, with the code for a bug, and exit 1.
let finished = false;
process.on('beforeExit', () => {
  if (finished) return;
  process.stderr.write('error KT_ERR_INTERNAL: the command stopped waiting on something that can never happen — run again with --debug, and report it with that output\n');
  process.exit(1);
});

// No top-level await: the bundle is CommonJS.
void run(process.argv.slice(2), {
  out: process.stdout,
  err: process.stderr,
  env: process.env,
  signal: controller.signal,
  clock: { now: () => Date.now() },
}).then((code) => {
  finished = true;
  // A command that talked to the cluster leaves the client's code cache warmer for the next (kube/chunk.ts).
  keepChunkCache(CacheWarmth.command);
  // Exit once stdout is flushed: a command that left a handle open must not hang the shell.
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
});
