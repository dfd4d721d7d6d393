// Network namespaces, the node's bridge and the pods' veth pairs, made with
// iproute2. The layout (one bridge in the node namespace, one veth per pod)
// is what the kubenet/bridge CNI plugins build on a real node.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ip, run, runResult } from './run.ts';

export async function createNetns(name: string): Promise<void> {
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
}

export async function deleteNetns(name: string): Promise<void> {
  const r = await runResult('ip', ['netns', 'delete', name]);
  if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(`ip netns delete ${name}: ${r.stderr.trim()}`);
}

export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

/** br_netfilter makes bridged traffic pass the IP hooks, so ClusterIP replies between pods on one bridge are un-NATed. */
async function ensureBrNetfilter(): Promise<void> {
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return;
  await run('modprobe', ['br_netfilter']);
}

export interface NodeNetwork {
  netns: string;
  bridge: string;
  /** The gateway (and node) address, e.g. 10.64.0.1. */
  gateway: string;
  /** The pod range, e.g. 10.64.0.0/16. */
  podCidr: string;
  serviceCidr: string;
}

/** The node namespace: a bridge holding the pod range's gateway address, forwarding on, bridged traffic through netfilter. */
export async function setupNode(n: NodeNetwork): Promise<void> {
  await ensureBrNetfilter();
  const bits = n.podCidr.split('/')[1];
  await ip('-n', n.netns, 'link', 'add', n.bridge, 'type', 'bridge');
  await ip('-n', n.netns, 'addr', 'add', `${n.gateway}/${bits}`, 'dev', n.bridge);
  await ip('-n', n.netns, 'link', 'set', n.bridge, 'up');
  await sysctl(n.netns, 'net.ipv4.ip_forward', '1');
  await sysctl(n.netns, 'net.bridge.bridge-nf-call-iptables', '1');
  // The node itself must route ClusterIPs somewhere for its output hook to
  // DNAT them (a real node has a default route for that).
  await ip('-n', n.netns, 'route', 'add', n.serviceCidr, 'dev', n.bridge);
}

export interface PodNetwork {
  nodeNetns: string;
  bridge: string;
  podNetns: string;
  /** The veth end on the bridge (≤ 15 characters). */
  hostVeth: string;
  ip: string;
  prefixLen: number;
  gateway: string;
}

/** A pod's namespace: lo, eth0 with its address, default route via the bridge. */
export async function setupPod(p: PodNetwork): Promise<void> {
  await createNetns(p.podNetns);
  await ip('link', 'add', p.hostVeth, 'netns', p.nodeNetns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.podNetns);
  // Hairpin: a pod reaching its own Service is DNATed back to itself, so the
  // bridge must be allowed to send a frame out of the port it came in on.
  await ip('-n', p.nodeNetns, 'link', 'set', p.hostVeth, 'master', p.bridge);
  await ip('-n', p.nodeNetns, 'link', 'set', p.hostVeth, 'type', 'bridge_slave', 'hairpin', 'on');
  await ip('-n', p.nodeNetns, 'link', 'set', p.hostVeth, 'up');
  await ip('-n', p.podNetns, 'addr', 'add', `${p.ip}/${p.prefixLen}`, 'dev', 'eth0');
  // A new pod may get the address of one just deleted: announce it (gratuitous
  // ARP on link up), or neighbours keep sending to the old pod's MAC for up to
  // a reachable-time (~30 s).
  await sysctl(p.podNetns, 'net.ipv4.conf.eth0.arp_notify', '1');
  await ip('-n', p.podNetns, 'link', 'set', 'eth0', 'up');
  await ip('-n', p.podNetns, 'route', 'add', 'default', 'via', p.gateway);
}

/** `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc/*: the pod's own resolv.conf. */
export function etcNetnsDir(netns: string): string {
  return join('/etc/netns', netns);
}

export function writeEtcNetnsFile(netns: string, file: string, content: string): string {
  const dir = etcNetnsDir(netns);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), content);
  return dir;
}

export function removeEtcNetns(netns: string): void {
  rmSync(etcNetnsDir(netns), { recursive: true, force: true });
}

/** resolv.conf as kubelet writes it for dnsPolicy ClusterFirst. */
export function podResolvConf(namespace: string, clusterDomain: string, dnsIp: string): string {
  return [
    `search ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}`,
    `nameserver ${dnsIp}`,
    'options ndots:5',
    '',
  ].join('\n');
}
