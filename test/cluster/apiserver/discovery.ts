// Discovery documents: /version, /api, /apis, and the APIResourceList of each
// group/version, in the unaggregated form. kubectl 1.32 asks for the aggregated
// form (apidiscovery.k8s.io/v2) first and takes the plain one when the reply's
// Content-Type is plain application/json.
import { GROUP_VERSIONS, RESOURCE_DEFS, type ResourceDef } from './resources.ts';

export function versionInfo(v: { major: string; minor: string; gitVersion: string }): Record<string, string> {
  return {
    major: v.major,
    minor: v.minor,
    gitVersion: v.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-04-22T00:00:00Z',
    goVersion: 'go1.23.8',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): unknown {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(group: string): unknown {
  const versions = GROUP_VERSIONS.filter((g) => g.group === group).map((g) => ({ groupVersion: `${group}/${g.version}`, version: g.version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(): unknown {
  const groups = [...new Set(GROUP_VERSIONS.filter((g) => g.group !== '').map((g) => g.group))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupEntry) };
}

export function apiGroup(group: string): unknown | undefined {
  if (!GROUP_VERSIONS.some((g) => g.group === group && group !== '')) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...(groupEntry(group) as object) };
}

function entries(def: ResourceDef): unknown[] {
  const main: Record<string, unknown> = {
    name: def.plural,
    singularName: def.singular,
    namespaced: def.namespaced,
    kind: def.kind,
    verbs: def.verbs,
  };
  if (def.shortNames) main.shortNames = def.shortNames;
  if (def.categories) main.categories = def.categories;
  const subs = def.subresources.map((s) => {
    const e: Record<string, unknown> = { name: `${def.plural}/${s.name}`, singularName: '', namespaced: def.namespaced, kind: s.kind, verbs: s.verbs };
    if (s.group) e.group = s.group;
    if (s.version) e.version = s.version;
    return e;
  });
  return [main, ...subs];
}

export function apiResourceList(group: string, version: string): unknown | undefined {
  if (!GROUP_VERSIONS.some((g) => g.group === group && g.version === version)) return undefined;
  const resources = RESOURCE_DEFS.filter((d) => d.group === group && d.version === version).flatMap(entries);
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}
