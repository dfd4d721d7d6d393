// The cluster's certificates, as kubeadm lays them out: one CA; a serving
// certificate for the API server and one for the node's kubelet API; a
// client certificate per identity (the admin in system:masters, the limited
// user `dev`, the controller manager, the scheduler, the API server towards
// the kubelet); and the key pair that signs ServiceAccount tokens.
// ECDSA P-256 throughout: quick to make with openssl, accepted by every part.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runResult } from '../net/run.ts';

export interface Identity {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  caFile: string;
  ca: string;
  /** Client identities, by name. */
  clients: Record<'admin' | 'dev' | 'controllerManager' | 'scheduler' | 'kubeletClient' | 'node', Identity & { certFile: string; keyFile: string }>;
  apiserver: { certFile: string; keyFile: string };
  kubelet: Identity;
  saKeyFile: string;
  saPubFile: string;
}

async function openssl(args: string[], input?: string): Promise<void> {
  const r = await runResult('openssl', args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.trim()}`);
}

async function key(file: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

/** A certificate signed by the CA; `ext` is the X.509 v3 extension section. */
async function issue(dir: string, name: string, subject: string, ext: string): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  await key(keyFile);
  await openssl(['req', '-new', '-key', keyFile, '-subj', subject, '-out', csr]);
  writeFileSync(extFile, `${ext}\n`);
  await openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    // A random serial per certificate: -CAcreateserial's file races when several are issued at once.
    '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-days', '30', '-sha256', '-extfile', extFile, '-out', certFile]);
  return { certFile, keyFile };
}

const CLIENT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth';
const SERVER = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth';

export async function makePki(dir: string, o: { apiIps: string[]; nodeName: string; clusterDomain: string }): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  await key(join(dir, 'ca.key'));
  await openssl(['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-subj', '/CN=kt-test-cluster-ca', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', join(dir, 'ca.crt')]);
  const names = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${o.clusterDomain}`, 'localhost'];
  const san = [...o.apiIps.map((ip) => `IP:${ip}`), ...names.map((n) => `DNS:${n}`)].join(',');
  const [apiserver, kubelet, admin, dev, controllerManager, scheduler, kubeletClient, node] = await Promise.all([
    issue(dir, 'apiserver', '/CN=kube-apiserver', `${SERVER}\nsubjectAltName=${san}`),
    issue(dir, 'kubelet', `/CN=${o.nodeName}`, `${SERVER}\nsubjectAltName=IP:127.0.0.1,DNS:${o.nodeName}`),
    issue(dir, 'admin', '/O=system:masters/CN=kubernetes-admin', CLIENT),
    issue(dir, 'dev', '/CN=dev', CLIENT),
    issue(dir, 'controller-manager', '/CN=system:kube-controller-manager', CLIENT),
    issue(dir, 'scheduler', '/CN=system:kube-scheduler', CLIENT),
    issue(dir, 'apiserver-kubelet-client', '/CN=kube-apiserver-kubelet-client', CLIENT),
    issue(dir, 'node', `/O=system:nodes/CN=system:node:${o.nodeName}`, CLIENT),
  ]);
  await key(join(dir, 'sa.key'));
  await openssl(['pkey', '-in', join(dir, 'sa.key'), '-pubout', '-out', join(dir, 'sa.pub')]);
  const read = (p: { certFile: string; keyFile: string }): Identity & { certFile: string; keyFile: string } =>
    ({ ...p, cert: readFileSync(p.certFile, 'utf8'), key: readFileSync(p.keyFile, 'utf8') });
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    clients: {
      admin: read(admin), dev: read(dev), controllerManager: read(controllerManager), scheduler: read(scheduler),
      kubeletClient: read(kubeletClient), node: read(node),
    },
    apiserver,
    kubelet: read(kubelet),
    saKeyFile: join(dir, 'sa.key'),
    saPubFile: join(dir, 'sa.pub'),
  };
}

/** A kubeconfig with the certificate and key inline, so one file is all a client needs. */
export function kubeconfigYaml(o: { name: string; server: string; ca: string; user: string; id: Identity; namespace?: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${o.name}`,
    '  cluster:',
    `    server: ${o.server}`,
    `    certificate-authority-data: ${b64(o.ca)}`,
    'contexts:',
    `- name: ${o.user}@${o.name}`,
    '  context:',
    `    cluster: ${o.name}`,
    `    user: ${o.user}`,
    `    namespace: ${o.namespace ?? 'default'}`,
    `current-context: ${o.user}@${o.name}`,
    'preferences: {}',
    'users:',
    `- name: ${o.user}`,
    '  user:',
    `    client-certificate-data: ${b64(o.id.cert)}`,
    `    client-key-data: ${b64(o.id.key)}`,
    '',
  ].join('\n');
}
