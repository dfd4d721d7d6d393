// The gRPC side of the router tests: a server for kt-echo.proto that names
// itself in every reply (and in trailers), and a client constructor.
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../fixtures/grpc/kt-echo.proto', import.meta.url));

export interface Req {
  text: string;
  n: number;
}
export interface Reply {
  pod: string;
  text: string;
  i: number;
}

type Ctor = new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & {
  Who(req: Req, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, r: Reply) => void): void;
  Who(req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r: Reply) => void): void;
  Count(req: Req, md: grpc.Metadata): grpc.ClientReadableStream<Reply>;
  Chat(md: grpc.Metadata): grpc.ClientDuplexStream<Req, Reply>;
};

function load(): { service: grpc.ServiceDefinition; Client: Ctor } {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { ktecho: { Echo: Ctor & { service: grpc.ServiceDefinition } } };
  return { service: pkg.ktecho.Echo.service, Client: pkg.ktecho.Echo };
}

export async function grpcServer(pod: string, listen: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<{ port: number; close(): Promise<void> }> {
  const { service } = load();
  const server = new grpc.Server();
  const trailer = () => {
    const md = new grpc.Metadata();
    md.set('x-pod', pod);
    return md;
  };
  server.addService(service, {
    Who: (call: grpc.ServerUnaryCall<Req, Reply>, cb: grpc.sendUnaryData<Reply>) => {
      if (call.request.text === 'fail') {
        cb({ code: grpc.status.NOT_FOUND, details: `no such thing at ${pod}`, metadata: trailer() });
        return;
      }
      cb(null, { pod, text: call.request.text, i: 0 }, trailer());
    },
    Count: (call: grpc.ServerWritableStream<Req, Reply>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ pod, text: call.request.text, i });
      call.end(trailer());
    },
    Chat: (call: grpc.ServerDuplexStream<Req, Reply>) => {
      let i = 0;
      call.on('data', (r: Req) => call.write({ pod, text: r.text, i: i++ }));
      call.on('end', () => call.end(trailer()));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${listen.host}:${listen.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

export function grpcClient(port: number, host = '127.0.0.1') {
  const { Client } = load();
  return new Client(`${host}:${port}`, grpc.credentials.createInsecure());
}

export { grpc };
