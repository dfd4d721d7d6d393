// What every handler gets: the cluster's store and kubelet, the options the
// server was started with, and the parsed request target.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../store.ts';
import type { KubeletHooks } from '../types.ts';
import type { ResourceDef } from './resources.ts';

export interface ServerContext {
  store: Store;
  kubelet: KubeletHooks;
  serviceCidr: string;
  version: { major: string; minor: string; gitVersion: string };
  /** Open watch and log-follow responses, ended when the server closes. */
  streams: Set<ServerResponse>;
  debug: (msg: string) => void;
}

/** A request for a resource: /api/v1/namespaces/NS/pods/NAME/SUB, parsed. */
export interface Target {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  query: URLSearchParams;
  target: Target;
}
