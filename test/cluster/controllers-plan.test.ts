// The controllers' pure decisions, without a store: template hashing, pod
// ranking, rollout steps, endpoints, the dependents index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { podTemplateHash, templatesEqual, canonicalJson, POD_TEMPLATE_HASH } from './controllers/hash.ts';
import { claimPods, compareForDeletion, planReplicaSet, podFromTemplate } from './controllers/replicaset-plan.ts';
import { fenceposts, planDeployment, REVISION, type DeploymentPlan } from './controllers/deployment-plan.ts';
import { planEndpoints, planSlices, resolveTargetPort } from './controllers/endpoints-plan.ts';
import { DependentsIndex } from './controllers/gc.ts';
import { bind } from './controllers/scheduler.ts';
import type { Deployment, Pod, PodTemplate, ReplicaSet, Service } from './controllers/types.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

function template(image = 'kt-demo/echo'): PodTemplate {
  return { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image, ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] } };
}

function pod(name: string, o: { ready?: boolean; phase?: string; ip?: string; created?: number; readyAt?: number; deleting?: boolean; node?: string; labels?: Record<string, string>; owner?: string } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      labels: o.labels ?? { app: 'web' },
      creationTimestamp: iso(o.created ?? T0),
      ...(o.deleting ? { deletionTimestamp: iso(T0 + 30_000) } : {}),
      ...(o.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner, uid: `uid-${o.owner}`, controller: true }] } : {}),
    },
    spec: { nodeName: o.node ?? 'kt-node', containers: template().spec.containers },
    status: {
      phase: o.phase ?? 'Running',
      ...(o.ip ? { podIP: o.ip } : {}),
      conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: iso(o.readyAt ?? T0) }],
    },
  };
}

function replicaSet(name: string, replicas: number, o: { minReadySeconds?: number } = {}): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 4 },
    spec: { replicas, minReadySeconds: o.minReadySeconds, selector: { matchLabels: { app: 'web' } }, template: template() },
  };
}

describe('pod-template-hash', () => {
  it('is stable, uses the safe alphabet, ignores its own label and changes with the template', () => {
    const h = podTemplateHash(template());
    assert.equal(h, podTemplateHash(template()));
    assert.match(h, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    const labelled = template();
    labelled.metadata!.labels![POD_TEMPLATE_HASH] = h;
    assert.equal(podTemplateHash(labelled), h);
    assert.ok(templatesEqual(labelled, template()));
    assert.notEqual(podTemplateHash(template('kt-demo/echo:v2')), h);
    assert.notEqual(podTemplateHash(template(), 1), h);
  });

  it('treats a null creationTimestamp and empty fields as absent (what kubectl rollout undo sends back)', () => {
    const undo = template();
    (undo.metadata as Record<string, unknown>).creationTimestamp = null;
    (undo.spec as Record<string, unknown>).volumes = [];
    assert.ok(templatesEqual(undo, template()));
    assert.equal(podTemplateHash(undo), podTemplateHash(template()));
    assert.ok(!templatesEqual(template('other'), template()));
  });

  it('does not depend on key order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ y: 2, x: 1 }] }), canonicalJson({ a: [{ x: 1, y: 2 }], b: 1 }));
  });
});

