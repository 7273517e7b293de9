/**
 * Overlord's LAN discovery announcement (sans-I/O): the ASCII datagram `OVERLORD <ip>:<port>` a hub
 * broadcasts to UDP 4456 every 5 s. An empty ip means "the packet's source address".
 */
import { utf8Encode } from '../../bytes/text.js';

/** Overlord's LAN discovery UDP port (`OVERLORD_LD_PORT`). */
export const LAN_DISCOVERY_PORT = 4456;
/** Overlord's announcement interval, ms. */
export const LAN_DISCOVERY_INTERVAL_MS = 5000;

export function encodeLanAnnouncement(ip: string, port: number): Uint8Array {
  return utf8Encode(`OVERLORD ${ip}:${port}`);
}
