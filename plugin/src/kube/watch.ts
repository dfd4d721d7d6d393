// A long-lived watch of one object by name that survives the API server
// going away: it resumes from the last resourceVersion it saw, so nothing
// that happened while it was disconnected is missed (the API server replays
// the events after that version), and when that version is too old (410
// Gone, etcd compacted it) it starts afresh and reads the object once, so a
// deletion it did not see still arrives as DELETED. This is what client-go's
// reflector does (list, then watch from the list's resourceVersion; relist
// on 410): https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
import { apiStatus } from '../errors.ts';
import type { KubeApi } from './api.ts';

export interface WatchByNameOptions {
  api: KubeApi;
  /** The collection, e.g. /api/v1/namespaces/shop/pods. */
  path: string;
  name: string;
  onEvent(type: string, obj: unknown): void;
  stopped(): boolean;
  debug(msg: string): void;
  /**
   * Reads the object now (undefined when it does not exist). Given, a fresh
   * start (the first, or after 410) that finds the object gone reports
   * DELETED for an object seen before.
   */
  read?: () => Promise<unknown>;
  /** Delay before a watch that ended with an error is opened again. Default 500 ms. */
  retryMs?: number;
}

interface Versioned {
  metadata?: { resourceVersion?: string; name?: string };
  code?: number;
}

/** Starts watching; returns stop(). */
export async function watchByName(o: WatchByNameOptions): Promise<() => void> {
  const watch = o.api.watch;
  let ctrl: AbortController | undefined;
  let retry: NodeJS.Timeout | undefined;
  let version: string | undefined;
  let seen = false;
  const retryMs = o.retryMs ?? 500;

  const again = (ms: number): void => {
    if (!o.stopped()) retry = setTimeout(() => void start(), ms);
  };

  const start = async (): Promise<void> => {
    if (o.stopped()) return;
    const fresh = version === undefined;
    if (fresh && seen && o.read) {
      const now = await o.read().catch((err: unknown) => {
        o.debug(`watch ${o.path} ${o.name}: read failed: ${(err as Error).message}`);
        return null;
      });
      if (now === null) return again(retryMs);
      if (now === undefined) {
        seen = false;
        o.onEvent('DELETED', { metadata: { name: o.name } });
      }
      if (o.stopped()) return;
    }
    let expired = false;
    const query: Record<string, string> = { fieldSelector: `metadata.name=${o.name}`, allowWatchBookmarks: 'true' };
    if (version !== undefined) query.resourceVersion = version;
    if (!fresh) o.debug(`watch ${o.path} ${o.name}: resuming at resourceVersion ${version}`);
    watch.watch(o.path, query, (type: string, obj: Versioned) => {
      if (type === 'ERROR') {
        // 410 Gone: the version is older than what etcd keeps; start afresh.
        if (apiStatus(obj) === 410) expired = true;
        o.debug(`watch ${o.path} ${o.name}: error event ${JSON.stringify(obj).slice(0, 200)}`);
        return;
      }
      const rv = obj.metadata?.resourceVersion;
      if (rv) version = rv;
      if (type === 'BOOKMARK') return;
      seen = type !== 'DELETED';
      o.onEvent(type, obj);
    }, (err: unknown) => {
      if (o.stopped()) return;
      if (expired || apiStatus(err) === 410) {
        o.debug(`watch ${o.path} ${o.name}: resourceVersion ${version} expired (410); starting afresh`);
        version = undefined;
      }
      o.debug(`watch ${o.path} ${o.name} ended${err ? `: ${(err as Error).message}` : ''}; again`);
      again(err ? retryMs : 0);
    }).then((c) => {
      ctrl = c;
      if (o.stopped()) c.abort();
    }, (err: unknown) => {
      o.debug(`watch ${o.path} ${o.name} failed: ${(err as Error).message}`);
      again(retryMs * 2);
    });
  };
  await start();
  return () => {
    clearTimeout(retry);
    ctrl?.abort();
  };
}
