/**
 * Starts a hub: its state, the agent port, the user port and the HTTP API, each on TCP (TLS when
 * a certificate and key are given), loopback unless told otherwise. `wirekit hub` is this plus
 * flags.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { AgentPort, type AgentPortOptions } from './agent-port.js';
import { serveConsole } from './console-assets.js';
import { serveWebroot } from './webroot.js';
import { HubHttpApi, type HttpApiOptions } from './http-api.js';
import { Hub, type HubOptions } from './hub.js';
import { registerSessionRoutes } from './http-sessions.js';
import { registerOverlordApi } from './overlord-api.js';
import { userPortServer } from './user-port.js';
import { WirekitError } from '../errors.js';
import { GhostPort, type OverlordOptions } from './overlord/ghost-port.js';
import { handleConnect } from './overlord/connect.js';
import { LanAnnouncer, type LanDiscoveryOptions } from './overlord/lan-discovery.js';
import { RelayPort } from './fleet-relay.js';

export interface ListenSpec {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface HubServerOptions extends HubOptions {
  /** The state directory (0700). */
  stateDir: string;
  agents?: ListenSpec;
  users?: ListenSpec;
  http?: ListenSpec | false;
  /** PEM certificate and key: every listener speaks TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  agentPort?: AgentPortOptions;
  httpApi?: HttpApiOptions;
  /**
   * Accept Overlord ghosts (src/hub/overlord/, docs/overlord.md): off unless given. `classic`:
   * where classic ghosts connect over raw TCP (a number is a port on the agents' host); `current`
   * (default true): `GET /connect` on the HTTP server.
   */
  overlord?: OverlordOptions & { classic?: ListenSpec | number; current?: boolean; lanDiscovery?: LanDiscoveryOptions };
  /** Fleet hubs: this hub's agent port as agents of other hubs reach it (`HOST:PORT`). Default: where it listens. */
  advertise?: string;
  /**
   * Fleet hubs: listen for hub-to-hub relay streams here (fleet-relay.ts; TLS with `tls`), so a
   * session still works when the agent cannot dial back to this hub. Off unless given.
   */
  relay?: ListenSpec;
  /** The relay port as other hubs reach it (`HOST:PORT`). Default: where it listens. */
  relayAdvertise?: string;
  /**
   * An operator's web root (`--overlord-webroot`, webroot.ts), served on the HTTP port as overlordd
   * serves its `webroot` (Overlord's dashboard at `/`); what it lacks still goes to the console.
   */
  webroot?: string;
  /** Called with the HTTP API before the HTTP server starts (the console adds its routes here). */
  extendHttp?: (api: HubHttpApi) => void;
}

export interface RunningHub {
  readonly hub: Hub;
  readonly api: HubHttpApi | undefined;
  readonly agentAddress: { host: string; port: number };
  readonly userAddress: { host: string; port: number };
  readonly httpAddress: { host: string; port: number } | undefined;
  /** Where classic Overlord ghosts connect, when turned on. */
  readonly overlordClassicAddress: { host: string; port: number } | undefined;
  readonly overlord: GhostPort | undefined;
  /** Where other fleet hubs relay sessions to, when turned on. */
  readonly relayAddress: { host: string; port: number } | undefined;
  readonly tls: boolean;
  /** Drains the hub (`Hub.drain`): its agents move to other hubs in staggered batches. */
  drain(options?: Parameters<Hub['drain']>[0]): Promise<{ moved: number; remaining: number }>;
  close(): Promise<void>;
}

async function listenOn(server: net.Server, spec: ListenSpec, what: string): Promise<{ host: string; port: number }> {
  server.listen(spec.port, spec.host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new WirekitError(code === 'EADDRINUSE' ? 'WK_ADDRESS_IN_USE' : 'WK_IO', `cannot listen for ${what} on ${spec.host}:${spec.port}: ${(err as Error).message}`, { origin: 'local', cause: err });
  }
  const a = server.address() as net.AddressInfo;
  return { host: spec.host, port: a.port };
}

