// What a cluster left behind on this machine, by its name prefix and state
// directory: network namespaces, /etc/netns entries, nftables tables in the
// root namespace, processes, files. Tests assert it is empty after stop/down.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { runResult } from './run.ts';
import { LOCK_DIR } from './state.ts';

/**
 * The inode numbers of the cluster's network namespaces, taken while it runs:
 * afterwards a process still inside one of them is found by its
 * /proc/PID/ns/net link, whatever its command line says.
 */
export function netnsInodes(prefix: string): number[] {
  if (!existsSync('/run/netns')) return [];
  return readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`)).map((n) => statSync(`/run/netns/${n}`).ino);
}

export async function leftovers(prefix: string, dir: string, inodes: number[] = []): Promise<string[]> {
  const found: string[] = [];
  const ns = await runResult('ip', ['netns', 'list']);
  for (const line of ns.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name.startsWith(`${prefix}-`)) found.push(`netns ${name}`);
  }
  if (existsSync('/etc/netns')) {
    for (const d of readdirSync('/etc/netns')) if (d.startsWith(`${prefix}-`)) found.push(`/etc/netns/${d}`);
  }
  const links = await runResult('ip', ['-o', 'link', 'show']);
  for (const line of links.stdout.split('\n')) if (line.includes(`${prefix}v`) || line.includes(`${prefix}-`)) found.push(`link ${line.split(':')[1]?.trim()}`);
  const tables = await runResult('nft', ['list', 'tables']);
  for (const t of tables.stdout.split('\n')) if (t.includes('kt_service_proxy')) found.push(`nft ${t.trim()}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const net = /net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      if ((net && inodes.includes(Number(net[1]))) || cmd.includes(dir) || cmd.includes(`${prefix}-laptop`) || cmd.includes(`${prefix}-node`) || new RegExp(`${prefix}-p\\d+ `).test(cmd)) {
        found.push(`process ${pid}: ${cmd.trim()}`);
      }
    } catch {
      // Exited while we looked.
    }
  }
  if (existsSync(dir)) found.push(`directory ${dir}`);
  if (existsSync(LOCK_DIR)) {
    for (const f of readdirSync(LOCK_DIR)) {
      try {
        if (readFileSync(`${LOCK_DIR}/${f}`, 'utf8') === dir) found.push(`lock ${LOCK_DIR}/${f}`);
      } catch {
        // Removed while we looked.
      }
    }
  }
  return found;
}
