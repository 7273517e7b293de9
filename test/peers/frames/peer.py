#!/usr/bin/env python3
"""Independent Python peer for the seed 001 frame protocol (written from the seed's description).

Frame: 24-bit little-endian payload length, 1 byte (type << 4 | flags), payload.
Usage:
  peer.py build                 read a JSON request list on stdin, print frames as hex lines
  peer.py client-socket PORT    run the standard script against a TCP server, print JSON results
  peer.py client-http URL       same, as one HTTP POST
  peer.py server-socket         serve one TCP connection; prints the port on stdout first
  peer.py server-http           serve HTTP until stdin closes; prints the port first
"""
import http.client
import http.server
import json
import socket
import struct
import sys
import threading
import urllib.parse

MAX = 32768
CMD_NAME, CMD_ARG, CMD_DATA, BYTES_RESP, ERR_RESP = 1, 2, 3, 4, 5
MEDIA = 'application/mercurial-exp-framing-0001'


def frame(t, f, payload):
    n = len(payload)
    assert n < 1 << 24
    return bytes([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (t << 4) | f]) + bytes(payload)


def command(name, args, data=None):
    out = []
    flags = (2 if args else 0) | (4 if data is not None else 0)
    out.append(frame(CMD_NAME, flags or 1, name))
    keys = sorted(args)
    for i, k in enumerate(keys):
        v = args[k]
        out.append(frame(CMD_ARG, 2 if i == len(keys) - 1 else 0, struct.pack('<HH', len(k), len(v)) + k + v))
    if data is not None:
        off = 0
        while True:
            chunk = data[off:off + MAX]
            off += len(chunk)
            full = len(chunk) == MAX
            out.append(frame(CMD_DATA, 1 if full else 2, chunk))
            if not full:
                break
    return out


def read_frames(buf):
    """Yields (type, flags, payload) from a bytes buffer; raises on a partial frame."""
    i = 0
    while i < len(buf):
        if len(buf) - i < 4:
            raise ValueError('partial header')
        n = buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16)
        t, f = buf[i + 3] >> 4, buf[i + 3] & 15
        if len(buf) - i - 4 < n:
            raise ValueError('partial payload')
        yield t, f, buf[i + 4:i + 4 + n]
        i += 4 + n


def recv_frame(sock_file):
    hdr = sock_file.read(4)
    if not hdr:
        return None
    if len(hdr) < 4:
        raise EOFError('partial header')
    n = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16)
    payload = sock_file.read(n)
    if len(payload) < n:
        raise EOFError('partial payload')
    return hdr[3] >> 4, hdr[3] & 15, payload


SCRIPT = [
    ('echo', {b'value': b'hello from python'}, None),
    ('args', {b'zeta': b'1', b'alpha': b'2', b'mid': b'3'}, None),
    ('len', {}, bytes(range(256)) * 512),          # 131072 bytes: exact multiple of 32768
    ('len', {}, b''),
    ('fail', {}, None),
    ('big', {}, None),
]


def script_bytes():
    return b''.join(f for name, args, data in SCRIPT for f in command(name.encode(), args, data))


def collect_responses(frames, count):
    results, body = [], b''
    for t, f, payload in frames:
        if t == BYTES_RESP:
            body += payload
            if f & 2:
                results.append({'ok': True, 'len': len(body), 'text': body[:64].decode('latin-1')})
                body = b''
        elif t == ERR_RESP:
            kind = 'application' if f & 2 else 'protocol' if f & 1 else 'unknown'
            results.append({'ok': False, 'kind': kind, 'message': payload.decode()})
        else:
            raise ValueError('unexpected frame type %d' % t)
        if len(results) == count:
            break
    return results


def socket_frames(sock):
    fh = sock.makefile('rb')
    while True:
        fr = recv_frame(fh)
        if fr is None:
            return
        yield fr


def run_command(name, args, data):
    if name == b'echo':
        return True, args.get(b'value', b'')
    if name == b'args':
        return True, b','.join(k + b'=' + args[k] for k in sorted(args))
    if name == b'len':
        return True, str(len(data or b'')).encode()
    if name == b'big':
        return True, b'z' * 70000
    if name == b'fail':
        return False, b'python says no'
    return False, b'unknown command ' + name


