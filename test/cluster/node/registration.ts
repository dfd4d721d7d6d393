// The node's own objects, written as a kubelet writes them and under the
// node's own identity (system:node:<name> in system:nodes), so the upstream
// Node authorizer and NodeRestriction judge them: the Node with its capacity,
// addresses, conditions and the kubelet API's port, and the Lease in
// kube-node-lease that the node lifecycle controller reads as the heartbeat
// (renewed every 10 s of its 40 s, as the kubelet does).
import { debuglog } from 'node:util';
import type { ApiClient } from '../upstream/client.ts';

const debug = debuglog('kt-cluster');
const LEASE_SECONDS = 40;
const RENEW_MS = 10_000;

export interface NodeRegistration {
  close(): void;
}

/** metav1.Time: RFC 3339 in whole seconds. */
function time(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function nodeStatus(o: { kubeletPort: number; version: string; name: string }, now: string): Record<string, unknown> {
  const condition = (type: string, status: string, reason: string, message: string): Record<string, string> =>
    ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: now });
  const resources = { cpu: '2', memory: '24Gi', pods: '250', 'ephemeral-storage': '100Gi' };
  return {
    capacity: resources,
    allocatable: resources,
    conditions: [
      condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      condition('Ready', 'True', 'KubeletReady', 'kt test node agent is posting ready status'),
    ],
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: o.name }],
    daemonEndpoints: { kubeletEndpoint: { Port: o.kubeletPort } },
    nodeInfo: {
      machineID: 'kt', systemUUID: 'kt', bootID: 'kt', kernelVersion: '', osImage: 'kt test node',
      containerRuntimeVersion: 'kt-test://1', kubeletVersion: o.version, kubeProxyVersion: '',
      operatingSystem: 'linux', architecture: 'amd64',
    },
  };
}

export async function registerNode(client: ApiClient, o: { name: string; podCidr: string; kubeletPort: number; version: string }): Promise<NodeRegistration> {
  const now = time();
  const node = {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name: o.name,
      labels: { 'kubernetes.io/hostname': o.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
    },
    spec: { podCIDR: o.podCidr, podCIDRs: [o.podCidr] },
  };
  const created = await client.call<{ metadata: { uid: string } }>('POST', '/api/v1/nodes', node);
  await client.call('PATCH', `/api/v1/nodes/${o.name}/status`, { status: nodeStatus(o, now) }, 'application/merge-patch+json');
  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${o.name}`;
  await client.call('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
    metadata: { name: o.name, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: o.name, uid: created.metadata.uid }] },
    spec: { holderIdentity: o.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() },
  });
  let beats = 0;
  const timer = setInterval(() => {
    beats++;
    void client.call('PATCH', leasePath, { spec: { renewTime: microTime() } }, 'application/merge-patch+json')
      .catch((e: Error) => debug('node lease: %s', e.message));
    // The status itself every minute, as the kubelet's nodeStatusReportFrequency.
    if (beats % 6 === 0) {
      const t = time();
      void client.call('PATCH', `/api/v1/nodes/${o.name}/status`, { status: { conditions: (nodeStatus(o, t).conditions as Record<string, string>[]).map((c) => ({ type: c.type, lastHeartbeatTime: t })) } }, 'application/strategic-merge-patch+json')
        .catch((e: Error) => debug('node status: %s', e.message));
    }
  }, RENEW_MS);
  return { close: () => clearInterval(timer) };
}
