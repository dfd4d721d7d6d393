// A list or watch request's label and field selectors, parsed once.
import type { KubeObject } from '../store.ts';
import type { ResourceDef } from './resources.ts';
import { checkFields, matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';

export interface Filter {
  labels: ReturnType<typeof parseLabelSelector>;
  fields: ReturnType<typeof parseFieldSelector>;
}

export function parseFilter(def: ResourceDef, query: URLSearchParams): Filter {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(query.get('fieldSelector') ?? '');
  checkFields(def.key, fields);
  return { labels, fields };
}

export function matches(f: Filter, obj: KubeObject): boolean {
  return matchLabels(f.labels, obj.metadata.labels) && matchFields(f.fields, obj);
}

