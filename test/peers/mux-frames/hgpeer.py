#!/usr/bin/python3
"""Drives Mercurial's own wireprotoframing module for wirekit's tests.

Run with Debian's /usr/bin/python3 (the one that can import mercurial). Reads one JSON command per
line on stdin and answers one JSON line on stdout. Bytes travel as hex strings; CBOR values travel
as hex of their CBOR encoding (decoded/encoded here with Mercurial's cborutil).
"""
import json
import sys

from mercurial import ui as uimod
from mercurial import wireprotoframing as f
from mercurial.utils import cborutil

UI = uimod.ui()
state = {'server': None, 'client': None, 'streams': [], 'requests': {}}


def parse(hexframe):
    data = bytes.fromhex(hexframe)
    h = f.parseheader(data)
    payload = data[8:]
    assert len(payload) == h.length, (len(payload), h.length)
    return f.frame(h.requestid, h.streamid, h.streamflags, h.typeid, h.flags, payload)


def cbor_hex(value):
    return b''.join(cborutil.streamencode(value)).hex()


def from_cbor_hex(h):
    return cborutil.decodeall(bytes.fromhex(h))[0]


def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return {'hex': bytes(v).hex()}
    if isinstance(v, dict):
        return {'cbor': cbor_hex(v)}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, f.commandrequest):
        return {'requestid': v.requestid, 'state': v.state.decode()}
    return v


def action(res):
    name, meta = res
    out = {'action': name.decode()}
    for k, v in meta.items():
        key = k.decode()
        if key == 'framegen':
            out['frames'] = [bytes(fr).hex() for fr in v]
        elif key == 'args':
            out['args'] = cbor_hex(v)
        else:
            out[key] = jsonable(v)
    return out


def handle(cmd):
    op = cmd['op']
    if op == 'new_server':
        state['server'] = f.serverreactor(UI, deferoutput=cmd.get('deferoutput', False))
        state['streams'] = []
        return {}
    if op == 'server_frames':
        s = state['server']
        return {'results': [action(s.onframerecv(parse(h))) for h in cmd['frames']]}
    if op == 'server_stream':
        st = state['server'].makeoutputstream()
        state['streams'].append(st)
        return {'stream': len(state['streams']) - 1, 'streamid': st.streamid}
    if op == 'server_respond':
        st = state['streams'][cmd['stream']]
        objs = cborutil.decodeall(bytes.fromhex(cmd['objs']))
        return action(state['server'].oncommandresponsereadyobjects(st, cmd['requestid'], objs))
    if op == 'server_commanderror':
        st = state['streams'][cmd['stream']]
        return action(state['server'].oncommanderror(st, cmd['requestid'], cmd['message'].encode()))
    if op == 'server_servererror':
        st = state['streams'][cmd['stream']]
        return action(state['server'].onservererror(st, cmd['requestid'], cmd['message'].encode()))
    if op == 'server_eof':
        return action(state['server'].oninputeof())
    if op == 'new_client':
        enc = cmd.get('contentencodings')
        state['client'] = f.clientreactor(
            UI,
            hasmultiplesend=cmd.get('hasmultiplesend', False),
            buffersends=cmd.get('buffersends', True),
            clientcontentencoders=[e.encode() for e in enc] if enc else None,
        )
        state['requests'] = {}
        return {}
    if op == 'client_call':
        import io
        args = from_cbor_hex(cmd['args']) if cmd.get('args') else {}
        datafh = io.BytesIO(bytes.fromhex(cmd['data'])) if cmd.get('data') is not None else None
        req, name, meta = state['client'].callcommand(cmd['name'].encode(), args, datafh=datafh)
        state['requests'][req.requestid] = req
        out = action((name, meta))
        out['requestid'] = req.requestid
        return out
    if op == 'client_flush':
        return action(state['client'].flushcommands())
    if op == 'client_frames':
        results = []
        for h in cmd['frames']:
            try:
                results.append(action(state['client'].onframerecv(parse(h))))
            except Exception as e:  # Mercurial raises ProgrammingError for unhandled types
                results.append({'action': 'exception', 'message': str(e)})
        return {'results': results}
    if op == 'human':
        return {'frame': bytes(f.makeframefromhumanstring(cmd['s'].encode())).hex()}
    if op == 'cbor_encode_literal':
        from mercurial.utils import stringutil
        return {'cbor': cbor_hex(stringutil.evalpythonliteral(cmd['literal'].encode()))}
    if op == 'cbor_reencode':
        return {'values': [cbor_hex(v) for v in cborutil.decodeall(bytes.fromhex(cmd['hex']))]}
    if op == 'text_frame':
        st = f.stream(cmd.get('streamid', 2))
        atoms = [(a['msg'].encode(), [x.encode() for x in a.get('args', [])], [x.encode() for x in a.get('labels', [])]) for a in cmd['atoms']]
        return {'frames': [bytes(fr).hex() for fr in f.createtextoutputframe(st, cmd['requestid'], atoms)]}
    if op == 'command_frames':
        import io
        st = f.stream(1)
        args = from_cbor_hex(cmd['args']) if cmd.get('args') else {}
        datafh = io.BytesIO(bytes.fromhex(cmd['data'])) if cmd.get('data') is not None else None
        return {'frames': [bytes(fr).hex() for fr in f.createcommandframes(st, cmd['requestid'], cmd['name'].encode(), args, datafh=datafh)]}
    raise ValueError('unknown op %r' % op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = handle(json.loads(line))
            out['ok'] = True
        except Exception as e:
            out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
