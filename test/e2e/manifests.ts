// Pieces of the YAML the E2E tests and benches apply: the demo echo app as a
// Deployment with its Service, and the client pod requests are sent from
// (Pod Security "restricted": non-root, no privilege escalation, no capabilities).

/** Service NAME (port 80 → 8080) and Deployment NAME of the demo echo app, with a readiness probe. */
export function echoApp(ns: string, name: string, replicas = 2): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: echo
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        image: kt-demo/echo
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}`;
}

/** Pod `client` that sleeps: the tests exec curl and node in it. */
export function clientPod(ns: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${ns}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: shell, image: shell, command: [sleep, infinity], securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}`;
}
