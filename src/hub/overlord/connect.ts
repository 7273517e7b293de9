/**
 * The current generation's ghost entrance: `GET /connect` upgraded to a WebSocket by handshake
 * only; afterwards the raw socket carries the Overlord protocol without WebSocket framing. The hub
 * answers the 101 (with a reason phrase, `Connection: Upgrade` and `Sec-WebSocket-Accept`, which
 * the ghosts' libraries check) and then sends nothing until the ghost's register arrives: ws4py
 * and gorilla would swallow bytes sent right after the 101. The `upgrade` event's `head` is the
 * start of the ghost's stream and goes to the register reader first.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { GhostPort } from './ghost-port.js';
import { hostOf } from './ghost-port.js';
import { connectReply, webSocketAccept } from '../../protocols/overlord/node.js';

export { webSocketAccept };

/** Handles an `upgrade` request for /connect. */
export function handleConnect(port: GhostPort, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => {});
  const refuse = (status: number, reason: string) => socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  const key = req.headers['sec-websocket-key'];
  if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string' || key.length === 0 || key.length > 64) {
    refuse(400, 'Bad Request');
    return;
  }
  if (!port.allowed(hostOf(req.socket))) {
    port.hub.logger.warn(`hub overlord: /connect from ${hostOf(req.socket)} refused (not in --overlord-allow)`);
    refuse(403, 'Forbidden');
    return;
  }
  socket.write(connectReply(key));
  const s = socket as Duplex & { remoteAddress?: string };
  if (s.remoteAddress === undefined) Object.defineProperty(s, 'remoteAddress', { value: req.socket.remoteAddress });
  port.accept(s, 'current', head);
}