def response_frames(ok, body):
    if not ok:
        return [frame(ERR_RESP, 2, body)]
    if len(body) <= MAX:
        return [frame(BYTES_RESP, 2, body)]
    out = []
    for off in range(0, len(body), MAX):
        chunk = body[off:off + MAX]
        out.append(frame(BYTES_RESP, 2 if off + MAX >= len(body) else 1, chunk))
    return out


class Reactor:
    """Minimal server state machine: returns a list of completed commands per frame."""

    def __init__(self):
        self.state = 'idle'

    def feed(self, t, f, payload):
        if self.state == 'idle':
            if t != CMD_NAME:
                raise ValueError('expected command frame; got %d' % t)
            self.name, self.args, self.data = bytes(payload), {}, None
            self.have_data = bool(f & 4)
            if f & 1:
                return (self.name, self.args, None)
            if f & 2:
                self.state = 'args'
            elif f & 4:
                self.state, self.data = 'data', b''
            else:
                raise ValueError('missing frame flags on command frame')
            return None
        if self.state == 'args':
            if t != CMD_ARG:
                raise ValueError('expected command argument frame; got %d' % t)
            nl, vl = struct.unpack_from('<HH', payload)
            k, v = bytes(payload[4:4 + nl]), bytes(payload[4 + nl:])
            if f & 1:  # continuation: collect raw value frames
                self.arg, self.want, self.state = k, vl, 'argcont'
                self.args[k] = v
                return None
            self.args[k] = v
            return self._after_arg(f)
        if self.state == 'argcont':
            self.args[self.arg] += bytes(payload)
            if f & 1:
                return None
            assert len(self.args[self.arg]) == self.want
            self.state = 'args'
            return self._after_arg(f)
        if self.state == 'data':
            if t != CMD_DATA:
                raise ValueError('expected command data frame; got %d' % t)
            self.data += bytes(payload)
            if f & 2:
                self.state = 'idle'
                return (self.name, self.args, self.data)
            return None

    def _after_arg(self, f):
        if not f & 2:
            return None
        if self.have_data:
            self.state, self.data = 'data', b''
            return None
        self.state = 'idle'
        return (self.name, self.args, None)


def server_socket():
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    reactor = Reactor()
    try:
        for t, f, payload in socket_frames(conn):
            try:
                done = reactor.feed(t, f, payload)
            except ValueError as e:
                conn.sendall(frame(ERR_RESP, 1, str(e).encode()))
                break
            if done:
                conn.sendall(b''.join(response_frames(*run_command(*done))))
    finally:
        conn.close()
        srv.close()


class HttpHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get('content-length') or 0)
        if self.headers.get('content-type') != MEDIA:
            self.send_error(415)
            return
        body = self.rfile.read(n)
        reactor, out = Reactor(), []
        try:
            for t, f, payload in read_frames(body):
                done = reactor.feed(t, f, payload)
                if done:
                    out.extend(response_frames(*run_command(*done)))
        except ValueError as e:
            msg = str(e).encode()
            self.send_response(400)
            self.send_header('content-type', 'text/plain')
            self.send_header('content-length', str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        data = b''.join(out)  # deferred: everything after the whole body was read
        self.send_response(200)
        self.send_header('content-type', MEDIA)
        self.send_header('content-length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def server_http():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), HttpHandler)
    print(srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()
    srv.shutdown()


def main():
    mode = sys.argv[1]
    if mode == 'build':
        for req in json.load(sys.stdin):
            args = {k.encode(): v.encode() for k, v in req.get('args', {}).items()}
            data = bytes.fromhex(req['data']) if 'data' in req else None
            for fr in command(req['name'].encode(), args, data):
                print(fr.hex())
    elif mode == 'client-socket':
        sock = socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=10)
        sock.sendall(script_bytes())
        print(json.dumps(collect_responses(socket_frames(sock), len(SCRIPT))))
        sock.close()
    elif mode == 'client-http':
        u = urllib.parse.urlparse(sys.argv[2])
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request('POST', u.path, body=script_bytes(), headers={'content-type': MEDIA})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        assert r.getheader('content-type') == MEDIA
        print(json.dumps(collect_responses(read_frames(body), len(SCRIPT))))
    elif mode == 'server-socket':
        server_socket()
    elif mode == 'server-http':
        server_http()


if __name__ == '__main__':
    main()
