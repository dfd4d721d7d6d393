import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unknownFields } from './fieldvalidation.ts';
import { resourceByKey, RESOURCES } from './resources.ts';

const deployments = resourceByKey(RESOURCES.deployments);
const pods = resourceByKey(RESOURCES.pods);

test('field validation: a full pod spec has no unknown fields (inline structs flattened)', () => {
  assert.ok(pods);
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { a: 'b' }, annotations: {}, ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', controller: true }] },
    spec: {
      containers: [
        {
          name: 'c',
          image: 'i',
          ports: [{ containerPort: 80, name: 'http', protocol: 'TCP' }],
          env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k', optional: true } } }, { name: 'B', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
          envFrom: [{ configMapRef: { name: 'cm' } }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          livenessProbe: { exec: { command: ['true'] } },
          resources: { limits: { cpu: '1', memory: '1Gi' } },
          securityContext: { runAsUser: 1000, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'v', mountPath: '/v' }],
        },
      ],
      volumes: [{ name: 'v', emptyDir: {} }, { name: 'w', configMap: { name: 'cm', defaultMode: 420 } }],
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
  };
  assert.deepEqual(unknownFields(pods, pod), []);
});

test('field validation: unknown fields are reported by path, patch directives are not', () => {
  assert.ok(deployments);
  const d = { spec: { replicaz: 1, template: { spec: { containers: [{ name: 'a' }, { name: 'b', imagee: 'x' }] } } }, extra: true };
  assert.deepEqual(unknownFields(deployments, d), ['spec.replicaz', 'spec.template.spec.containers[1].imagee', 'extra']);
  const smp = { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'a', $patch: 'delete' }] } } } };
  assert.deepEqual(unknownFields(deployments, smp, true), []);
  assert.deepEqual(unknownFields(deployments, smp, false), ['spec.template.spec.$setElementOrder/containers', 'spec.template.spec.containers[0].$patch']);
});
