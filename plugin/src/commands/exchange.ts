// `kubectl kt exchange <deploy/NAME|svc/NAME> --expose LOCAL[:REMOTE]`: every
// request to the Service goes to a local port while the command runs; when
// it ends or dies, the original pods serve again (the router falls back to
// the origin Service at once, and the selector is restored on exit).
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { runTakeover, takeoverText, type TakeoverResult } from '../session/takeover-command.ts';

export async function run(opts: OptionsOf<'exchange'>, deps: Deps): Promise<TakeoverResult> {
  return await runTakeover({
    kind: 'exchange',
    target: opts.target,
    expose: opts.expose,
    image: opts.image,
    mode: opts.mode,
    ...(opts.envOut ? { envFile: opts.envOut } : {}),
  }, deps);
}

export function text(data: unknown): string {
  return takeoverText(data as TakeoverResult);
}
