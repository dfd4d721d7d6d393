// The few ssh2 1.17 internals this project relies on, in one place so an
// upgrade has one file to re-check. ssh2 has no public API for (a) answering a
// custom global request with data on the server, (b) sending one from the
// client, (c) opening a channel of a type it does not know, (d) telling
// which socket a server connection belongs to, or (e) saying why a channel
// open failed. Each need is
// met here with the same packet writer ssh2 uses for its own requests.
import protocolUtils from 'ssh2/lib/protocol/utils.js';
import type { Client, Connection } from 'ssh2';

/** RFC 4250 §4.1.2 message numbers. */
const MESSAGE = { GLOBAL_REQUEST: 80, CHANNEL_OPEN: 90 } as const;

/** The parts of ssh2's Protocol object used here. */
interface Protocol {
  _handlers: Record<string, unknown>;
  _packetRW: { write: { allocStart: number; alloc(len: number): Buffer; finalize(packet: Buffer): Buffer } };
  requestSuccess(data?: Buffer): void;
  requestFailure(): void;
  channelOpenFail(recipient: number, reason: number, description: string): void;
}

export type GlobalRequestHook = (name: string, wantReply: boolean, data: unknown) => void;

/**
 * Replaces the server connection's GLOBAL_REQUEST handler: ssh2 answers every
 * name it does not know with FAILURE and cannot attach reply data, so the
 * caller takes over the message entirely (and with it the reply ordering).
 */
export function takeOverGlobalRequests(conn: Connection, hook: GlobalRequestHook): void {
  const proto = protocolOf(conn);
  proto._handlers.GLOBAL_REQUEST = (_p: unknown, name: string, wantReply: boolean, data: unknown) =>
    hook(name, wantReply, data);
}

/** Sends REQUEST_SUCCESS (with optional data) or REQUEST_FAILURE on a server connection. */
export function replyGlobalRequest(conn: Connection, ok: boolean, data?: Buffer): void {
  const proto = protocolOf(conn);
  if (ok) proto.requestSuccess(data);
  else proto.requestFailure();
}

/**
 * Sends a global request from an ssh2 client and waits for its reply. The
 * client matches replies to requests by order (RFC 4254 §4), through the same
 * callback queue its own tcpip-forward and keepalive requests use.
 */
export function clientGlobalRequest(client: Client, name: string, data: Buffer): Promise<Buffer | null> {
  const c = client as unknown as { _protocol?: Protocol; _callbacks?: Array<(hadErr: unknown, data?: Buffer) => void> };
  if (!c._protocol || !c._callbacks) return Promise.reject(new Error('not connected'));
  const proto = c._protocol;
  const callbacks = c._callbacks;
  return new Promise((resolve, reject) => {
    // ssh2 drops its reply queue when the connection goes; answer for it.
    const onClose = () => reject(new Error(`global request ${name}: the connection closed before the reply`));
    client.once('close', onClose);
    callbacks.push((hadErr, reply) => {
      client.off('close', onClose);
      if (hadErr) reject(new Error(`global request ${name} refused`));
      else resolve(reply ?? null);
    });
    sendPayload(proto, Buffer.concat([Buffer.from([MESSAGE.GLOBAL_REQUEST]), sshString(name), Buffer.from([1]), data]));
  });
}

/**
 * Opens a channel of any type from an ssh2 client and reports how the server
 * answered: the failure reason code, or 'open' (the channel is then closed at
 * once). typeData is the type-specific tail (RFC 4254 §6.3.2, §7.2). Used
 * to check that a server refuses types it does not serve.
 */
export function clientOpenRawChannel(
  client: Client,
  type: string,
  typeData: Buffer = Buffer.alloc(0),
): Promise<{ reason: number | 'open'; description: string }> {
  const c = client as unknown as {
    _protocol: Protocol & { channelClose(id: number): void };
    _chanMgr: { add(val: unknown): number; remove(id: number): void };
  };
  return new Promise((resolve, reject) => {
    const cb = (err: (Error & { reason?: number }) | undefined, stream?: { close(): void }) => {
      if (err) {
        resolve({ reason: err.reason ?? -1, description: err.message });
        return;
      }
      stream?.close();
      resolve({ reason: 'open', description: '' });
    };
    (cb as unknown as { type: string }).type = type;
    const id = c._chanMgr.add(cb);
    if (id === -1) {
      reject(new Error('no free channel ids'));
      return;
    }
    const head = Buffer.alloc(12);
    head.writeUInt32BE(id, 0);
    head.writeUInt32BE(2 * 1024 * 1024, 4);
    head.writeUInt32BE(32 * 1024, 8);
    sendPayload(c._protocol, Buffer.concat([Buffer.from([MESSAGE.CHANNEL_OPEN]), sshString(type), head, typeData]));
  });
}

/** RFC 4251 §5 `string`: uint32 length, then the bytes. */
export function sshString(s: string | Buffer): Buffer {
  const body = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

/** Reads an RFC 4251 `string` at the start of buf; undefined when malformed. */
export function readSshString(buf: Buffer): Buffer | undefined {
  if (buf.length < 4) return undefined;
  const len = buf.readUInt32BE(0);
  if (buf.length < 4 + len) return undefined;
  return buf.subarray(4, 4 + len);
}

function sendPayload(proto: Protocol, payload: Buffer): void {
  const w = proto._packetRW.write;
  const start = w.allocStart;
  const packet = w.alloc(payload.length);
  packet.set(payload, start);
  protocolUtils.sendPacket(proto, w.finalize(packet));
}

/**
 * Calls an ssh2 channel-open reject() so that the failure carries a
 * description (RFC 4254 §5.1), which ssh2 always sends empty: the user then
 * reads "connect ECONNREFUSED 10.0.0.7:80" rather than nothing. reject()
 * sends synchronously, so the override lives only for that call.
 */
export function rejectWithDescription(conn: Connection, reject: () => void, description: string): void {
  const proto = protocolOf(conn);
  const own = Object.getPrototypeOf(proto) as Protocol;
  proto.channelOpenFail = (recipient, reason) => own.channelOpenFail.call(proto, recipient, reason, description);
  try {
    reject();
  } finally {
    delete (proto as Partial<Protocol>).channelOpenFail;
  }
}

/** The socket a server connection runs on (ssh2 keeps it as _sock). */
export function socketOf(conn: Connection): unknown {
  return (conn as unknown as { _sock?: unknown })._sock;
}

function protocolOf(conn: Connection): Protocol {
  const proto = (conn as unknown as { _protocol?: Protocol })._protocol;
  if (!proto || typeof proto._handlers !== 'object') throw new Error('ssh2 internals changed: no _protocol._handlers');
  return proto;
}

/**
 * Makes an ssh2 client take forwarded-tcpip channels for address:port that
 * it never asked for with tcpip-forward (a router's routes): ssh2 rejects any
 * whose connected address is not in its table of forwards. Returns the undo.
 */
export function clientExpectForwarded(client: Client, address: string, port: number): () => void {
  const c = client as unknown as { _forwarding?: Record<string, number> };
  if (!c._forwarding) throw new Error('ssh2 internals changed: no _forwarding table');
  const table = c._forwarding;
  const key = `${address}:${port}`;
  table[key] = port;
  return () => {
    if (table[key] === port) delete table[key];
  };
}
