// Asking a shared router who routes: GET /routes on its health port, through
// the session's tunnel (no Service, no new right), read with node:http's
// own parser over the tunnelled stream (createConnection without an agent:
// the request goes on that stream, with Connection: close).
import { request } from 'node:http';
import type { RouterAnswer } from './route-traffic.ts';
import type { ProxySession } from './proxy-session.ts';

/** How long the router gets to answer. */
const ANSWER_TIMEOUT_MS = 2000;

/** The router's /routes answer: its routes with their counts, and per-port counts. */
export async function routerAnswer(session: Pick<ProxySession, 'dial'>, healthPort: number): Promise<RouterAnswer> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ANSWER_TIMEOUT_MS / 1000} s`)), ANSWER_TIMEOUT_MS);
  });
  const body = await Promise.race([timeout, (async () => {
    const stream = await session.dial('127.0.0.1', healthPort);
    return await new Promise<string>((resolve, reject) => {
      const req = request({ createConnection: () => stream as never, method: 'GET', path: '/routes', headers: { host: 'router' } }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (buf += d));
        res.once('end', () => (res.statusCode === 200 ? resolve(buf) : reject(new Error(`router answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim()))));
        res.once('error', reject);
      });
      req.once('error', reject);
      req.end();
    }).finally(() => stream.destroy());
  })()]).finally(() => clearTimeout(timer));
  return JSON.parse(body) as RouterAnswer;
}
