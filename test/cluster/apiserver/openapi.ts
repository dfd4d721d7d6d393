// An OpenAPI v3 stub: the index and one document per group/version holding the
// paths and operations, without schemas. It is what kubectl needs: its
// validation asks whether the PATCH operation of a kind takes the
// `fieldValidation` query parameter (then it leaves validation to the server,
// instead of downloading the v2 schema), and `apply` reads the PATCH
// operation's request body types (absent here, so it computes strategic merge
// patches from its compiled-in types). /openapi/v2 is not served (404).
import { createHash } from 'node:crypto';
import { GROUP_VERSIONS, RESOURCE_DEFS, type ResourceDef } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function param(name: string, description: string): unknown {
  return { name, in: 'query', description, schema: { type: 'string', uniqueItems: true } };
}

const WRITE_PARAMS = [
  param('dryRun', 'When present, indicates that modifications should not be persisted.'),
  param('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  param('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.'),
];

function op(action: string, def: ResourceDef, id: string, params: unknown[] = []): unknown {
  return {
    operationId: id,
    parameters: params,
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: def.group, version: def.version, kind: def.kind },
  };
}

function pathsFor(def: ResourceDef): Record<string, unknown> {
  const base = `/${gvPath(def.group, def.version)}`;
  const coll = def.namespaced ? `${base}/namespaces/{namespace}/${def.plural}` : `${base}/${def.plural}`;
  const id = `${def.kind}`;
  return {
    [coll]: {
      get: op('list', def, `list${id}`),
      post: op('post', def, `create${id}`, WRITE_PARAMS),
    },
    [`${coll}/{name}`]: {
      get: op('get', def, `read${id}`),
      put: op('put', def, `replace${id}`, WRITE_PARAMS),
      patch: op('patch', def, `patch${id}`, [...WRITE_PARAMS, param('force', 'Force is going to "force" Apply requests.')]),
      delete: op('delete', def, `delete${id}`),
    },
  };
}

export function openApiDocument(group: string, version: string, gitVersion: string): unknown | undefined {
  if (!GROUP_VERSIONS.some((g) => g.group === group && g.version === version)) return undefined;
  const paths = Object.assign({}, ...RESOURCE_DEFS.filter((d) => d.group === group && d.version === version).map(pathsFor));
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: gitVersion }, paths, components: { schemas: {} } };
}

export function openApiIndex(gitVersion: string): unknown {
  const paths: Record<string, unknown> = {};
  for (const g of GROUP_VERSIONS) {
    const p = gvPath(g.group, g.version);
    const hash = createHash('sha512').update(JSON.stringify(openApiDocument(g.group, g.version, gitVersion))).digest('hex').slice(0, 128).toUpperCase();
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

/** The group/version named by /openapi/v3/api/v1 or /openapi/v3/apis/apps/v1. */
export function openApiTarget(path: string): { group: string; version: string } | undefined {
  const m = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
  if (!m) return undefined;
  return m[1] ? { group: '', version: m[1] } : { group: m[2], version: m[3] };
}
