// The controllers against a real store: objects written as the API server
// would after defaulting, a stand-in node that runs pods (marks them Running
// and Ready with an IP) and removes deleted ones, and waits on store events.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Store, type KubeObject } from './store.ts';
import { RESOURCES, resourceByKey } from './apiserver/resources.ts';
import { deleteObject } from './apiserver/deletion.ts';
import { startControllers, type Controllers } from './controllers/index.ts';
import { REVISION } from './controllers/deployment-plan.ts';
import { isTerminating } from './controllers/meta.ts';
import { FakeNode, rolloutStatus, waitFor } from './controllers/testing.ts';
import type { Deployment, Pod, ReplicaSet } from './controllers/types.ts';

const NS = 'shop';

function deploymentObject(name: string, replicas: number, image = 'kt-demo/echo', strategy?: Deployment['spec']['strategy']): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image, ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }], restartPolicy: 'Always', terminationGracePeriodSeconds: 30 },
      },
      strategy: strategy ?? { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    } as Deployment['spec'],
  };
}

/** Whether the Deployment exists and kubectl rollout status would say it is done. */
function rolledOut(store: Store, name: string): boolean {
  const d = get<Deployment>(store, RESOURCES.deployments, name);
  return d !== undefined && rolloutStatus(d).done;
}

function podsOf(store: Store, app: string): Pod[] {
  return (store.list(RESOURCES.pods, NS) as Pod[]).filter((p) => p.metadata.labels?.app === app);
}

function get<T extends KubeObject>(store: Store, resource: string, name: string): T | undefined {
  return store.get(resource, NS, name) as T | undefined;
}

function setReplicas(store: Store, name: string, replicas: number): void {
  store.mutate(RESOURCES.deployments, NS, name, (d) => {
    (d as Deployment).spec.replicas = replicas;
    return d;
  });
}

