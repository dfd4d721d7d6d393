// Wiring the local DNS server into the OS resolver, and undoing it exactly.
//   systemd-resolved present: per-link DNS and routing domains on our
//     interface (`resolvectl dns/domain`), so only cluster names come to us;
//     the link going away undoes it.
//   otherwise: /etc/resolv.conf is rewritten (nameserver = ours, the cluster
//     search list first) after a byte-exact backup, and restored on exit —
//     unless someone else changed it meanwhile, which we then leave alone.
// The state of every change is written to a file first, so that
// `kubectl kt clean --local` can undo it after a crash.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readlink, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const STATE_DIR = '/run/kubectl-kt';
export const RESOLV_CONF = '/etc/resolv.conf';

/** What a route-mode session changed on this machine. */
export interface LocalState {
  session: string;
  pid: number;
  /** The dummy interface holding cluster addresses. */
  iface?: string;
  /** Or: the label of the loopback aliases holding them (no dummy interface in the kernel). */
  loLabel?: string;
  resolver?:
    | { kind: 'resolv.conf'; path: string; original: string; originalLink?: string; written: string }
    | { kind: 'resolved'; iface: string };
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') out.search = rest;
    else if (key === 'options') out.options.push(...rest);
  }
  return out;
}

/** The resolv.conf route mode writes: our server first, the cluster's search list before the old one. */
export function renderResolvConf(old: ResolvConf, ours: { nameserver: string; search: string[] }): string {
  const search = [...ours.search, ...old.search.filter((s) => !ours.search.includes(s))];
  // ndots stays as it was: cluster short names have no dots and take the
  // search list anyway; raising it would send every external name through
  // the cluster suffixes first.
  const options = old.options;
  return [
    '# written by kubectl-kt connect --mode route; the original is restored on exit',
    `# (or by \`kubectl kt clean --local\` after a crash)`,
    `nameserver ${ours.nameserver}`,
    `search ${search.join(' ')}`,
    ...(options.length > 0 ? [`options ${options.join(' ')}`] : []),
    '',
  ].join('\n');
}

export async function saveState(state: LocalState): Promise<void> {
  await mkdir(STATE_DIR, { recursive: true, mode: 0o700 });
  await writeFile(join(STATE_DIR, `route-${state.session}.json`), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export async function removeState(session: string): Promise<void> {
  await rm(join(STATE_DIR, `route-${session}.json`), { force: true });
}

export async function listStates(): Promise<LocalState[]> {
  if (!existsSync(STATE_DIR)) return [];
  const out: LocalState[] = [];
  for (const f of await readdir(STATE_DIR)) {
    if (!/^route-.*\.json$/.test(f)) continue;
    try {
      out.push(JSON.parse(await readFile(join(STATE_DIR, f), 'utf8')) as LocalState);
    } catch {
      // A half-written file from a crash mid-write: nothing was changed yet.
      await rm(join(STATE_DIR, f), { force: true });
    }
  }
  return out;
}

async function hasResolved(): Promise<boolean> {
  try {
    const link = await readlink(RESOLV_CONF);
    if (!/systemd\/resolve/.test(link)) return false;
    await run('resolvectl', ['status'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Points the OS resolver at our DNS server. `state` is saved before each
 * change so a crash at any point can be undone.
 */
export async function wireResolver(
  state: LocalState,
  ours: { nameserver: string; search: string[]; routingDomains: string[]; iface?: string },
): Promise<LocalState['resolver']> {
  // Per-link routing needs a link of our own; with loopback aliases only the
  // resolv.conf route is left.
  if (ours.iface && (await hasResolved())) {
    state.resolver = { kind: 'resolved', iface: ours.iface };
    await saveState(state);
    await run('resolvectl', ['dns', ours.iface, ours.nameserver]);
    await run('resolvectl', ['domain', ours.iface, ...ours.routingDomains.map((d) => `~${d}`), ...ours.search]);
    return state.resolver;
  }
  const info = await lstat(RESOLV_CONF).catch(() => undefined);
  const originalLink = info?.isSymbolicLink() ? await readlink(RESOLV_CONF) : undefined;
  const original = info ? await readFile(RESOLV_CONF, 'utf8') : '';
  const written = renderResolvConf(parseResolvConf(original), ours);
  state.resolver = { kind: 'resolv.conf', path: RESOLV_CONF, original, originalLink, written };
  await saveState(state);
  if (originalLink) {
    // Replace the link itself; writing through it would change the file it
    // points to (systemd's or NetworkManager's), which is not ours.
    const tmp = `${RESOLV_CONF}.kt-${process.pid}`;
    await writeFile(tmp, written);
    await rename(tmp, RESOLV_CONF);
  } else {
    // Write in place: /etc/resolv.conf may be a bind mount (containers,
    // `ip netns exec`), which a rename would fail to replace.
    await writeFile(RESOLV_CONF, written);
  }
  return state.resolver;
}

/** Undoes wireResolver. Returns a warning when the file was changed by someone else since. */
export async function unwireResolver(resolver: LocalState['resolver']): Promise<string | undefined> {
  if (!resolver) return undefined;
  if (resolver.kind === 'resolved') {
    await run('resolvectl', ['revert', resolver.iface]).catch(() => undefined);
    return undefined;
  }
  const now = await readFile(resolver.path, 'utf8').catch(() => undefined);
  if (now !== undefined && now !== resolver.written) {
    return `${resolver.path} was changed by something else while connected; left as it is now`;
  }
  if (resolver.originalLink) {
    await rm(resolver.path, { force: true });
    await symlink(resolver.originalLink, resolver.path);
  } else {
    await writeFile(resolver.path, resolver.original);
  }
  return undefined;
}

/** Removes the cluster addresses a session added (its interface, or its loopback aliases). */
export async function undoAddresses(state: LocalState): Promise<void> {
  if (state.iface) await run('ip', ['link', 'del', state.iface]).catch(() => undefined);
  if (state.loLabel) await run('ip', ['addr', 'flush', 'dev', 'lo', 'label', state.loLabel]).catch(() => undefined);
}

/** Undo what crashed route-mode sessions left (their process is gone). */
export async function cleanLocal(opts: { dryRun: boolean; isAlive?: (pid: number) => boolean }): Promise<string[]> {
  const alive = opts.isAlive ?? ((pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  const done: string[] = [];
  for (const st of await listStates()) {
    if (alive(st.pid)) continue;
    if (st.resolver) {
      done.push(st.resolver.kind === 'resolved' ? `revert resolvectl on ${st.resolver.iface}` : `restore ${st.resolver.path}`);
      if (!opts.dryRun) {
        const warn = await unwireResolver(st.resolver);
        if (warn) done.push(`warning: ${warn}`);
      }
    }
    if (st.iface || st.loLabel) {
      done.push(st.iface ? `delete interface ${st.iface}` : `remove loopback addresses labelled ${st.loLabel}`);
      if (!opts.dryRun) await undoAddresses(st);
    }
    if (!opts.dryRun) await removeState(st.session);
  }
  return done;
}
