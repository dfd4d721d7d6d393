// The streaming endpoints (portForward, exec) as the kubelet API serves them
// to the API server on an HTTP upgrade. One request may arrive in three shapes:
//   - WebSocket with a channel protocol (v4/v5.channel.k8s.io): client-node's
//     port-forward, which the API server passes through as it came;
//   - WebSocket with `SPDY/3.1+<protocol>`: SPDY tunnelled in binary messages,
//     what kubectl >= 1.30 sends (older API servers pass it through);
//   - POST with `Upgrade: SPDY/3.1`: what the API server sends when it bridges
//     kubectl's WebSocket to the kubelet, and kubectl's legacy fallback.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { KubeletHooks, StreamHandlers } from '../../types.ts';
import { servePortForwardSpdy, serveExecSpdy } from './spdy-handlers.ts';
import { negotiateChannelProtocol, offeredProtocols, WebSocketTunnel } from './wsstream.ts';
import { servePortForwardWebSocket, serveExecWebSocket, type ExecTarget } from './wsstream-handlers.ts';

/** k8s.io/apimachinery/pkg/util/portforward: WebsocketsSPDYTunnelingPrefix. */
export const SPDY_TUNNEL_PREFIX = 'SPDY/3.1+';
export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
const SPDY_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

function rejectUpgrade(socket: Duplex, code: number, reason: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function upgradeKind(req: IncomingMessage): 'websocket' | 'spdy' | null {
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (upgrade === 'websocket') return 'websocket';
  if (upgrade.split(',').some((u) => u.trim() === 'spdy/3.1')) return 'spdy';
  return null;
}

// The subprotocol is decided before the handshake, so a failed negotiation is
// a proper Status response. ws would validate the offer as RFC 7230 tokens and
// refuse `SPDY/3.1+portforward.k8s.io` ('/' is not a token character), so the
// offer is taken off the request before ws sees it and the chosen protocol is
// added to the 101 response here. A noServer WebSocketServer holds no
// resources; one per upgrade keeps no state between requests.
function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string, onOpen: (ws: WebSocket) => void): void {
  delete req.headers['sec-websocket-protocol'];
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  if (protocol) wss.on('headers', (headers: string[]) => headers.push(`Sec-WebSocket-Protocol: ${protocol}`));
  socket.on('error', () => {});
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    onOpen(ws);
  });
}

/** The legacy SPDY upgrade: negotiate X-Stream-Protocol-Version and answer 101 ourselves. */
function acceptSpdy(req: IncomingMessage, socket: Duplex, supported: string[]): string | null {
  const offered = offeredProtocols(req.headers['x-stream-protocol-version']);
  const protocol = offered.length === 0 ? '' : offered.find((p) => supported.includes(p));
  if (protocol === undefined) {
    rejectUpgrade(socket, 403, 'Forbidden', `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server supports ${JSON.stringify(supported)}`);
    return null;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      (protocol ? `X-Stream-Protocol-Version: ${protocol}\r\n` : '') +
      `Date: ${new Date().toUTCString()}\r\n\r\n`,
  );
  return protocol;
}

/** The SPDY protocols tunnelled in a WebSocket offer, e.g. `SPDY/3.1+portforward.k8s.io` → `portforward.k8s.io`. */
function tunnelledProtocols(offered: string[]): string[] {
  return offered.filter((p) => p.startsWith(SPDY_TUNNEL_PREFIX)).map((p) => p.slice(SPDY_TUNNEL_PREFIX.length));
}

function queryFlag(req: IncomingMessage, name: string): boolean {
  const v = new URL(req.url ?? '/', 'http://apiserver').searchParams.get(name);
  return v === 'true' || v === '1';
}

/** Routes an upgrade by its kind: SPDY/3.1 (legacy POST) or WebSocket (offered subprotocols in client order). */
function route(req: IncomingMessage, socket: Duplex, onSpdy: () => void, onWebSocket: (offered: string[]) => void): void {
  const kind = upgradeKind(req);
  if (kind === 'spdy') onSpdy();
  else if (kind === 'websocket') onWebSocket(offeredProtocols(req.headers['sec-websocket-protocol']));
  else rejectUpgrade(socket, 400, 'BadRequest', 'Upgrade request required');
}

function unsupported(socket: Duplex, offered: string[]): void {
  rejectUpgrade(socket, 400, 'BadRequest', `unable to upgrade: requested protocol(s) ${offered.join(', ')} are not supported`);
}

export const streams: StreamHandlers = {
  portForward(req, socket, head, target, kubelet: KubeletHooks) {
    const onSpdy = (): void => {
      if (acceptSpdy(req, socket, [PORT_FORWARD_PROTOCOL]) !== null) servePortForwardSpdy(socket, head, target, kubelet);
    };
    route(req, socket, onSpdy, (offered) => {
      const tunnelled = tunnelledProtocols(offered);
      if (tunnelled.length > 0) {
        if (!tunnelled.includes(PORT_FORWARD_PROTOCOL)) {
          rejectUpgrade(socket, 400, 'BadRequest', 'unable to upgrade: no tunneling spdy protocols provided');
          return;
        }
        acceptWebSocket(req, socket, head, SPDY_TUNNEL_PREFIX + PORT_FORWARD_PROTOCOL, (ws) => {
          servePortForwardSpdy(new WebSocketTunnel(ws), undefined, target, kubelet);
        });
        return;
      }
      const proto = negotiateChannelProtocol(offered, 'portforward');
      if (!proto) return unsupported(socket, offered);
      if (target.ports.length === 0) {
        rejectUpgrade(socket, 400, 'BadRequest', 'query parameter "port" is required');
        return;
      }
      acceptWebSocket(req, socket, head, proto.name, (ws) => servePortForwardWebSocket(ws, proto, target, kubelet));
    });
  },

  exec(req, socket, head, target, kubelet: KubeletHooks) {
    const execTarget: ExecTarget = { ...target, stdout: queryFlag(req, 'stdout'), stderr: queryFlag(req, 'stderr') };
    if (!execTarget.opts.stdin && !execTarget.stdout && !execTarget.stderr) {
      rejectUpgrade(socket, 400, 'BadRequest', 'you must specify at least 1 of stdin, stdout, stderr');
      return;
    }
    if (execTarget.opts.command.length === 0) {
      rejectUpgrade(socket, 400, 'BadRequest', 'you must specify at least one command for the container');
      return;
    }
    if (!kubelet.exec) {
      rejectUpgrade(socket, 501, 'NotImplemented', 'exec is not supported by this node');
      return;
    }
    const onSpdy = (): void => {
      if (acceptSpdy(req, socket, SPDY_EXEC_PROTOCOLS) !== null) serveExecSpdy(socket, head, execTarget, kubelet);
    };
    route(req, socket, onSpdy, (offered) => {
      const proto = negotiateChannelProtocol(offered, 'exec');
      if (!proto) return unsupported(socket, offered);
      acceptWebSocket(req, socket, head, proto.name, (ws) => serveExecWebSocket(ws, proto, execTarget, kubelet));
    });
  },
};
