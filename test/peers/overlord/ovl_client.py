#!/usr/bin/env python3
"""A test client that uses a hub's HTTP API the way Overlord's ovl does (current generation).

Written for wirekit's tests from the API's description (docs/overlord.md, docs/hub.md), standard
library only; the WebSocket client is a minimal one written from RFC 6455. It is not ovl: it
makes ovl's requests in ovl's order and with its formats, so a hub that serves it serves ovl.

    ovl_client.py --port P --user U --password W COMMAND ...

    agents                      GET /api/agents, printed as JSON
    shell MID CMD               WS /shell?command=: stdin read to EOF, sent as one binary frame,
                                then the text {"type":"stdin_close"}; binary frames to stdout
    tty MID                     WS /tty?token=: an ESC [ 8 ; rows ; cols t text frame, then each
                                byte of stdin as its own text frame; binary frames to stdout
    push MID SRC DST            ovl's push: a directory via fs?op=fstat and fs/directories,
                                files by multipart POST /file?dest=&perm=0NNN, links by fs/symlinks
    pull MID SRC DST            ovl's pull: fs?op=lstree, then GET /file?filename=<absolute>
    forward MID PORT            listens on 127.0.0.1 (a free port, printed as "listening N");
                                one WS /forward?host=&port=&token= per connection
    monitor                     WS /api/monitor: "event NAME MID" per event (data[0] parsed again)
    get PATH / post PATH        a raw request, printed as "STATUS BODY"

Lines for the test on stdout are flushed at once. Exit status 0, or 1 with "error: ..." on stderr.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import stat
import struct
import sys
import threading
import urllib.parse

BOUNDARY = '-----------9246f080c855a69012707ab53489b921'
WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def say(*words):
    print(*words, flush=True)


# ---- a minimal WebSocket client (RFC 6455) ----

class WebSocketClosed(Exception):
    pass


class WebSocket:
    def __init__(self, host, port, path, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        # ovl's WebSocket library (ws4py) sends an Origin made of the ws:// URL's scheme and host.
        req = ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: ws://%s:%d\r\n\r\n'
               % (path, host, port, key, host, port))
        self.sock.sendall(req.encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise IOError('connection closed during the handshake')
            head += chunk
            if len(head) > 65536:
                raise IOError('handshake reply too long')
        head, self.buf = head.split(b'\r\n\r\n', 1)
        lines = head.decode('latin1').split('\r\n')
        status = lines[0].split(' ')
        if len(status) < 2 or status[1] != '101':
            raise IOError('handshake refused: %s' % lines[0])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(':')
            headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get('sec-websocket-accept') != want:
            raise IOError('bad Sec-WebSocket-Accept')
        self.lock = threading.Lock()
        self.close_code = None
        self.close_reason = ''

    def _send_frame(self, opcode, data):
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack('!BB', 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack('!BBH', 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack('!BBQ', 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        with self.lock:
            self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode('utf-8'))

    def send_binary(self, data):
        self._send_frame(0x2, bytes(data))

    def close(self, code=1000):
        try:
            self._send_frame(0x8, struct.pack('!H', code))
        except OSError:
            pass

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketClosed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next message as (is_text, bytes); raises WebSocketClosed at the close frame or EOF."""
        parts = []
        kind = None
        while True:
            b0, b1 = self._read(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b1 & 0x80:
                raise IOError('a server frame is masked')
            if n == 126:
                n = struct.unpack('!H', self._read(2))[0]
            elif n == 127:
                n = struct.unpack('!Q', self._read(8))[0]
            if n > 64 * 1024 * 1024:
                raise IOError('frame too large')
            data = self._read(n)
            if opcode == 0x8:
                if len(data) >= 2:
                    self.close_code = struct.unpack('!H', data[:2])[0]
                    self.close_reason = data[2:].decode('utf-8', 'replace')
                self.close(self.close_code or 1000)
                raise WebSocketClosed()
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                kind = opcode
            parts.append(data)
            if fin:
                return kind == 0x1, b''.join(parts)


# ---- the API ----

class Client:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.token = None

    def request(self, method, path, body=None, headers=None, timeout=60):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if self.token:
            h['Authorization'] = 'Bearer ' + self.token
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r, conn

    def call(self, method, path, body=None, what='request'):
        data = None if body is None else json.dumps(body).encode()
        r, conn = self.request(method, path, data, {'Content-Type': 'application/json'} if data else None)
        text = r.read()
        conn.close()
        if r.status != 200:
            try:
                msg = json.loads(text).get('data', 'unknown error')
            except ValueError:
                msg = text.decode('utf-8', 'replace').strip()
            raise RuntimeError('%s: %s' % (what, msg))
        return json.loads(text)['data']

    def login(self, user, password):
        self.token = self.call('POST', '/api/auth/login', {'username': user, 'password': password}, 'login')['token']

    def ws(self, path, **query):
        query['token'] = self.token
        return WebSocket(self.host, self.port, path + '?' + urllib.parse.urlencode(query))

    def agent_path(self, mid, rest):
        return '/api/agents/%s/%s' % (urllib.parse.quote(mid), rest)

    # ovl's fs requests
    def lstree(self, mid, path):
        return self.call('GET', self.agent_path(mid, 'fs?op=lstree&path=%s' % urllib.parse.quote(path)), what='lstree')

    def fstat(self, mid, path):
        return self.call('GET', self.agent_path(mid, 'fs?op=fstat&path=%s' % urllib.parse.quote(path)), what='fstat')

    def mkdir(self, mid, path, perm):
        self.call('POST', self.agent_path(mid, 'fs/directories?path=%s&perm=%d' % (urllib.parse.quote(path), perm)), what='mkdir')

    def push_one(self, mid, src, dst):
        if os.path.islink(src):
            self.call('POST', self.agent_path(mid, 'fs/symlinks?target=%s&dest=%s' % (
                urllib.parse.quote(os.readlink(src)), urllib.parse.quote(dst))), what='push')
            return
        mode = '0%o' % (0x1FF & os.stat(src).st_mode)
        path = self.agent_path(mid, 'file?dest=%s&perm=%s' % (urllib.parse.quote(dst), mode))
        with open(src, 'rb') as f:
            content = f.read()
        head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                'Content-Type: application/octet-stream\r\n\r\n' % (BOUNDARY, os.path.basename(src))).encode()
        tail = ('\r\n--%s--\r\n' % BOUNDARY).encode()
        body = head + content + tail
        r, conn = self.request('POST', path, body, {
            'Content-Type': 'multipart/form-data; boundary=%s' % BOUNDARY,
            'Content-Length': str(len(body))})
        text = r.read()
        conn.close()
        if r.status != 200:
            raise RuntimeError('push: %s' % text.decode('utf-8', 'replace'))

    def push(self, mid, src, dst):
        if not os.path.isdir(src):
            return self.push_one(mid, src, dst)
        src = os.path.abspath(src)
        st = self.fstat(mid, dst)
        if st.get('exists') and not st.get('is_dir'):
            raise RuntimeError('push: %s: Not a directory' % dst)
        base = os.path.join(dst, os.path.basename(src)) if st.get('exists') else dst
        for d, dirs, files in os.walk(src):
            rel = os.path.relpath(d, src)
            target = base if rel == '.' else os.path.join(base, rel)
            self.mkdir(mid, target, stat.S_IMODE(os.stat(d).st_mode))
            for name in sorted(files):
                self.push_one(mid, os.path.join(d, name), os.path.join(target, name))
            for name in sorted(dirs):
                if os.path.islink(os.path.join(d, name)):
                    self.push_one(mid, os.path.join(d, name), os.path.join(target, name))

    def pull(self, mid, src, dst):
        entries = self.lstree(mid, src)
        if not entries or not entries[0].get('exists'):
            raise RuntimeError('pull: %s: No such file or directory' % src)
        root = entries[0]['path']
        for e in entries:
            rel = os.path.relpath(e['path'], root)
            out = dst if rel == '.' else os.path.join(dst, rel)
            if e.get('is_dir'):
                os.makedirs(out, exist_ok=True)
                continue
            if e.get('is_symlink'):
                if os.path.lexists(out):
                    os.unlink(out)
                os.symlink(e.get('link_target', ''), out)
                continue
            os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
            r, conn = self.request('GET', self.agent_path(mid, 'file?filename=%s' % urllib.parse.quote(e['path'])))
            if r.status != 200:
                raise RuntimeError('pull: %s' % r.read().decode('utf-8', 'replace'))
            length = r.getheader('Content-Length')
            if length is None:  # ovl's progress bar needs it
                raise RuntimeError('pull: no Content-Length')
            data = r.read()
            conn.close()
            if len(data) != int(length):
                raise RuntimeError('pull: %d bytes of %s' % (len(data), length))
            with open(out, 'wb') as f:
                f.write(data)
            os.chmod(out, e.get('perm', 0o644) & 0o7777)


