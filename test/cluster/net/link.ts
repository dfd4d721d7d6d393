// The laptop's link to the cluster, made to look like a real one: a round
// trip of 20–80 ms and a bandwidth of 100 Mbit/s or 1 Gbit/s between the
// laptop namespace and the API server. Without it every figure is taken over
// loopback, where no window ever limits anything.
//
//   laptop namespace                      link namespace (<cluster>-wan)
//   127.0.0.1:P  relay ──TCP── <n>-lw0 ═veth═ <n>-lw1 ── relay, delay RTT/2 each way ── unix socket (API server)
//                               tbf (up)       tbf (down)
//
// The kernel here has tbf but no netem, so the bandwidth is a tbf qdisc on
// each end of the veth pair (each end's egress: the laptop's upload and its
// download) and the delay is applied where the bytes pass the far relay
// (delay.ts). The laptop reaches the link at 127.0.0.1, an address the API
// server's certificate holds, so a kubeconfig only changes its port.
//
// One link per cluster at a time; close() removes the namespace, the veth
// pair and the relays (and the cluster's stop() does after a crash: the
// namespace is recorded with its own).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ip, run, runResult } from './run.ts';

const RELAY = join(import.meta.dirname, 'relay.ts');

export interface LinkSettings {
  /** Round-trip time added, in ms (half each way). */
  rttMs: number;
  /** Bandwidth each way, in Mbit/s. */
  rateMbit: number;
}

export interface LinkHost {
  /** The cluster's name: prefixes the interface names (≤ 6 characters). */
  name: string;
  laptopNetns: string;
  /** The Node binary the relays run on. */
  node: string;
  addNetns(suffix: string): Promise<string>;
  removeNetns(netns: string): Promise<void>;
}

export interface Link {
  /** In the laptop namespace: connect to 127.0.0.1:port to cross the link. */
  port: number;
  settings: LinkSettings;
  close(): Promise<void>;
}

/** Free /30s for the veth pair: one per link, inside the namespaces we create. */
const LINK_NET = '10.199.0';

/**
 * tbf's bucket must hold what the rate earns between two timer ticks and at
 * least a few full-size (GSO) packets; its queue, what a home router holds
 * (about 25 ms at the rate) — enough for TCP on the veth to fill the link,
 * and not so much that it adds a second round trip.
 */
export function tbfArgs(rateMbit: number): string[] {
  const bytesPerMs = (rateMbit * 1e6) / 8 / 1000;
  const burst = Math.max(64 * 1024, Math.round(bytesPerMs * 2));
  return ['rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '25ms'];
}

/** Start relay.ts in `netns`; resolves once it listens, with the port it bound. */
function startRelay(netns: string, node: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('ip', ['netns', 'exec', netns, node, RELAY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^listening \S+:(\d+)\n/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`link relay in ${netns} exited with ${code}: ${err.trim()}`)));
  });
}

/** Put a link with `settings` between the laptop namespace and the unix socket `target`. */
export async function startLink(host: LinkHost, target: string, settings: LinkSettings): Promise<Link> {
  if (!(settings.rttMs >= 0) || !(settings.rateMbit > 0)) throw new Error(`link: bad settings ${JSON.stringify(settings)}`);
  const laptopIf = `${host.name}-lw0`;
  const wanIf = `${host.name}-lw1`;
  const wan = await host.addNetns('wan');
  const relays: ChildProcess[] = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      for (const r of relays) r.kill('SIGKILL');
      // Deleting one end of a veth pair deletes the other at once; a namespace's
      // devices go only later (its cleanup is asynchronous), so the next link
      // would find the name still taken.
      await runResult('ip', ['-n', host.laptopNetns, 'link', 'del', laptopIf]);
      await host.removeNetns(wan);
    })();
    return closed;
  };
  try {
    await ip('-n', host.laptopNetns, 'link', 'add', 'name', laptopIf, 'type', 'veth', 'peer', 'name', wanIf, 'netns', wan);
    await ip('-n', host.laptopNetns, 'addr', 'add', `${LINK_NET}.1/30`, 'dev', laptopIf);
    await ip('-n', wan, 'addr', 'add', `${LINK_NET}.2/30`, 'dev', wanIf);
    await ip('-n', host.laptopNetns, 'link', 'set', laptopIf, 'up');
    await ip('-n', wan, 'link', 'set', wanIf, 'up');
    await run('ip', ['netns', 'exec', host.laptopNetns, 'tc', 'qdisc', 'replace', 'dev', laptopIf, 'root', 'tbf', ...tbfArgs(settings.rateMbit)]);
    await run('ip', ['netns', 'exec', wan, 'tc', 'qdisc', 'replace', 'dev', wanIf, 'root', 'tbf', ...tbfArgs(settings.rateMbit)]);
    const far = await startRelay(wan, host.node, ['--listen', `${LINK_NET}.2:443`, '--to-unix', target, '--delay-ms', String(settings.rttMs / 2)]);
    relays.push(far.child);
    const near = await startRelay(host.laptopNetns, host.node, ['--listen', '127.0.0.1:0', '--to', `${LINK_NET}.2:443`]);
    relays.push(near.child);
    return { port: near.port, settings, close };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}