describe('ReplicaSet decisions', () => {
  it('creates the missing pods and counts ready and available ones', () => {
    const plan = planReplicaSet(replicaSet('web-1', 3), [pod('a', { ready: true }), pod('b')], T0);
    assert.equal(plan.create, 1);
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(plan.status, { replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 1, availableReplicas: 1, observedGeneration: 4 });
  });

  it('replaces pods being deleted and does not count them', () => {
    const plan = planReplicaSet(replicaSet('web-1', 2), [pod('a', { ready: true }), pod('b', { ready: true, deleting: true }), pod('c', { phase: 'Failed' })], T0);
    assert.equal(plan.create, 1);
    assert.equal(plan.status.replicas, 1);
    assert.equal(plan.status.readyReplicas, 1);
  });

  it('deletes unscheduled, then not-ready, then newest pods first', () => {
    const ready = pod('old-ready', { ready: true, created: T0 });
    const newer = pod('new-ready', { ready: true, created: T0 + 1000, readyAt: T0 + 2000 });
    const notReady = pod('not-ready', { created: T0 - 5000 });
    const unscheduled = pod('unscheduled', { phase: 'Pending', node: '' });
    const plan = planReplicaSet(replicaSet('web-1', 1), [ready, newer, notReady, unscheduled], T0 + 10_000);
    assert.deepEqual(plan.remove.map((p) => p.metadata.name), ['unscheduled', 'not-ready', 'new-ready']);
    assert.ok(compareForDeletion(notReady, ready) < 0);
  });

  it('counts a pod available only after minReadySeconds and asks to look again then', () => {
    const plan = planReplicaSet(replicaSet('web-1', 1, { minReadySeconds: 10 }), [pod('a', { ready: true, readyAt: T0 })], T0 + 4000);
    assert.equal(plan.status.readyReplicas, 1);
    assert.equal(plan.status.availableReplicas, 0);
    assert.equal(plan.recheckAfterMs, 6000);
    assert.equal(planReplicaSet(replicaSet('web-1', 1, { minReadySeconds: 10 }), [pod('a', { ready: true, readyAt: T0 })], T0 + 10_000).status.availableReplicas, 1);
  });

  it('adopts matching orphans, releases relabelled pods, and leaves pods being deleted alone', () => {
    const rs = replicaSet('web-1', 2);
    const mine = pod('mine', { owner: 'web-1' });
    const relabelled = pod('relabelled', { owner: 'web-1', labels: { app: 'debug' } });
    const orphan = pod('orphan');
    const dyingOrphan = pod('dying', { deleting: true });
    const others = pod('others', { owner: 'web-2' });
    const stranger = pod('stranger', { labels: { app: 'db' } });
    const c = claimPods(rs, [mine, relabelled, orphan, dyingOrphan, others, stranger]);
    assert.deepEqual(c.owned.map((p) => p.metadata.name), ['mine', 'orphan']);
    assert.deepEqual(c.adopt.map((p) => p.metadata.name), ['orphan']);
    assert.deepEqual(c.release.map((p) => p.metadata.name), ['relabelled']);
  });

  it('builds pods from the template, owned by the ReplicaSet and bound to the node', () => {
    const p = podFromTemplate(replicaSet('web-1', 1), 'web-1-abcde', 'kt-node', iso(T0));
    assert.equal(p.metadata.generateName, 'web-1-');
    assert.deepEqual(p.metadata.labels, { app: 'web' });
    assert.equal(p.metadata.ownerReferences?.[0].uid, 'uid-web-1');
    assert.equal(p.metadata.ownerReferences?.[0].controller, true);
    assert.equal(p.spec.nodeName, 'kt-node');
  });
});

function deployment(replicas: number, image = 'kt-demo/echo', strategy?: Deployment['spec']['strategy']): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', uid: 'uid-web', generation: 1 },
    spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: template(image), ...(strategy ? { strategy } : {}) },
  };
}

/**
 * Runs the Deployment controller against a world where every pod a
 * ReplicaSet asks for exists and is available at once (or, for Recreate,
 * old pods vanish at once), checking the rollout's bounds at every step.
 */
function simulate(d: Deployment, rss: ReplicaSet[], check: (rss: ReplicaSet[], plan: DeploymentPlan) => void): ReplicaSet[] {
  let world = rss;
  for (let step = 0; step < 50; step++) {
    const plan = planDeployment({ deployment: d, owned: world, podsByReplicaSet: new Map(), takenNames: new Set(world.map((r) => r.metadata.name)), nowMs: T0 });
    check(world, plan);
    if (!plan.create && plan.updates.length === 0 && plan.deletes.length === 0) return world;
    world = world.filter((r) => !plan.deletes.includes(r.metadata.name));
    if (plan.create) world.push({ ...plan.create, metadata: { ...plan.create.metadata, uid: `uid-${plan.create.metadata.name}`, creationTimestamp: iso(T0 + step * 1000) } });
    for (const u of plan.updates) {
      const r = world.find((x) => x.metadata.name === u.name)!;
      r.spec.replicas = u.replicas;
      if (u.annotations) r.metadata.annotations = { ...r.metadata.annotations, ...u.annotations };
    }
    // The ReplicaSet controller and the node, instantly: all pods exist and are available.
    for (const r of world) r.status = { replicas: r.spec.replicas ?? 0, readyReplicas: r.spec.replicas ?? 0, availableReplicas: r.spec.replicas ?? 0 };
  }
  throw new Error('the rollout did not settle in 50 steps');
}

