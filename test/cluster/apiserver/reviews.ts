// authorization.k8s.io/v1 self-reviews (`kubectl auth can-i`, and clients that
// check their permissions first). The test cluster authorizes everything, as
// a real API server does with --authorization-mode=AlwaysAllow, so every
// review is allowed. Reviews are answered, never stored.
import type { Request } from './context.ts';
import { parseJson, readBody, sendJson } from './http.ts';
import { RESOURCES } from './resources.ts';
import { badRequest, methodNotAllowed } from './status.ts';
import { checkKind } from './objects.ts';

export function isReview(key: string): boolean {
  return key === RESOURCES.selfsubjectaccessreviews || key === RESOURCES.selfsubjectrulesreviews;
}

export async function handleReview(r: Request): Promise<void> {
  if (r.method !== 'POST' || r.target.name !== undefined) throw methodNotAllowed();
  const review = checkKind(r.target.def, parseJson(await readBody(r.req)));
  const spec = review.spec;
  if (spec === null || typeof spec !== 'object') throw badRequest(`${r.target.def.kind} needs a spec`);
  if (r.target.def.key === RESOURCES.selfsubjectaccessreviews) {
    review.status = { allowed: true, reason: 'the test cluster authorizes every request (AlwaysAllow)' };
  } else {
    review.status = {
      resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
      nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      incomplete: false,
    };
  }
  sendJson(r.res, 201, review);
}
