// A connection that is not HTTP (TLS, a database protocol, or a client that
// says nothing first): it goes whole to the default route — the exchange if
// there is one, else the origin — as a byte splice.
import type net from 'node:net';
import { splice } from '../../../contract/ssh/splice.ts';
import { describeTarget, ORIGIN } from './upstream.ts';
import type { Connector, Target } from './upstream.ts';

export function serveRaw(client: net.Socket, first: Buffer, target: Target, connector: Connector, log: (msg: string) => void): void {
  const from = { ip: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
  const go = (t: Target) => {
    connector.connect(t, from).then(
      (up) => {
        if (client.destroyed) {
          up.destroy();
          return;
        }
        if (first.length > 0) up.write(first);
        // A client that half-closed before we got here sends no more 'end'.
        const endedEarly = client.readableEnded;
        splice(client, up);
        if (endedEarly) up.end();
      },
      (err: Error) => {
        if (t.kind === 'route') {
          // The developer's link is gone: the origin serves (never an error when a fallback exists).
          log(`tcp ${from.ip}:${from.port}: ${describeTarget(t)}: ${err.message}; using origin`);
          go(ORIGIN);
          return;
        }
        log(`tcp ${from.ip}:${from.port}: origin: ${err.message}`);
        client.destroy();
      },
    );
  };
  go(target);
}