describe('Deployment decisions', () => {
  it('resolves maxSurge up and maxUnavailable down, never both zero', () => {
    assert.deepEqual(fenceposts(deployment(10)), { maxSurge: 3, maxUnavailable: 2 });
    assert.deepEqual(fenceposts(deployment(3, 'x', { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } })), { maxSurge: 0, maxUnavailable: 1 });
    assert.deepEqual(fenceposts(deployment(3, 'x', { type: 'Recreate' })), { maxSurge: 0, maxUnavailable: 0 });
  });

  it('creates the first ReplicaSet named after the template hash, with revision 1', () => {
    const plan = planDeployment({ deployment: deployment(3), owned: [], podsByReplicaSet: new Map(), takenNames: new Set(), nowMs: T0 });
    const rs = plan.create!;
    const hash = podTemplateHash(template());
    assert.equal(rs.metadata.name, `web-${hash}`);
    assert.equal(rs.spec.replicas, 3);
    assert.equal(rs.metadata.annotations?.[REVISION], '1');
    assert.equal(rs.spec.selector.matchLabels?.[POD_TEMPLATE_HASH], hash);
    assert.equal(rs.spec.template.metadata?.labels?.[POD_TEMPLATE_HASH], hash);
    assert.equal(rs.metadata.ownerReferences?.[0].uid, 'uid-web');
    assert.equal(plan.revision, '1');
    assert.equal(plan.status.conditions?.find((c) => c.type === 'Progressing')?.reason, 'NewReplicaSetCreated');
  });

  it('rolls a template change through within maxSurge and maxUnavailable, ending with only the new ReplicaSet', () => {
    const first = simulate(deployment(10), [], () => {});
    assert.equal(first.length, 1);
    const d = deployment(10, 'kt-demo/echo:v2');
    const { maxSurge, maxUnavailable } = fenceposts(d);
    let steps = 0;
    const end = simulate(d, first, (world) => {
      steps++;
      const total = world.reduce((n, r) => n + (r.spec.replicas ?? 0), 0);
      const available = world.reduce((n, r) => n + (r.status?.availableReplicas ?? 0), 0);
      assert.ok(total <= 10 + maxSurge, `total ${total}`);
      assert.ok(available >= 10 - maxUnavailable, `available ${available}`);
    });
    assert.ok(steps > 2, 'a rollout takes several steps');
    const live = end.filter((r) => (r.spec.replicas ?? 0) > 0);
    assert.equal(live.length, 1);
    assert.equal(live[0].spec.template.spec.containers[0].image, 'kt-demo/echo:v2');
    assert.equal(live[0].metadata.annotations?.[REVISION], '2');
    const final = planDeployment({ deployment: d, owned: end, podsByReplicaSet: new Map(), takenNames: new Set(), nowMs: T0 });
    assert.equal(final.status.updatedReplicas, 10);
    assert.equal(final.status.conditions?.find((c) => c.type === 'Progressing')?.reason, 'NewReplicaSetAvailable');
  });

  it('rolls back to an old template by reusing its ReplicaSet under a new revision', () => {
    const v1 = simulate(deployment(2), [], () => {});
    const v2 = simulate(deployment(2, 'kt-demo/echo:v2'), v1, () => {});
    const back = simulate(deployment(2), v2, () => {});
    assert.equal(back.length, 2);
    const live = back.find((r) => (r.spec.replicas ?? 0) > 0)!;
    assert.equal(live.metadata.name, v1[0].metadata.name);
    assert.equal(live.metadata.annotations?.[REVISION], '3');
  });

  it('prunes empty old ReplicaSets beyond revisionHistoryLimit', () => {
    let world = simulate(deployment(1, 'v0'), [], () => {});
    for (let i = 1; i <= 4; i++) {
      const d = deployment(1, `v${i}`);
      d.spec.revisionHistoryLimit = 2;
      world = simulate(d, world, () => {});
    }
    assert.equal(world.length, 3);
  });

  it('Recreate scales the old ReplicaSet to zero and starts new pods only when the old ones are gone', () => {
    const recreate = { type: 'Recreate' };
    const old = simulate(deployment(2, 'v1', recreate), [], () => {});
    const d = deployment(2, 'v2', recreate);
    const oldUid = old[0].metadata.uid ?? '';
    const oldPod = pod('old-1', { ready: true });
    const input = (owned: ReplicaSet[], pods: Pod[]): Parameters<typeof planDeployment>[0] => ({
      deployment: d, owned, podsByReplicaSet: new Map([[oldUid, pods]]), takenNames: new Set(owned.map((r) => r.metadata.name)), nowMs: T0,
    });
    const p1 = planDeployment(input(old, [oldPod]));
    assert.equal(p1.create?.spec.replicas, 0);
    assert.deepEqual(p1.updates.map((u) => [u.name, u.replicas]), [[old[0].metadata.name, 0]]);
    const created = { ...p1.create!, metadata: { ...p1.create!.metadata, uid: 'uid-new' } };
    const scaledDown = [{ ...old[0], spec: { ...old[0].spec, replicas: 0 } }, created];
    // An old pod is still terminating: wait.
    assert.deepEqual(planDeployment(input(scaledDown, [{ ...oldPod, metadata: { ...oldPod.metadata, deletionTimestamp: iso(T0) } }])).updates, []);
    const p3 = planDeployment(input(scaledDown, []));
    assert.deepEqual(p3.updates.map((u) => [u.name, u.replicas]), [[created.metadata.name, 2]]);
  });
});

