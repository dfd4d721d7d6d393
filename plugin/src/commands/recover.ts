// `kubectl kt recover svc/NAME`: put one Service back exactly as it was
// before exchange or mesh — whoever holds it, alive or not.
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';
import { restoreService, type RestoreResult } from '../kube/restore.ts';

export async function run(opts: OptionsOf<'recover'>, deps: Deps): Promise<RestoreResult> {
  const target = await deps.kube();
  return await restoreService(await deps.api(), { namespace: target.namespace, name: opts.service }, { dryRun: false, strict: true });
}

export function text(data: unknown): string {
  const r = data as RestoreResult;
  return [...r.actions.map((a) => `✓ ${a}`), `service ${r.namespace}/${r.service} is served by its own pods again`].join('\n');
}