export async function startHub(options: HubServerOptions): Promise<RunningHub> {
  const hub = await Hub.open(options.stateDir, options);
  const port = new AgentPort(hub, options.agentPort);
  // A TLS handshake must finish within 10 s (Node's default is 120 s per silent connection).
  const tlsOpts = options.tls ? { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' as const, handshakeTimeout: 10_000 } : undefined;
  const agentServer = tlsOpts ? tls.createServer({ ...tlsOpts, allowHalfOpen: true }, (s) => port.accept(s)) : net.createServer({ allowHalfOpen: true }, (s) => port.accept(s));
  // A failed TLS handshake (wrong CA, a plain-TCP client): drop that socket, keep serving.
  agentServer.on('tlsClientError', (_err, socket) => socket.destroy());
  const control = userPortServer(hub);
  const userServer = tlsOpts
    ? tls.createServer({ ...tlsOpts, allowHalfOpen: true }, (s) => control.serve(s, { data: { address: s.remoteAddress ?? '' } }))
    : net.createServer({ allowHalfOpen: true }, (s) => {
        s.setNoDelay(true);
        control.serve(s, { data: { address: s.remoteAddress ?? '' } });
      });
  userServer.on('tlsClientError', (_err, socket) => socket.destroy());
  const servers: net.Server[] = [agentServer, userServer];
  // Every connection, so close() can end them (net.Server.close waits for them otherwise).
  const sockets = new Set<net.Socket>();
  // The raw TCP sockets, also for TLS (a connection that never finishes its handshake is one too).
  const track = (server: net.Server) =>
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
  track(agentServer);
  track(userServer);
  // Overlord ghosts (only when turned on): classic over raw TCP; current over /connect below.
  const ghosts = options.overlord ? new GhostPort(hub, { tls: options.tls, ...options.overlord }) : undefined;
  let classicServer: net.Server | undefined;
  if (ghosts && options.overlord?.classic !== undefined) {
    classicServer = net.createServer({ allowHalfOpen: true }, (s) => ghosts.accept(s, 'classic'));
    servers.push(classicServer);
    track(classicServer);
  }
  let relayServer: net.Server | undefined;
  if (options.relay) {
    const relays = new RelayPort(hub, hub.fleetSecret);
    relayServer = tlsOpts ? tls.createServer(tlsOpts, (s) => relays.accept(s)) : net.createServer((s) => relays.accept(s));
    relayServer.on('tlsClientError', (_err, socket) => socket.destroy());
    servers.push(relayServer);
    track(relayServer);
  }
  const expiry = setInterval(() => hub.expireAgents(), 3000);
  expiry.unref();
  let lan: LanAnnouncer | undefined;
  try {
    const agentAddress = await listenOn(agentServer, options.agents ?? { host: '127.0.0.1', port: 7701 }, 'agents');
    const userAddress = await listenOn(userServer, options.users ?? { host: '127.0.0.1', port: 7702 }, 'users');
    let api: HubHttpApi | undefined;
    let httpAddress: { host: string; port: number } | undefined;
    if (options.http !== false) {
      api = new HubHttpApi(hub, { secureCookie: !!tlsOpts, ...options.httpApi });
      registerSessionRoutes(api);
      registerOverlordApi(api);
      serveConsole(api);
      if (options.webroot !== undefined) serveWebroot(api, options.webroot);
      options.extendHttp?.(api);
      if (ghosts && options.overlord?.current !== false) api.rawUpgrade('/connect', (req, socket, head) => handleConnect(ghosts, req, socket, head));
      const httpServer = tlsOpts ? https.createServer(tlsOpts) : http.createServer();
      httpServer.headersTimeout = 10_000;
      httpServer.requestTimeout = 0;
      api.attach(httpServer);
      servers.push(httpServer);
      httpAddress = await listenOn(httpServer, options.http ?? { host: '127.0.0.1', port: 7780 }, 'the HTTP API');
      if (options.httpApi?.forwardOrigin === undefined) api.forwards.setOrigin(`${tlsOpts ? 'https' : 'http'}://*.localhost:${httpAddress.port}`);
    }
    let overlordClassicAddress: { host: string; port: number } | undefined;
    if (classicServer) {
      const c = options.overlord!.classic!;
      const spec = typeof c === 'number' ? { host: (options.agents ?? { host: '127.0.0.1' }).host, port: c } : c;
      overlordClassicAddress = await listenOn(classicServer, spec, 'Overlord ghosts');
    }
    // LAN discovery (off unless asked): the /connect port when current ghosts are on, else the classic port.
    const lanOpts = options.overlord?.lanDiscovery;
    const lanPort = options.overlord?.current !== false && httpAddress ? httpAddress.port : overlordClassicAddress?.port;
    if (lanOpts && lanPort !== undefined) {
      lan = new LanAnnouncer(lanOpts, lanPort, hub.logger);
      await lan.start();
    }
    const hostPort = (a: { host: string; port: number }) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
    const relayAddress = relayServer ? await listenOn(relayServer, options.relay!, 'hub relays') : undefined;
    await hub.fleet.start(hub, {
      agentAddress: options.advertise ?? hostPort(agentAddress),
      ...(relayAddress ? { relayAddress: options.relayAdvertise ?? hostPort(relayAddress), relayTls: !!tlsOpts } : {}),
    });
    return {
      hub,
      api,
      agentAddress,
      userAddress,
      httpAddress,
      overlordClassicAddress,
      overlord: ghosts,
      relayAddress,
      tls: !!tlsOpts,
      drain: (o) => hub.drain(o),
      async close() {
        clearInterval(expiry);
        lan?.close();
        ghosts?.close();
        await hub.fleet.close();
        hub.close();
        for (const ws of api?.wss.clients ?? []) ws.terminate();
        for (const s of sockets) s.destroy();
        await Promise.all(
          servers.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                (s as http.Server).closeAllConnections?.();
              }),
          ),
        );
      },
    };
  } catch (err) {
    clearInterval(expiry);
    lan?.close();
    await hub.fleet.close().catch(() => {});
    hub.close();
    for (const s of servers) s.close();
    throw err;
  }
}
