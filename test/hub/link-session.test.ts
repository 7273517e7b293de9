import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AgentLinkSession, HubLinkSession, type AgentLinkAction, type HubLinkAction } from '../../src/hub/link-session.js';
import { parseLinkMessage, LinkProtocolError } from '../../src/hub/link-messages.js';
import { DuplicateAgentError } from '../../src/hub/errors.js';

const reg = { id: 'dev1', hostname: 'dev1.lab', version: '0.1.0', capabilities: ['exec', 'terminal'], properties: { site: 'lab' }, token: 'enroll-secret' };

/** What each end sends, through JSON, as the drivers would write and read lines. */
const wire = (actions: readonly (HubLinkAction | AgentLinkAction)[]) =>
  actions.filter((a): a is Extract<HubLinkAction, { type: 'send' }> => a.type === 'send').map((a) => JSON.parse(JSON.stringify(a.message)) as unknown);

test('register, accept with a per-agent token, keepalive both ways, dial-back request', () => {
  const hub = new HubLinkSession(0, { keepaliveMs: 1000, hubName: 'h1' });
  const agent = new AgentLinkSession(reg, 0);
  const [registerLine] = wire(agent.start());
  const got = hub.receive(registerLine, 5);
  assert.equal(got[0]?.type, 'register');
  assert.deepEqual(got[0]?.type === 'register' && got[0].message.properties, { site: 'lab' });
  const [registeredLine] = wire(hub.accept(6, 'agent-token-1'));
  assert.deepEqual(agent.receive(registeredLine, 7), [{ type: 'registered', hub: 'h1', agentToken: 'agent-token-1' }]);
  assert.equal(agent.nextDeadline(), 1007, 'the first ping is due one keepalive later');
  const [ping] = wire(agent.tick(1007));
  assert.deepEqual(ping, { type: 'ping', seq: 1 });
  const answer = hub.receive(ping, 1008);
  assert.deepEqual(answer.map((a) => a.type), ['seen', 'send']);
  assert.deepEqual(agent.receive(wire(answer)[0], 1009), []);
  const [dial] = wire(hub.dial('sid-42'));
  assert.deepEqual(agent.receive(dial, 1010), [{ type: 'dial', sid: 'sid-42' }]);
  const [failed] = wire(agent.dialFailed('sid-42', 'connection refused'));
  assert.deepEqual(hub.receive(failed, 1011).filter((a) => a.type === 'dialFailed'), [{ type: 'dialFailed', sid: 'sid-42', message: 'connection refused' }]);
});

test('a refused registration reaches the agent with its code and closes both ends', () => {
  const hub = new HubLinkSession(0);
  const agent = new AgentLinkSession(reg, 0);
  hub.receive(wire(agent.start())[0], 1);
  const out = hub.refuse(new DuplicateAgentError('dev1'));
  assert.deepEqual(out.map((a) => a.type), ['send', 'close']);
  assert.equal(hub.state, 'closed');
  const closed = agent.receive(wire(out)[0], 2);
  assert.deepEqual(closed, [{ type: 'close', reason: 'refused', code: 'WK_BUSY', message: 'duplicate agent id: dev1' }]);
});

test('silence ends the link: no register in time, no keepalive, no answer from the hub', () => {
  const hub = new HubLinkSession(0, { registerTimeoutMs: 100, keepaliveMs: 50 });
  assert.deepEqual(hub.tick(99), []);
  assert.deepEqual(hub.tick(100).map((a) => a.type), ['close']);
  const hub2 = new HubLinkSession(0, { keepaliveMs: 50 });
  hub2.receive({ type: 'register', ...reg }, 1);
  hub2.accept(2);
  assert.equal(hub2.nextDeadline(), 152);
  assert.deepEqual(hub2.tick(152), [{ type: 'close', reason: 'timeout', message: 'no keepalive for 150 ms' }]);
  const agent = new AgentLinkSession(reg, 0, { registerTimeoutMs: 30 });
  agent.start();
  assert.equal(agent.tick(30)[0]?.type, 'close');
});

test('a register still in progress at the register timeout is refused WK_HUB_BUSY, not closed silently', () => {
  const hub = new HubLinkSession(0, { registerTimeoutMs: 100 });
  assert.equal(hub.receive({ type: 'register', ...reg }, 1)[0]?.type, 'register');
  const out = hub.tick(100);
  assert.deepEqual(out.map((a) => a.type), ['send', 'close']);
  assert.equal(hub.state, 'closed');
  assert.deepEqual(hub.accept(101), [], 'the late accept is ignored');
  const agent = new AgentLinkSession(reg, 0);
  agent.start();
  const closed = agent.receive(wire(out)[0], 101);
  assert.equal(closed.length, 1);
  assert.equal(closed[0]?.type, 'close');
  assert.equal((closed[0] as { reason: string }).reason, 'refused');
  assert.equal((closed[0] as { code: string }).code, 'WK_HUB_BUSY');
});

test('hostile lines: garbage, wrong order, oversized fields are a protocol error with a refusal, never a throw', () => {
  const bad: unknown[] = [null, 7, 'x', [], {}, { type: 'nope' }, { type: 'register' }, { type: 'ping', seq: 1 }, { ...reg, type: 'register', id: 'x'.repeat(300) }, { ...reg, type: 'register', capabilities: 'all' }, { ...reg, type: 'register', properties: [] }];
  for (const v of bad) {
    const hub = new HubLinkSession(0);
    const out = hub.receive(v, 1);
    assert.deepEqual(out.map((a) => a.type), ['send', 'close'], JSON.stringify(v)?.slice(0, 50));
    assert.equal(hub.state, 'closed');
    assert.deepEqual(hub.receive({ type: 'register', ...reg }, 2), [], 'a closed link ignores the rest');
  }
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const hub = new HubLinkSession(0);
      const out = hub.receive(v, 1);
      assert.ok(out.length >= 1);
      try {
        parseLinkMessage(v);
      } catch (err) {
        assert.ok(err instanceof LinkProtocolError);
      }
    }),
  );
});

test('a hub draining tells the agent to move after a delay', () => {
  const hub = new HubLinkSession(0);
  const agent = new AgentLinkSession(reg, 0);
  hub.receive(wire(agent.start())[0], 1);
  agent.receive(wire(hub.accept(2))[0], 3);
  const out = hub.move(2500);
  assert.deepEqual(agent.receive(wire(out)[0], 4), [{ type: 'move', delayMs: 2500 }]);
  assert.equal(agent.state, 'closed');
});