function service(o: Partial<Service['spec']> = {}, name = 'web'): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', uid: 'uid-svc' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }], ...o } };
}

describe('Endpoints decisions', () => {
  it('lists ready pods as addresses and the rest as notReadyAddresses, resolving named target ports', () => {
    const subsets = planEndpoints(service(), [
      pod('b', { ready: true, ip: '10.1.0.12' }),
      pod('a', { ready: true, ip: '10.1.0.3' }),
      pod('c', { ip: '10.1.0.4' }),
      pod('no-ip', { ready: true }),
      pod('gone', { ready: true, ip: '10.1.0.5', deleting: true }),
      pod('other', { ready: true, ip: '10.1.0.6', labels: { app: 'db' } }),
    ]);
    assert.equal(subsets.length, 1);
    assert.deepEqual(subsets[0].addresses?.map((a) => a.ip), ['10.1.0.3', '10.1.0.12']);
    assert.deepEqual(subsets[0].notReadyAddresses?.map((a) => a.targetRef.name), ['c']);
    assert.deepEqual(subsets[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    assert.deepEqual(subsets[0].addresses?.[0], { ip: '10.1.0.3', nodeName: 'kt-node', targetRef: { kind: 'Pod', namespace: 'shop', name: 'a', uid: 'uid-a' } });
  });

  it('skips pods that lack a named port, and groups pods by the ports they serve', () => {
    const numbered = pod('n', { ready: true, ip: '10.1.0.9' });
    numbered.spec.containers = [{ name: 'c', image: 'x', ports: [{ name: 'web', containerPort: 9090 }] }];
    assert.equal(resolveTargetPort({ port: 80, targetPort: 'http' }, numbered), undefined);
    assert.equal(resolveTargetPort({ port: 80 }, numbered), 80);
    assert.deepEqual(planEndpoints(service(), [numbered]), []);
    const two = planEndpoints(service({ ports: [{ port: 80, targetPort: 8080 }] }), [pod('a', { ready: true, ip: '10.1.0.3' }), numbered]);
    assert.equal(two.length, 1);
    assert.equal(two[0].addresses?.length, 2);
  });

  it('sets hostname for pods whose subdomain is the Service, and publishes not-ready pods when asked', () => {
    const p = pod('h', { ip: '10.1.0.7' });
    p.spec.hostname = 'web-0';
    p.spec.subdomain = 'web';
    const subsets = planEndpoints(service({ clusterIP: 'None', publishNotReadyAddresses: true }), [p]);
    assert.equal(subsets[0].addresses?.[0].hostname, 'web-0');
  });

  it('keeps terminating pods in EndpointSlices, marked so', () => {
    const slices = planSlices(service(), [pod('a', { ready: true, ip: '10.1.0.3' }), pod('t', { ready: true, ip: '10.1.0.4', deleting: true })]);
    assert.equal(slices.length, 1);
    assert.deepEqual(slices[0].endpoints.map((e) => [e.addresses[0], e.conditions]), [
      ['10.1.0.3', { ready: true, serving: true, terminating: false }],
      ['10.1.0.4', { ready: false, serving: true, terminating: true }],
    ]);
    assert.deepEqual(slices[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    assert.deepEqual(planSlices(service(), []), [{ addressType: 'IPv4', endpoints: [], ports: [] }]);
  });
});

describe('dependents index and scheduler', () => {
  it('finds the dependents of a deleted owner', () => {
    const idx = new DependentsIndex();
    const p = pod('p1', { owner: 'web-1' });
    assert.deepEqual(idx.observe({ type: 'ADDED', resource: 'pods', object: p, rv: 2 }), [{ resource: 'pods', namespace: 'shop', name: 'p1' }]);
    const rs = replicaSet('web-1', 1);
    assert.deepEqual(idx.observe({ type: 'DELETED', resource: 'replicasets.apps', object: rs, rv: 3 }), [{ resource: 'pods', namespace: 'shop', name: 'p1' }]);
    idx.observe({ type: 'DELETED', resource: 'pods', object: p, rv: 4 });
    assert.deepEqual(idx.observe({ type: 'DELETED', resource: 'replicasets.apps', object: rs, rv: 5 }), []);
  });

  it('binds a pod to the node with PodScheduled', () => {
    const p = pod('p', { node: '', phase: 'Pending' });
    const b = bind(p, 'kt-node', T0);
    assert.equal(b.spec.nodeName, 'kt-node');
    assert.equal(b.status?.conditions?.[0].type, 'PodScheduled');
    assert.equal(p.spec.nodeName, '');
  });
});
