// The regex engine of mesh rules: RE2 semantics (the `re2js` port), which
// matches in time linear in the input whatever the pattern. Header values
// come from any pod in the cluster, so a backtracking engine (JavaScript's
// RegExp) would let one request with `(a*)*b` and 30 × `a` hold the router's
// only thread for minutes. RE2 has no backreferences and no
// lookaround (it cannot run them in linear time), so those are refused when
// the route is registered, and by the plugin when it parses --header.
import { RE2JS } from 're2js';

/** Longest regex source accepted (RE2's compiled program grows with it; keep it small). */
export const MAX_REGEX_LENGTH = 256;

export interface LinearRegex {
  /** Whether the whole value matches (anchored: `alice` must not match `malice`). */
  test(value: string): boolean;
}

/** Compiles a rule's regex; a string says why it cannot be run (it becomes the refusal). */
export function compileLinearRegex(source: string): LinearRegex | string {
  if (source.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?:${source})$`);
  } catch (err) {
    const msg = (err as Error).message.replace(/^error parsing regexp: /, '');
    return `not an RE2 regular expression (${msg}; backreferences and lookaround are not supported)`;
  }
  return { test: (v) => re.testExact(v) };
}
