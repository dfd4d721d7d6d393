// Kubernetes objects the cluster DNS tests share: a ClusterIP Service with
// named ports, a headless Service whose endpoints carry hostnames, pods, an
// ExternalName Service, and a dual-stack Service.
import type { KubeObject, Store } from '../store.ts';

export function service(ns: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec };
}

export function endpoints(ns: string, name: string, subsets: unknown[]): KubeObject {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns }, subsets };
}

export function pod(ns: string, name: string, ip: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { containers: [] }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } };
}

export const OBJECTS: { resource: string; obj: KubeObject }[] = [
  {
    resource: 'services',
    obj: service('shop', 'web', { type: 'ClusterIP', clusterIP: '10.96.0.5', clusterIPs: ['10.96.0.5'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { port: 9090 }] }),
  },
  { resource: 'endpoints', obj: endpoints('shop', 'web', [{ addresses: [{ ip: '10.244.0.4' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }]) },
  { resource: 'services', obj: service('shop', 'db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }) },
  {
    resource: 'endpoints',
    obj: endpoints('shop', 'db', [
      { addresses: [{ ip: '10.244.0.7', hostname: 'db-0' }, { ip: '10.244.0.8' }], notReadyAddresses: [{ ip: '10.244.0.9', hostname: 'db-2' }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] },
    ]),
  },
  { resource: 'services', obj: service('shop', 'ext', { type: 'ExternalName', externalName: 'real.example.com' }) },
  { resource: 'services', obj: service('shop', 'dual', { clusterIP: '10.96.0.6', clusterIPs: ['10.96.0.6', 'fd00:96::6'], ports: [{ name: 'http', port: 80 }] }) },
  { resource: 'pods', obj: pod('shop', 'web-abc', '10.244.0.4') },
  { resource: 'pods', obj: pod('shop', 'db-0', '10.244.0.7') },
  { resource: 'pods', obj: pod('shop', 'db-1', '10.244.0.8') },
  { resource: 'services', obj: service('default', 'kubernetes', { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443 }] }) },
];

export function fill(store: Store): void {
  for (const { resource, obj } of OBJECTS) store.create(resource, obj);
}
