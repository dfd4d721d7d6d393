// argv → parsed options → command → printed result → exit status. Pure of
// process globals: main.ts passes stdout, env, the abort signal and the clock,
// and is the only place that exits.
import { debuglog } from 'node:util';
import { parseArgv, type Table } from './args.ts';
import { TABLE } from './cli.ts';
import type { BaseDeps, Deps } from './deps.ts';
import { toKtError } from './errors.ts';
import { apiFor, type KubeApi } from './kube/api.ts';
import { clientConfig, loadKubeconfig, resolveTarget, type KubeTarget } from './kube/config.ts';
import { debugDetails, errorLine, render } from './output.ts';

const nodeDebug = debuglog('kt');

export async function run(argv: readonly string[], base: BaseDeps, table: Table = TABLE): Promise<number> {
  // Known before parsing, so that even a parse failure can show its stack.
  let debug = argv.includes('--debug');
  try {
    const { name, options } = parseArgv(argv, table);
    debug = options.debug;
    const deps = makeDeps(base, options, table);
    const mod = await table.loaders[name]();
    const data = await mod.run(options, deps);
    base.out.write(render(data, options.output, mod.text && ((d) => mod.text!(d, options))));
    return mod.exitCode?.(data) ?? 0;
  } catch (e) {
    const err = toKtError(e);
    base.err.write(errorLine(err));
    if (debug) base.err.write(debugDetails(err));
    return err.exitCode;
  }
}

function makeDeps(base: BaseDeps, opts: { kubeconfig?: string; context?: string; namespace?: string; debug: boolean }, table: Table): Deps {
  let target: Promise<KubeTarget> | undefined;
  let api: Promise<KubeApi> | undefined;
  const kube = (): Promise<KubeTarget> => (target ??= loadKubeconfig({ kubeconfig: opts.kubeconfig, env: base.env })
    .then((kc) => resolveTarget(kc, { context: opts.context, namespace: opts.namespace })));
  return {
    ...base,
    kube,
    api: () => (api ??= kube().then(clientConfig).then(apiFor)),
    debug: opts.debug ? (m) => base.err.write(`kt: ${m}\n`) : (m) => nodeDebug(m),
    table,
  };
}
