// Errors as the real API server sends them: a `Status` object whose reason,
// code and message are what kubectl prints ("Error from server (NotFound):
// pods "x" not found"). Handlers throw ApiError; the router writes it.
import { StoreError } from '../store.ts';
import { KubeletError } from '../types.ts';

export type Reason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'Expired'
  | 'Gone'
  | 'Forbidden'
  | 'UnsupportedMediaType'
  | 'NotAcceptable'
  | 'InternalError'
  | 'ServiceUnavailable';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: Reason;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: Reason;
  readonly details?: StatusDetails;
  constructor(code: number, reason: Reason, message: string, details?: StatusDetails) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Status {
    const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** "pods" or "deployments.apps": how the API server names a resource in messages. */
export function qualified(plural: string, group: string): string {
  return group ? `${plural}.${group}` : plural;
}

export function notFound(plural: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(plural, group)} "${name}" not found`, details(plural, group, name));
}

export function alreadyExists(plural: string, group: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(plural, group)} "${name}" already exists`, details(plural, group, name));
}

export function conflict(plural: string, group: string, name: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(plural, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details(plural, group, name),
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function methodNotAllowed(message = 'the server does not allow this method on the requested resource'): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message);
}

/** The 410 a watch or list gets for a resourceVersion older than the history. */
export function expired(message = 'too old resource version'): ApiError {
  return new ApiError(410, 'Expired', message);
}

export interface FieldError {
  /** e.g. FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden */
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueDuplicate' | 'FieldValueForbidden';
  field: string;
  /** The detail after the field ("Invalid value: \"X\": must be ..."). */
  message: string;
}

/** 422 `Kind "name" is invalid: field: Invalid value: ...`, as field.ErrorList.ToAggregate prints it. */
export function invalid(kind: string, group: string, name: string, errs: FieldError[]): ApiError {
  const parts = errs.map((e) => `${e.field}: ${e.message}`);
  const joined = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${joined}`, {
    name,
    group: group || undefined,
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
  });
}

function details(plural: string, group: string, name: string): StatusDetails {
  return group ? { name, group, kind: plural } : { name, kind: plural };
}

/** Any error thrown while serving a request, as the Status to send. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) {
    const dot = err.resource.indexOf('.');
    const plural = dot < 0 ? err.resource : err.resource.slice(0, dot);
    const group = dot < 0 ? '' : err.resource.slice(dot + 1);
    if (err.reason === 'NotFound') return notFound(plural, group, err.objName);
    if (err.reason === 'AlreadyExists') return alreadyExists(plural, group, err.objName);
    return conflict(plural, group, err.objName);
  }
  if (err instanceof KubeletError) {
    const reason: Reason = err.code === 404 ? 'NotFound' : err.code === 400 ? 'BadRequest' : 'InternalError';
    return new ApiError(err.code, reason, err.message);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`);
}
