// podFailure: which pod states end a wait for a proxy or router pod. A router
// the Service was switched to has run and served; its container in crash-loop
// back-off (killed, as by the OOM killer, the kubelet restarting it while the
// standby serves) is waited through by a developer who joins it, while a new
// pod in crash-loop back-off, or one whose image cannot be pulled, fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { podFailure } from '../../plugin/src/kube/pods.ts';

const waiting = (reason: string): V1Pod => ({
  status: {
    phase: 'Running',
    containerStatuses: [
      { name: 'kt-proxy', image: 'kt', imageID: '', ready: false, restartCount: 2, state: { waiting: { reason, message: 'back-off 10s restarting failed container' } }, lastState: { terminated: { exitCode: 137, reason: 'Error' } } },
      { name: 'kt-standby', image: 'kt', imageID: '', ready: true, restartCount: 0, state: { running: {} } },
    ],
  },
});

test('podFailure: crash-loop back-off fails a new pod, and is a restart to wait through for a router that served', () => {
  assert.match(podFailure(waiting('CrashLoopBackOff')) ?? '', /container kt-proxy: CrashLoopBackOff/);
  assert.equal(podFailure(waiting('CrashLoopBackOff'), true), undefined);
});

test('podFailure: an image that cannot be pulled, or a pod that ended, fails even a router that served', () => {
  assert.match(podFailure(waiting('ImagePullBackOff'), true) ?? '', /ImagePullBackOff/);
  assert.match(podFailure({ status: { phase: 'Succeeded', containerStatuses: [] } }, true) ?? '', /the pod ended \(Succeeded\)/);
  assert.equal(podFailure({ status: { phase: 'Running', containerStatuses: [] } }), undefined);
});
