import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLinkMessage, parseHubAddress } from '../../src/hub/link-messages.js';
import { HubLinkSession, AgentLinkSession } from '../../src/hub/link-session.js';
import {
  agentKey,
  encodeJson,
  hubIdFrom,
  hubOfSessionId,
  isValidHubId,
  MAX_FLEET_RECORD,
  parseAgentRecord,
  parseDialRequest,
  parseHoldsReply,
  parseTokenRecord,
} from '../../src/hub/nats-records.js';

const record = {
  v: 1,
  id: 'dev 1'.replace(' ', '-'),
  hub: 'h1',
  hubAddress: '10.0.0.1:7701',
  hostname: 'dev-1',
  address: '127.0.0.1',
  version: '0.1.0',
  capabilities: ['exec'],
  properties: { allowlist: ['anyone'] },
  since: 1_700_000_000_000,
  authenticated: true,
};

test('an agent record round-trips; hostile records are refused with WK_MALFORMED before use', () => {
  assert.deepEqual(parseAgentRecord(encodeJson(record)), record);
  const bad = [
    { ...record, v: 2 },
    { ...record, id: 'a/b' },
    { ...record, hub: 'h.1' },
    { ...record, hubAddress: 'nowhere' },
    { ...record, properties: [] },
    { ...record, since: -1 },
    { ...record, capabilities: [1] },
  ];
  for (const b of bad) assert.throws(() => parseAgentRecord(encodeJson(b)), { code: 'WK_MALFORMED' });
  assert.throws(() => parseAgentRecord(new TextEncoder().encode('{nope')), { code: 'WK_MALFORMED' });
  assert.throws(() => parseAgentRecord(new Uint8Array(MAX_FLEET_RECORD + 1)), /more than/);
  assert.throws(() => parseTokenRecord(encodeJson({ v: 1, sha256: 'xyz' })), { code: 'WK_MALFORMED' });
  assert.throws(() => parseDialRequest(encodeJson({ sid: 's', agent: 'a', from: 'h 1', hub: '1.2.3.4:5' })), { code: 'WK_MALFORMED' });
  assert.throws(() => parseHoldsReply(encodeJson({ held: 'yes' })), { code: 'WK_MALFORMED' });
});

test('keys, hub ids and session ids', () => {
  assert.match(agentKey('dév:1@x'), /^[A-Za-z0-9_-]+$/);
  assert.equal(Buffer.from(agentKey('dév:1@x'), 'base64url').toString(), 'dév:1@x');
  assert.equal(hubIdFrom('hub.example.com'), 'hub_example_com');
  assert.ok(isValidHubId(hubIdFrom('')));
  assert.equal(hubOfSessionId('h1.0b0c'), 'h1');
  assert.equal(hubOfSessionId('0b0c-uuid'), undefined);
});

test('dial names another hub only as HOST:PORT; both link ends carry it', () => {
  assert.deepEqual(parseLinkMessage({ type: 'dial', sid: 's1' }), { type: 'dial', sid: 's1' });
  assert.deepEqual(parseLinkMessage({ type: 'dial', sid: 's1', hub: '[::1]:7701' }), { type: 'dial', sid: 's1', hub: '[::1]:7701' });
  for (const hub of ['x', 'a:0', 'a:70000', 'a b:1', 1]) assert.throws(() => parseLinkMessage({ type: 'dial', sid: 's1', hub }), { code: 'WK_PROTOCOL' });
  assert.deepEqual(parseHubAddress('hub-2.lan:7701'), { host: 'hub-2.lan', port: 7701 });
  const hub = new HubLinkSession(0);
  hub.receive({ type: 'register', id: 'a', hostname: 'a', version: '1', capabilities: [], properties: {}, token: 't' }, 0);
  hub.accept(0);
  const [send] = hub.dial('s1', '10.0.0.2:7701');
  assert.deepEqual(send, { type: 'send', message: { type: 'dial', sid: 's1', hub: '10.0.0.2:7701' } });
  const agent = new AgentLinkSession({ id: 'a', hostname: 'a', version: '1', capabilities: [], properties: {}, token: 't' }, 0);
  agent.start();
  agent.receive({ type: 'registered', keepaliveMs: 1000, hub: 'h' }, 0);
  assert.deepEqual(agent.receive({ type: 'dial', sid: 's1', hub: '10.0.0.2:7701' }, 1), [{ type: 'dial', sid: 's1', hub: '10.0.0.2:7701' }]);
  assert.deepEqual(agent.receive({ type: 'dial', sid: 's2' }, 2), [{ type: 'dial', sid: 's2' }]);
});
