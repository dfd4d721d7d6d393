// `--header NAME~=REGEX` against the router's own engine (RE2, linear time:
// contract/http/regex.ts) before anything touches the cluster, so
// what the router would refuse (backreferences, lookaround) is refused here
// with KT_ERR_BAD_VALUE. Loaded only when a rule has a regex: the engine
// costs tens of milliseconds to load, which every other command would pay.
import { ktError } from './errors.ts';
import type { HeaderMatch } from './values.ts';

export async function checkRegexHeaders(headers: readonly HeaderMatch[] | undefined, what = '--header'): Promise<void> {
  const regexes = (headers ?? []).filter((h) => h.kind === 'regex');
  if (regexes.length === 0) return;
  const { compileLinearRegex } = await import('../../contract/http/regex.ts');
  for (const h of regexes) {
    const re = compileLinearRegex(h.pattern);
    if (typeof re === 'string') throw ktError('KT_ERR_BAD_VALUE', { what, value: `${h.name}~=${h.pattern}`, reason: `the regex is ${re}` });
  }
}
