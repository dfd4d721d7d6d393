// Faults a laptop meets, made on purpose for tests: its path to the API
// server dropping packets silently (Wi-Fi gone, a VPN reconnecting: no FIN,
// no RST, every segment simply lost) and coming back. The laptop reaches the
// API server only through the relay at 127.0.0.1:<apiPort> in its own
// namespace (cluster.ts), so one nftables table there, dropping that port's
// packets both ways on the output hook (loopback traffic passes it once per
// packet), cuts every connection the laptop has to the cluster — the
// plugin's port-forwards, watches and API calls, kubectl's — and every new
// one (the SYN is lost too), while the laptop's own local servers keep
// working. Its counters prove the packets were really dropped.
import { run } from './run.ts';

const TABLE = 'kt_fault';

export interface PathCut {
  /** Packets dropped since the cut began (both directions). */
  dropped(): Promise<number>;
  /** Ends the cut (idempotent); returns the packets it dropped. */
  restore(): Promise<number>;
}

async function counted(netns: string): Promise<number> {
  const out = await run('ip', ['netns', 'exec', netns, 'nft', '-j', 'list', 'table', 'inet', TABLE]);
  const items = (JSON.parse(out) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables;
  let packets = 0;
  for (const i of items) for (const e of i.rule?.expr ?? []) packets += e.counter?.packets ?? 0;
  return packets;
}

/** Drops every TCP segment to or from `port` in `netns` until restore(). */
export async function cutPath(netns: string, port: number): Promise<PathCut> {
  const rules = [
    `table inet ${TABLE} {`,
    '  chain out {',
    '    type filter hook output priority -300; policy accept;',
    `    tcp dport ${port} counter drop`,
    `    tcp sport ${port} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  await run('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: rules });
  let restored: Promise<number> | undefined;
  return {
    dropped: () => counted(netns),
    restore: () => (restored ??= (async () => {
      const n = await counted(netns);
      await run('ip', ['netns', 'exec', netns, 'nft', 'delete', 'table', 'inet', TABLE]);
      return n;
    })()),
  };
}
