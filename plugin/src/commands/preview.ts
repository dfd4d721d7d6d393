// `kubectl kt preview NAME --expose LOCAL[:PORT]`: a new Service NAME in the
// cluster that reaches local ports. A shadow proxy pod listens on each port
// (an SSH reverse forward, re-registered after every reconnect) and the
// Service selects that pod by its session label.
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { fromApiError, ktError } from '../errors.ts';
import type { KubeApi } from '../kube/api.ts';
import { ANNOTATIONS, LABELS, MANAGED_BY, PORTS } from '../../../contract/protocol.ts';
import { ProxySession } from '../session/proxy-session.ts';
import { progressPrinter } from '../session/progress.ts';
import type { Tunnel } from '../tunnel/index.ts';

export interface PreviewResult {
  namespace: string;
  service: string;
  ports: { local: number; port: number }[];
  url: string;
}

/**
 * The pod port behind each Service port. The proxy runs as non-root, which
 * may not bind ports below 1024, and it has its own SSH and DNS ports on the
 * pod's loopback: those Service ports point at a high port in the pod
 * instead (20000 + port where that is free, else the next free one).
 */
export function podPorts(servicePorts: readonly number[]): Map<number, number> {
  const reserved = new Set<number>([PORTS.ssh, PORTS.dns]);
  const out = new Map<number, number>();
  const used = new Set<number>(reserved);
  for (const p of servicePorts) {
    if (p >= 1024 && !reserved.has(p)) {
      out.set(p, p);
      used.add(p);
    }
  }
  for (const p of servicePorts) {
    if (out.has(p)) continue;
    let c = 20000 + p <= 65535 ? 20000 + p : 20000;
    while (used.has(c)) c = c >= 65535 ? 20000 : c + 1;
    out.set(p, c);
    used.add(c);
  }
  return out;
}

export async function run(opts: OptionsOf<'preview'>, deps: Deps): Promise<PreviewResult> {
  const target = await deps.kube();
  const api = await deps.api();
  const { namespace } = target;
  const progress = progressPrinter(deps.err, deps.clock.now);
  const ports = opts.expose.map((e) => ({ local: e.local, port: e.remote }));
  const inPod = podPorts(ports.map((p) => p.port));
  const podPort = (servicePort: number): number => inPod.get(servicePort) as number;
  const session = new ProxySession({
    api,
    namespace,
    image: opts.image,
    role: 'shadow',
    kind: 'preview',
    labels: { [LABELS.target]: opts.name },
    ports: ports.map((p) => ({ name: `p${p.port}`, containerPort: podPort(p.port) })),
    progress,
    debug: deps.debug,
    signal: deps.signal,
  });
  const { core } = api;
  let serviceCreated = false;
  const forward = async (t: Tunnel): Promise<void> => {
    for (const p of ports) await t.forwardIn('0.0.0.0', podPort(p.port), { host: '127.0.0.1', port: p.local });
  };
  try {
    const tunnel = await session.start();
    await forward(tunnel);
    session.on('up', (t) => {
      forward(t).catch((err: Error) => progress.note(`cannot re-register the preview ports: ${err.message}`));
    });
    const done = progress.step(`creating service ${namespace}/${opts.name}`);
    try {
      await core.createNamespacedService({
        namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: {
            name: opts.name,
            namespace,
            labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: session.id, [LABELS.role]: 'preview' },
            annotations: { [ANNOTATIONS.owner]: session.owner, [ANNOTATIONS.kind]: 'preview', [ANNOTATIONS.since]: session.since },
          },
          spec: {
            selector: { [LABELS.session]: session.id, [LABELS.target]: opts.name },
            ports: ports.map((p) => ({ name: `p${p.port}`, port: p.port, targetPort: podPort(p.port), protocol: 'TCP' })),
          },
        },
      });
    } catch (err) {
      throw fromApiError(err, { verb: 'create', resource: 'services', namespace, name: opts.name });
    }
    serviceCreated = true;
    // Traffic reaches the Service only once its Endpoints list the proxy pod.
    await waitForEndpoints(api, namespace, opts.name, deps.signal);
    done();
    const url = `http://${opts.name}.${namespace}.svc.cluster.local:${ports[0].port}/`;
    deps.err.write(`previewing: ${ports.map((p) => `${opts.name}:${p.port} -> localhost:${p.local}`).join(', ')} (try ${url} from a pod); Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => (deps.signal.aborted ? resolve() : deps.signal.addEventListener('abort', () => resolve(), { once: true })));
    return { namespace, service: opts.name, ports, url };
  } finally {
    if (serviceCreated) {
      await core.deleteNamespacedService({ namespace, name: opts.name }).catch((err: Error) => progress.note(`could not delete service ${namespace}/${opts.name}: ${err.message}; \`kubectl kt clean\` removes it`));
    }
    await session.close();
  }
}

export function text(data: unknown): string {
  const r = data as PreviewResult;
  return `preview ${r.namespace}/${r.service} removed`;
}

async function waitForEndpoints(api: KubeApi, namespace: string, name: string, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let ctrl: AbortController | undefined;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ctrl?.abort();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(ktError('KT_ERR_TIMEOUT', { what: `endpoints of service ${namespace}/${name}`, seconds: 60 })), 60_000);
    signal.addEventListener('abort', () => finish(ktError('KT_ERR_INTERRUPTED', { what: `endpoints of service ${namespace}/${name}` })), { once: true });
    api.watch.watch(`/api/v1/namespaces/${namespace}/endpoints`, { fieldSelector: `metadata.name=${name}` }, (_type: string, ep: { subsets?: { addresses?: unknown[] }[] }) => {
      if (ep.subsets?.some((s) => (s.addresses?.length ?? 0) > 0)) finish();
    }, (err: unknown) => {
      if (err) finish(fromApiError(err, { verb: 'watch', resource: 'endpoints', namespace, name }));
    }).then((c) => {
      ctrl = c;
      if (done) c.abort();
    }, (err: unknown) => finish(fromApiError(err, { verb: 'watch', resource: 'endpoints', namespace, name })));
  });
}
