// The scheduler of a one-node cluster: every pod without spec.nodeName is
// bound to the node (what a Binding does: nodeName plus PodScheduled).
import type { Store } from '../store.ts';
import { RESOURCES } from '../apiserver/resources.ts';
import { isTerminating, timestamp } from './meta.ts';
import type { Pod } from './types.ts';

export function needsScheduling(pod: Pod): boolean {
  return !pod.spec.nodeName && !isTerminating(pod);
}

export function bind(pod: Pod, nodeName: string, nowMs: number): Pod {
  const p = structuredClone(pod);
  p.spec.nodeName = nodeName;
  const status = (p.status ??= {});
  const conditions = (status.conditions ??= []).filter((c) => c.type !== 'PodScheduled');
  conditions.unshift({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: timestamp(nowMs) });
  status.conditions = conditions;
  status.phase ??= 'Pending';
  return p;
}

/** Binds the pod if it still needs a node; returns it when it did. */
export function schedule(store: Store, namespace: string, name: string, nodeName: string, nowMs: number): Pod | undefined {
  const pod = store.get(RESOURCES.pods, namespace, name) as Pod | undefined;
  if (!pod || !needsScheduling(pod)) return undefined;
  return store.update(RESOURCES.pods, bind(pod, nodeName, nowMs)) as Pod;
}