describe('controllers on a store', () => {
  let store: Store;
  let controllers: Controllers;
  let node: FakeNode;
  const log: string[] = [];

  beforeEach(() => {
    store = new Store();
    store.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    log.length = 0;
    controllers = startControllers({ store, debug: (m) => log.push(m) });
    node = new FakeNode(store);
  });
  afterEach(() => {
    controllers.close();
    node.close();
  });

  it('takes a Deployment to ready pods and a status kubectl rollout status accepts', async () => {
    store.create(RESOURCES.deployments, deploymentObject('web', 3));
    const d = await waitFor(store, 'rollout', () => {
      const d = get<Deployment>(store, RESOURCES.deployments, 'web');
      return d && rolloutStatus(d).done && d;
    });
    assert.equal(rolloutStatus(d).message, 'deployment "web" successfully rolled out');
    assert.equal(d.metadata.annotations?.[REVISION], '1');
    assert.deepEqual(
      { ...d.status, conditions: undefined },
      { observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0, conditions: undefined },
    );
    assert.deepEqual(d.status?.conditions?.map((c) => [c.type, c.status, c.reason]), [
      ['Available', 'True', 'MinimumReplicasAvailable'],
      ['Progressing', 'True', 'NewReplicaSetAvailable'],
    ]);
    const rss = store.list(RESOURCES.replicasets, NS) as ReplicaSet[];
    assert.equal(rss.length, 1);
    const hash = rss[0].metadata.labels?.['pod-template-hash'];
    assert.equal(rss[0].metadata.name, `web-${hash}`);
    assert.equal(rss[0].status?.readyReplicas, 3);
    const pods = podsOf(store, 'web');
    assert.equal(pods.length, 3);
    for (const p of pods) {
      assert.match(p.metadata.name, new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      assert.equal(p.spec.nodeName, 'kt-node');
      assert.equal(p.metadata.ownerReferences?.[0].name, rss[0].metadata.name);
      assert.equal(p.metadata.labels?.['pod-template-hash'], hash);
      assert.equal((p.spec as Record<string, unknown>).dnsPolicy, 'ClusterFirst');
    }
    const events = store.list(RESOURCES.events, NS).map((e) => `${(e.involvedObject as { kind: string }).kind} ${e.reason as string}`);
    assert.deepEqual(events.filter((e) => e === 'ReplicaSet SuccessfulCreate').length, 3);
    assert.deepEqual(events.filter((e) => e === 'Deployment ScalingReplicaSet').length, 1);
  });

  it('rolls a template change out until only new pods are left, then scales up and down', async () => {
    store.create(RESOURCES.deployments, deploymentObject('web', 4));
    await waitFor(store, 'first rollout', () => rolledOut(store, 'web'));
    const oldPods = new Set(podsOf(store, 'web').map((p) => p.metadata.name));
    let maxPods = 0;
    const stopCount = store.watch(() => (maxPods = Math.max(maxPods, podsOf(store, 'web').filter((p) => !isTerminating(p)).length)));
    store.mutate(RESOURCES.deployments, NS, 'web', (d) => {
      (d as Deployment).spec.template.spec.containers[0].image = 'kt-demo/echo:v2';
      return d;
    });
    await waitFor(store, 'second rollout', () => {
      return rolledOut(store, 'web') && podsOf(store, 'web').length === 4;
    });
    stopCount?.();
    const pods = podsOf(store, 'web');
    assert.ok(pods.every((p) => !oldPods.has(p.metadata.name) && p.spec.containers[0].image === 'kt-demo/echo:v2'));
    assert.ok(maxPods <= 5, `at most replicas + maxSurge pods at once, saw ${maxPods}`);
    assert.equal(get<Deployment>(store, RESOURCES.deployments, 'web')!.metadata.annotations?.[REVISION], '2');
    const rss = store.list(RESOURCES.replicasets, NS) as ReplicaSet[];
    assert.deepEqual(rss.map((r) => r.spec.replicas).sort(), [0, 4]);

    setReplicas(store, 'web', 6);
    await waitFor(store, 'scale up', () => rolledOut(store, 'web') && podsOf(store, 'web').length === 6);
    setReplicas(store, 'web', 1);
    await waitFor(store, 'scale down', () => rolledOut(store, 'web') && podsOf(store, 'web').length === 1);
    assert.equal(get<Deployment>(store, RESOURCES.deployments, 'web')!.status?.replicas, 1);
  });

  it('Recreate stops every old pod before starting new ones', async () => {
    store.create(RESOURCES.deployments, deploymentObject('db', 2, 'kt-demo/echo', { type: 'Recreate' }));
    await waitFor(store, 'first rollout', () => rolledOut(store, 'db'));
    let overlap = false;
    const stop = store.watch(() => {
      const images = new Set(podsOf(store, 'db').map((p) => p.spec.containers[0].image));
      if (images.size > 1) overlap = true;
    });
    store.mutate(RESOURCES.deployments, NS, 'db', (d) => {
      (d as Deployment).spec.template.spec.containers[0].image = 'kt-demo/echo:v2';
      return d;
    });
    await waitFor(store, 'recreate', () => rolledOut(store, 'db') && podsOf(store, 'db').length === 2);
    stop?.();
    assert.equal(overlap, false);
    assert.ok(podsOf(store, 'db').every((p) => p.spec.containers[0].image === 'kt-demo/echo:v2'));
  });

  it('replaces a pod being deleted at once, and it leaves the endpoints while it terminates', async () => {
    store.create(RESOURCES.services, {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS },
      spec: { selector: { app: 'web' }, clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
    });
    store.create(RESOURCES.deployments, deploymentObject('web', 2));
    await waitFor(store, 'rollout', () => rolledOut(store, 'web'));
    const victim = podsOf(store, 'web')[0];
    node.hold.add(victim.metadata.name);
    store.mutate(RESOURCES.pods, NS, victim.metadata.name, (p) => {
      p.metadata.deletionTimestamp = new Date(Date.now() + 30_000).toISOString();
      p.metadata.deletionGracePeriodSeconds = 30;
      return p;
    });
    await waitFor(store, 'replacement', () => podsOf(store, 'web').filter((p) => !isTerminating(p) && p.status?.podIP).length === 2);
    const ep = await waitFor(store, 'endpoints without the victim', () => {
      const ep = get<KubeObject>(store, RESOURCES.endpoints, 'web');
      type Address = { ip: string; targetRef: { name: string } };
      const subsets = ep?.subsets as { addresses?: Address[]; notReadyAddresses?: Address[] }[] | undefined;
      const names = subsets?.[0]?.addresses?.map((a) => a.targetRef.name) ?? [];
      // A terminating pod is in neither list (only EndpointSlices keep it, marked terminating).
      return names.length === 2 && !names.includes(victim.metadata.name) && !subsets?.[0]?.notReadyAddresses && subsets;
    });
    assert.deepEqual((ep[0] as { ports: unknown }).ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    const slice = store.list(RESOURCES.endpointslices, NS)[0];
    const endpoints = slice.endpoints as { targetRef: { name: string }; conditions: { terminating: boolean } }[];
    assert.equal(endpoints.find((e) => e.targetRef.name === victim.metadata.name)?.conditions.terminating, true);
    node.hold.clear();
    node.tend(NS, victim.metadata.name);
    await waitFor(store, 'victim gone', () => !get(store, RESOURCES.pods, victim.metadata.name));
  });

  it('lets go of a pod relabelled out of its selector and replaces it, and adopts it back when it returns', async () => {
    store.create(RESOURCES.deployments, deploymentObject('web', 2));
    await waitFor(store, 'rollout', () => rolledOut(store, 'web'));
    const [victim] = podsOf(store, 'web');
    const rsName = victim.metadata.ownerReferences?.[0].name;
    const relabel = (app: string): void => {
      store.mutate(RESOURCES.pods, NS, victim.metadata.name, (p) => {
        p.metadata.labels = { ...p.metadata.labels, app };
        return p;
      });
    };
    relabel('debug');
    await waitFor(store, 'released and replaced', () => {
      const v = get<Pod>(store, RESOURCES.pods, victim.metadata.name);
      return v && !v.metadata.ownerReferences && podsOf(store, 'web').filter((p) => !isTerminating(p)).length === 2;
    });
    relabel('web');
    // Adopted back: three pods for two replicas, so one goes (without
    // adoption the orphan would stay beside the two owned ones).
    await waitFor(store, 'adopted, surplus removed', () => podsOf(store, 'web').length === 2);
    assert.ok(podsOf(store, 'web').every((p) => p.metadata.ownerReferences?.[0]?.name === rsName));
  });

  it('keeps Endpoints and EndpointSlices in step with readiness, leaves selectorless Services alone, and deletes them with the Service', async () => {
    node.ready = () => false;
    store.create(RESOURCES.endpoints, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'external', namespace: NS }, subsets: [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ port: 5432, protocol: 'TCP' }] }] });
    store.create(RESOURCES.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'external', namespace: NS }, spec: { ports: [{ port: 5432, protocol: 'TCP' }] } });
    store.create(RESOURCES.services, {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS, labels: { tier: 'front' } },
      spec: { selector: { app: 'web' }, clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
    });
    store.create(RESOURCES.deployments, deploymentObject('web', 2));
    type Subsets = { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[];
    const notReady = await waitFor(store, 'not-ready endpoints', () => {
      const s = get<KubeObject>(store, RESOURCES.endpoints, 'web')?.subsets as Subsets | undefined;
      return s?.[0]?.notReadyAddresses?.length === 2 && !s[0].addresses && s;
    });
    assert.equal(notReady.length, 1);
    const ep = get<KubeObject>(store, RESOURCES.endpoints, 'web')!;
    assert.equal(ep.metadata.labels?.tier, 'front');
    let slice = store.list(RESOURCES.endpointslices, NS)[0];
    assert.equal(slice.metadata.labels?.['kubernetes.io/service-name'], 'web');
    assert.equal(slice.metadata.ownerReferences?.[0].kind, 'Service');
    assert.equal(slice.addressType, 'IPv4');

    node.ready = () => true;
    node.retend();
    await waitFor(store, 'ready endpoints', () => {
      const s = get<KubeObject>(store, RESOURCES.endpoints, 'web')?.subsets as Subsets | undefined;
      return s?.[0]?.addresses?.length === 2 && !s[0].notReadyAddresses;
    });
    slice = await waitFor(store, 'ready slice', () => {
      const s = store.list(RESOURCES.endpointslices, NS)[0];
      return (s?.endpoints as { conditions: { ready: boolean } }[]).every((e) => e.conditions.ready) && s;
    });
    assert.equal((slice.endpoints as unknown[]).length, 2);
    assert.deepEqual(get<KubeObject>(store, RESOURCES.endpoints, 'external')?.subsets, [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ port: 5432, protocol: 'TCP' }] }]);

    store.delete(RESOURCES.services, NS, 'web');
    await waitFor(store, 'endpoints and slices gone', () => !get(store, RESOURCES.endpoints, 'web') && store.list(RESOURCES.endpointslices, NS).length === 0);
    assert.ok(get(store, RESOURCES.endpoints, 'external'), 'selectorless Endpoints stay');
    // Endpoints written before their Service are not mistaken for leftovers.
    store.create(RESOURCES.endpoints, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'later', namespace: NS }, subsets: [{ addresses: [{ ip: '192.0.2.2' }] }] });
    // The controllers' queue runs in the next turn of the event loop; let it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.ok(get(store, RESOURCES.endpoints, 'later'), 'Endpoints without a Service stay');
  });

  it('collects ReplicaSets and pods when their Deployment is deleted, and schedules bare pods', async () => {
    store.create(RESOURCES.deployments, deploymentObject('web', 2));
    await waitFor(store, 'rollout', () => rolledOut(store, 'web'));
    store.create(RESOURCES.pods, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare', namespace: NS, labels: { app: 'bare' } },
      spec: { containers: [{ name: 'c', image: 'shell' }] },
    });
    await waitFor(store, 'bare pod scheduled and running', () => (get<Pod>(store, RESOURCES.pods, 'bare')?.status?.phase === 'Running'));
    assert.equal(get<Pod>(store, RESOURCES.pods, 'bare')?.spec.nodeName, 'kt-node');
    store.delete(RESOURCES.deployments, NS, 'web');
    await waitFor(store, 'dependents gone', () => store.list(RESOURCES.replicasets, NS).length === 0 && podsOf(store, 'web').length === 0);
    assert.ok(get(store, RESOURCES.pods, 'bare'), 'a pod without owner stays');
    assert.ok(log.some((l) => l.startsWith('gc: deleting replicasets.apps')), log.join('\n'));
  });

  it('empties a Terminating namespace, then removes it', async () => {
    store.create(RESOURCES.deployments, deploymentObject('web', 1));
    await waitFor(store, 'rollout', () => rolledOut(store, 'web'));
    store.create(RESOURCES.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: NS }, data: {} });
    // As `kubectl delete namespace` does: the API server marks it Terminating.
    deleteObject(store, resourceByKey(RESOURCES.namespaces)!, undefined, NS, {});
    assert.ok(store.get(RESOURCES.namespaces, undefined, NS)?.metadata.deletionTimestamp);
    await waitFor(store, 'namespace gone', () => !store.get(RESOURCES.namespaces, undefined, NS));
    for (const r of [RESOURCES.deployments, RESOURCES.replicasets, RESOURCES.pods, RESOURCES.configmaps]) assert.deepEqual(store.list(r, NS), [], r);
  });
});
