// `kubectl kt mesh <deploy/NAME|svc/NAME> --expose LOCAL[:REMOTE] --header NAME=VALUE`:
// only requests whose headers match go to a local port; all others go to the
// original pods. Developers share one router per Service.
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { checkRegexHeaders } from '../header-regex.ts';
import { runTakeover, takeoverText, type TakeoverResult } from '../session/takeover-command.ts';

export async function run(opts: OptionsOf<'mesh'>, deps: Deps): Promise<TakeoverResult> {
  await checkRegexHeaders(opts.header);
  return await runTakeover({ kind: 'mesh', target: opts.target, expose: opts.expose, image: opts.image, headers: opts.header, baggage: opts.baggage }, deps);
}

export function text(data: unknown): string {
  return takeoverText(data as TakeoverResult);
}
