// Images → commands. There is no container runtime here: a few image names
// stand for programs of this repository, `shell` runs the given command on
// this machine, and every other image fails to pull, as an unknown image
// would. Pure: no I/O.

export interface ImageRef {
  /** Registry host, when the reference names one. */
  registry?: string;
  /** The repository path without registry, e.g. "kubectl-kt/kt-proxy". */
  path: string;
  tag?: string;
  digest?: string;
}

/** Split an image reference as the Docker reference grammar does. */
export function parseImage(image: string): ImageRef {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  // The first component is a registry when it looks like a host.
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    return { registry: first, path: rest.slice(slash + 1), tag, digest };
  }
  return { path: rest, tag, digest };
}

export interface ContainerLike {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: { containerPort: number; name?: string; protocol?: string }[];
}

export interface ImageContext {
  /** The repository root (dist/ and test/ live there). */
  root: string;
  /** The Node 26 binary. */
  node: string;
}

export type ImageResolution =
  | { ok: true; kind: 'proxy' | 'echo' | 'dns' | 'shell'; command: string[]; env: Record<string, string> }
  | { ok: false; reason: 'ErrImagePull' | 'CreateContainerConfigError'; message: string };

function lastComponent(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function resolveImage(c: ContainerLike, ctx: ImageContext): ImageResolution {
  const image = c.image ?? '';
  const ref = parseImage(image);
  const args = c.args ?? [];
  if (lastComponent(ref.path) === 'kt-proxy') {
    // The image's entrypoint is kt-proxy; a command naming it keeps its
    // arguments, any other command replaces the entrypoint as in a real image.
    const cmd = c.command;
    if (cmd && cmd.length > 0 && lastComponent(cmd[0]) !== 'kt-proxy') return { ok: true, kind: 'proxy', command: [...cmd, ...args], env: {} };
    return { ok: true, kind: 'proxy', command: [ctx.node, `${ctx.root}/dist/kt-proxy.cjs`, ...(cmd ?? []).slice(1), ...args], env: {} };
  }
  if (ref.path === 'kt-demo/echo' || ref.path.endsWith('/kt-demo/echo')) {
    const port = c.ports?.[0]?.containerPort ?? 8080;
    return { ok: true, kind: 'echo', command: [ctx.node, `${ctx.root}/test/fixtures/echo/server.ts`, ...args], env: { PORT: String(port) } };
  }
  if (ref.path === 'kt-test/dns' || ref.path.endsWith('/kt-test/dns')) {
    return { ok: true, kind: 'dns', command: [ctx.node, `${ctx.root}/test/cluster/dns/main.ts`, ...args], env: {} };
  }
  if (ref.path === 'shell' && !ref.registry) {
    const cmd = [...(c.command ?? []), ...args];
    if (cmd.length === 0) return { ok: false, reason: 'CreateContainerConfigError', message: 'image "shell" needs a command' };
    return { ok: true, kind: 'shell', command: cmd, env: {} };
  }
  return {
    ok: false,
    reason: 'ErrImagePull',
    message: `failed to pull and unpack image "${image}": this test cluster runs only kt-proxy, kt-demo/echo, kt-test/dns and shell images`,
  };
}