def relay_out(ws, out):
    try:
        while True:
            is_text, data = ws.recv()
            if not is_text:
                out.write(data)
                out.flush()
    except (WebSocketClosed, OSError):
        pass


def cmd_shell(c, args):
    ws = c.ws(c.agent_path(args.mid, 'shell'), command=args.command)
    data = sys.stdin.buffer.read()
    if data:
        ws.send_binary(data)
    ws.send_text(json.dumps({'type': 'stdin_close'}))
    relay_out(ws, sys.stdout.buffer)
    return 0


def cmd_tty(c, args):
    ws = c.ws(c.agent_path(args.mid, 'tty'))
    ws.send_text('\x1b[8;%d;%dt' % (args.rows, args.cols))

    def feed():
        while True:
            ch = sys.stdin.buffer.read(1)
            if not ch:
                return
            try:
                ws.send_text(ch.decode('latin1'))
            except OSError:
                return
    threading.Thread(target=feed, daemon=True).start()
    relay_out(ws, sys.stdout.buffer)
    say('\nclosed', ws.close_code)
    return 0


def cmd_forward(c, args):
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(8)
    say('listening', srv.getsockname()[1])

    def serve(conn):
        try:
            ws = c.ws(c.agent_path(args.mid, 'forward'), host='127.0.0.1', port=args.remote_port)
        except (IOError, OSError) as e:
            say('forward-error', e)
            conn.close()
            return

        def up():
            try:
                while True:
                    d = conn.recv(65536)
                    if not d:
                        break
                    ws.send_binary(d)
            except OSError:
                pass
            ws.close()
        threading.Thread(target=up, daemon=True).start()
        try:
            while True:
                is_text, d = ws.recv()
                if not is_text:
                    conn.sendall(d)
        except (WebSocketClosed, OSError):
            pass
        conn.close()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def cmd_monitor(c, args):
    ws = c.ws('/api/monitor')
    say('monitoring')
    try:
        while True:
            is_text, data = ws.recv()
            if not is_text:
                continue
            ev = json.loads(data)
            # The dashboard's way: data[0] is a JSON string, parsed again.
            rec = json.loads(ev['data'][0]) if ev['event'].startswith('agent') else {'mid': ev['data'][0]}
            say('event', ev['event'].replace(' ', '-'), rec['mid'])
    except WebSocketClosed:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--user', required=True)
    ap.add_argument('--password', required=True)
    sub = ap.add_subparsers(dest='cmd', required=True)
    sub.add_parser('agents')
    p = sub.add_parser('shell')
    p.add_argument('mid')
    p.add_argument('command')
    p = sub.add_parser('tty')
    p.add_argument('mid')
    p.add_argument('--rows', type=int, default=24)
    p.add_argument('--cols', type=int, default=80)
    for name in ('push', 'pull'):
        p = sub.add_parser(name)
        p.add_argument('mid')
        p.add_argument('src')
        p.add_argument('dst')
    p = sub.add_parser('forward')
    p.add_argument('mid')
    p.add_argument('remote_port', type=int, metavar='PORT')
    sub.add_parser('monitor')
    for name in ('get', 'post'):
        p = sub.add_parser(name)
        p.add_argument('path')
    args = ap.parse_args()
    c = Client(args.host, args.port)
    try:
        c.login(args.user, args.password)
        if args.cmd == 'agents':
            say(json.dumps(c.call('GET', '/api/agents', what='agents')))
            return 0
        if args.cmd in ('get', 'post'):
            r, conn = c.request(args.cmd.upper(), args.path)
            say(r.status, r.read().decode('utf-8', 'replace').strip())
            return 0
        if args.cmd == 'push':
            c.push(args.mid, args.src, args.dst)
            say('pushed')
            return 0
        if args.cmd == 'pull':
            c.pull(args.mid, args.src, args.dst)
            say('pulled')
            return 0
        return {'shell': cmd_shell, 'tty': cmd_tty, 'forward': cmd_forward, 'monitor': cmd_monitor}[args.cmd](c, args)
    except (RuntimeError, IOError, OSError) as e:
        print('error:', e, file=sys.stderr, flush=True)
        return 1


if __name__ == '__main__':
    sys.exit(main())
