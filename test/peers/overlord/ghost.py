#!/usr/bin/env python3
"""A test ghost for wirekit's Overlord compatibility, written from the protocol description
(docs/overlord.md), standard library only. Both generations:

  classic: raw TCP; {"rid","timeout","name","params"} / {"rid","response","params"}
  current: GET /connect WebSocket handshake, then the raw socket;
           {"rid","timeout","name","payload"} / {"rid","status","payload"}

It registers as an agent (mode 1), pings, and serves terminal, shell, file_download,
file_upload and forward by dialing back one child connection per session (modes 2, 3, 5, 6).
It prints one line per event on stdout ("registered", "refused <text>", ...) for the tests.
"""
import argparse
import base64
import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid

MODE_AGENT, MODE_TERMINAL, MODE_SHELL, MODE_FILE, MODE_FORWARD = 1, 2, 3, 5, 6
STDIN_CLOSED = b'##STDIN_CLOSED##'
PRINT_LOCK = threading.Lock()


def say(*parts):
    with PRINT_LOCK:
        sys.stdout.write(' '.join(str(p) for p in parts) + '\n')
        sys.stdout.flush()


class Link:
    """One connection to the hub: framing, requests and responses in one generation's keys."""

    def __init__(self, args):
        self.args = args
        self.gen = args.gen
        self.buf = b''
        self.sock = socket.create_connection((args.host, args.port), timeout=10)
        self.sock.settimeout(None)
        if self.gen == 'current':
            self._upgrade()

    def _upgrade(self):
        key = base64.b64encode(os.urandom(16)).decode()
        host = '%s:%d' % (self.args.host, self.args.port)
        req = ('GET /connect HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
               'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: ws://%s\r\n\r\n') % (host, key, host)
        self.sock.sendall(req.encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(128)
            if not chunk:
                raise IOError('closed during the handshake')
            data += chunk
        head, _, rest = data.partition(b'\r\n\r\n')
        lines = head.decode('latin1').split('\r\n')
        status = lines[0].split(' ', 2)
        if len(status) != 3 or status[1] != '101':
            raise IOError('handshake refused: %s' % lines[0])
        headers = {}
        for line in lines[1:]:
            if ':' not in line:
                raise IOError('bad header line')
            k, _, v = line.partition(':')
            headers[k.strip().lower()] = v.strip()
        if headers.get('upgrade', '').lower() != 'websocket' or headers.get('connection', '').lower() != 'upgrade':
            raise IOError('bad upgrade reply')
        want = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        if headers.get('sec-websocket-accept') != want:
            raise IOError('bad Sec-WebSocket-Accept')
        if rest:
            raise IOError('the hub sent bytes after the 101 before our register')

    def payload_key(self):
        return 'params' if self.gen == 'classic' else 'payload'

    def send_request(self, name, payload, timeout=60, rid=None, extra=b''):
        rid = rid or str(uuid.uuid4())
        msg = {'rid': rid, 'timeout': timeout, 'name': name, self.payload_key(): payload}
        self.sock.sendall(json.dumps(msg).encode() + b'\r\n' + extra)
        return rid

    def send_response(self, rid, error=None, payload=None):
        if self.gen == 'classic':
            msg = {'rid': rid, 'response': 'success' if error is None else error, 'params': payload}
        elif error is None:
            msg = {'rid': rid, 'status': 'success', 'payload': payload}
        else:
            msg = {'rid': rid, 'status': 'failed', 'payload': {'error': error}}
        self.sock.sendall(json.dumps(msg).encode() + b'\r\n')

    def read_message(self, timeout=None):
        """The next message (dict), or None at EOF or timeout."""
        deadline = None if timeout is None else time.time() + timeout
        while b'\n' not in self.buf:
            if deadline is not None:
                left = deadline - time.time()
                if left <= 0:
                    return None
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return None
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        try:
            return json.loads(line.rstrip(b'\r').decode())
        except ValueError:
            return {}

    def is_response(self, m):
        return ('response' in m) if self.gen == 'classic' else ('status' in m)

    def ok(self, m):
        return (m.get('response') if self.gen == 'classic' else m.get('status')) == 'success'

    def error_text(self, m):
        if self.gen == 'classic':
            return m.get('response')
        p = m.get('payload') or {}
        return p.get('error') if isinstance(p, dict) else m.get('status')

    def register(self, mode, mid, sid, properties, extra=b''):
        rid = self.send_request('register', {'mode': mode, 'mid': mid, 'sid': sid, 'properties': properties}, extra=extra)
        while True:
            m = self.read_message(timeout=60)
            if m is None:
                return None
            if self.is_response(m) and m.get('rid') == rid:
                return m

    def take_leftover(self):
        b, self.buf = self.buf, b''
        return b


# ---- in-band terminal controls ----

class ClassicParser:
    """0x80 {json} 0x81, kept across reads. As both classic ghosts do: every byte 0x80 starts a
    control, also inside a UTF-8 character, and a control that is not JSON ends the session."""

    def __init__(self):
        self.control = None

    def feed(self, data):
        out, events = bytearray(), []
        for b in data:
            if self.control is not None:
                if b == 0x81:
                    events.append(('data', bytes(out)))
                    out = bytearray()
                    try:
                        events.append(('control', json.loads(bytes(self.control).decode())))
                    except ValueError:
                        say('bad-control', repr(bytes(self.control)))
                        raise IOError('a control that is not JSON')
                    self.control = None
                else:
                    self.control.append(b)
                continue
            if b == 0x80:
                self.control = bytearray()
                continue
            out.append(b)
        events.append(('data', bytes(out)))
        return events


class CurrentParser:
    """ESC [ 8 ; rows ; cols t, kept across reads."""

    def __init__(self):
        self.held = b''

    def feed(self, data):
        data = self.held + data
        self.held = b''
        events, start, i = [], 0, 0
        while i < len(data):
            if data[i] != 0x1B:
                i += 1
                continue
            j = i + 1
            prefix = b'[8;'
            k = 0
            while k < len(prefix) and j < len(data) and data[j] == prefix[k]:
                j += 1
                k += 1
            if k < len(prefix):
                if j >= len(data):
                    events.append(('data', data[start:i]))
                    self.held = data[i:]
                    return events
                i += 1
                continue
            end = data.find(b't', j, j + 16)
            if end < 0:
                if len(data) - j < 16:
                    events.append(('data', data[start:i]))
                    self.held = data[i:]
                    return events
                i += 1
                continue
            parts = data[j:end].split(b';')
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                events.append(('data', data[start:i]))
                events.append(('control', {'command': 'resize', 'params': [int(parts[0]), int(parts[1])]}))
                i = start = end + 1
                continue
            i += 1
        events.append(('data', data[start:]))
        return events


# ---- children ----

def child_link(args, mode, sid, eager=b''):
    link = Link(args)
    r = link.register(mode, str(uuid.uuid4()), sid, {}, extra=eager)
    if r is None:
        raise IOError('no reply to the child register')
    if not link.ok(r):
        say('child-refused', link.error_text(r))
        raise IOError('child refused')
    return link


def run_terminal(args, sid):
    link = child_link(args, MODE_TERMINAL, sid, eager=args.eager.encode() if args.eager else b'')
    if args.passive_download:
        # As `ghost.py --download FILE` typed in this terminal: a file child nobody asked for,
        # with a fresh sid, naming the terminal's sid.
        spawn(run_download, args, str(uuid.uuid4()), args.passive_download, sid)
    master, slave = pty.openpty()
    env = dict(os.environ, TERM='xterm', PS1='$ ')
    proc = subprocess.Popen([args.shell], stdin=slave, stdout=slave, stderr=slave, cwd=args.home, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    TERMINALS[sid] = proc.pid
    parser = ClassicParser() if args.gen == 'classic' else CurrentParser()
    sock = link.sock

    def handle(data):
        for kind, value in parser.feed(data):
            if kind == 'data' and value:
                os.write(master, value)
            elif kind == 'control' and value.get('command') == 'resize':
                rows, cols = value['params']
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
                say('resize', rows, cols)
    left = link.take_leftover()
    if left:
        handle(left)
    try:
        while True:
            r, _, _ = select.select([sock, master], [], [], 1.0)
            if sock in r:
                data = sock.recv(65536)
                if not data:
                    break
                handle(data)
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                sock.sendall(data)
            if proc.poll() is not None and not select.select([master], [], [], 0)[0]:
                break
    finally:
        TERMINALS.pop(sid, None)
        try:
            os.killpg(proc.pid, signal.SIGHUP)
        except OSError:
            pass
        proc.wait()
        os.close(master)
        sock.close()


def run_shell(args, sid, command):
    link = child_link(args, MODE_SHELL, sid)
    # --stderr-apart: stdout and stderr on two pipes, stderr passed on after stdout ends (classic
    # ghost.py reads them apart, so their order is not kept).
    proc = subprocess.Popen(['sh', '-c', command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if args.stderr_apart else subprocess.STDOUT,
                            cwd=args.home, bufsize=0)
    sock = link.sock

    def output():
        try:
            for pipe in ([proc.stdout, proc.stderr] if args.stderr_apart else [proc.stdout]):
                while True:
                    data = os.read(pipe.fileno(), 65536)
                    if not data:
                        break
                    sock.sendall(data)
        except OSError:
            return
        proc.wait()
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
    t = threading.Thread(target=output, daemon=True)
    t.start()
    held = b''
    closed = False

    def stdin(data):
        nonlocal held, closed
        data = held + data
        i = data.find(STDIN_CLOSED)
        if i >= 0:
            proc.stdin.write(data[:i])
            proc.stdin.close()
            closed = True
            return
        keep = 0
        for n in range(min(len(STDIN_CLOSED) - 1, len(data)), 0, -1):
            if STDIN_CLOSED.startswith(data[-n:]):
                keep = n
                break
        held = data[len(data) - keep:]
        proc.stdin.write(data[:len(data) - keep])
        proc.stdin.flush()
    try:
        left = link.take_leftover()
        if left:
            stdin(left) if args.gen == 'classic' else proc.stdin.write(left)
        while not closed and t.is_alive():
            r, _, _ = select.select([sock], [], [], 0.5)
            if not r:
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            if args.gen == 'classic' and args.py3_classic_shell:
                # As classic ghost.py under Python 3: any byte read after the start fails its
                # marker search (a str in bytes); it kills the command, output not yet sent is lost.
                say('shell-crash')
                proc.kill()
                sock.close()
                return
            if args.gen == 'classic':
                stdin(data)
            else:
                proc.stdin.write(data)
                proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass
    try:
        if not closed:
            proc.stdin.close()
    except OSError:
        pass
    t.join()


def run_download(args, sid, filename, terminal_sid=None):
    link = child_link(args, MODE_FILE, sid)
    size = os.path.getsize(filename)
    link.send_request('request_to_download', {'terminal_sid': terminal_sid, 'filename': os.path.basename(filename), 'size': size})
    while True:
        m = link.read_message(timeout=60)
        if m is None:
            link.sock.close()
            return
        if m.get('name') == 'clear_to_download':
            break
    with open(filename, 'rb') as f:
        while True:
            block = f.read(4096)
            if not block:
                break
            link.sock.sendall(block)
    link.sock.close()
    say('downloaded', filename, size)


def run_upload(args, sid, f, target, perm):
    link = child_link(args, MODE_FILE, sid)
    link.send_request('clear_to_upload', {}, timeout=-1)
    left = link.take_leftover()
    if left:
        f.write(left)
    while True:
        data = link.sock.recv(65536)
        if not data:
            break
        f.write(data)
    f.close()
    if perm:
        os.chmod(target, perm)
    link.sock.close()
    say('uploaded', target, os.path.getsize(target))


def run_forward(args, sid, host, port):
    link = child_link(args, MODE_FORWARD, sid)
    try:
        target = socket.create_connection((host, port), timeout=3)
    except OSError:
        link.sock.close()
        return
    left = link.take_leftover()
    if left:
        target.sendall(left)
    socks = [link.sock, target]
    open_ends = {link.sock: True, target: True}
    while open_ends[link.sock]:
        r, _, _ = select.select([s for s in socks if open_ends[s]], [], [], 1.0)
        for s in r:
            data = s.recv(65536)
            other = target if s is link.sock else link.sock
            if not data:
                open_ends[s] = False
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            other.sendall(data)
    target.close()
    link.sock.close()


def entry(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {'exists': False}
    e = {'exists': True, 'path': os.path.abspath(path), 'perm': st.st_mode, 'size': st.st_size,
         'mtime': int(st.st_mtime), 'is_dir': os.path.isdir(path) and not os.path.islink(path),
         'is_symlink': os.path.islink(path)}
    if e['is_symlink']:
        e['link_target'] = os.readlink(path)
    return e


def fs_request(args, name, p):
    if name == 'fstat':
        return entry(resolve(args, p['path']))
    if name == 'list_tree':
        root = resolve(args, p['path'])
        out = [entry(root)]
        if os.path.isdir(root) and not os.path.islink(root):
            for d, dirs, files in os.walk(root):
                out.extend(entry(os.path.join(d, f)) for f in sorted(files))
                out.extend(entry(os.path.join(d, x)) for x in sorted(dirs))
        return out
    if name == 'mkdir':
        path = resolve(args, p['path'])
        os.makedirs(path, exist_ok=True)
        os.chmod(path, p['perm'])
        return None
    dest = resolve(args, p['dest'])
    if os.path.lexists(dest):
        os.unlink(dest)
    os.symlink(p['target'], dest)
    return None


# The shells of this ghost's terminals, by terminal sid: an upload naming one without a dest lands
# in its current directory (as Overlord's ghost does, read here from /proc).
TERMINALS = {}


def terminal_cwd(terminal_sid):
    pid = TERMINALS.get(terminal_sid) if terminal_sid else None
    if pid is None:
        return None
    try:
        return os.readlink('/proc/%d/cwd' % pid)
    except OSError:
        return None


def spawn(fn, *a):
    threading.Thread(target=fn, args=a, daemon=True).start()


def resolve(args, p):
    return p if os.path.isabs(p) else os.path.join(args.home, p)


# ---- the agent ----

def agent(args):
    link = Link(args)
    props = json.loads(args.properties)
    r = link.register(MODE_AGENT, args.mid, str(uuid.uuid4()), props)
    if r is None:
        say('no-reply')
        return 2
    if not link.ok(r):
        say('refused', link.error_text(r))
        return 1
    say('registered', args.mid)
    last_ping = 0
    key = link.payload_key()
    while True:
        now = time.time()
        if args.ping_interval > 0 and now - last_ping >= args.ping_interval:
            link.send_request('ping', {}, timeout=5)
            last_ping = now
        m = link.read_message(timeout=0.2)
        if m is None:
            try:
                r, _, _ = select.select([link.sock], [], [], 0)
                if r and not link.sock.recv(1, socket.MSG_PEEK):
                    say('disconnected')
                    return 3
            except OSError:
                say('disconnected')
                return 3
            continue
        if link.is_response(m) or 'name' not in m:
            continue
        name, rid, p = m['name'], m.get('rid'), m.get(key)
        say('request', name)
        try:
            if name == 'terminal':
                link.send_response(rid)
                spawn(run_terminal, args, p['sid'])
            elif name == 'shell':
                link.send_response(rid)
                spawn(run_shell, args, p['sid'], p['command'])
            elif name == 'file_download':
                fn = resolve(args, p['filename'])
                if not os.path.isfile(fn):
                    link.send_response(rid, error='file %s not found' % p['filename'])
                    continue
                link.send_response(rid)
                spawn(run_download, args, p['sid'], fn)
            elif name == 'file_upload':
                dest = p.get('dest')
                cwd = None if dest else terminal_cwd(p.get('terminal_sid'))
                say('upload-terminal', p.get('terminal_sid'), cwd)
                target = resolve(args, dest) if dest else os.path.join(cwd, p['filename']) if cwd else resolve(args, p['filename'])
                if os.path.isdir(target):
                    target = os.path.join(target, p['filename'])
                try:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    f = open(target, 'wb')
                except OSError as e:
                    link.send_response(rid, error=str(e))
                    continue
                link.send_response(rid)
                spawn(run_upload, args, p['sid'], f, target, p.get('perm') or 0)
            elif name == 'forward':
                link.send_response(rid)
                spawn(run_forward, args, p['sid'], p.get('host') or '127.0.0.1', p['port'])
            elif name in ('list_tree', 'fstat', 'mkdir', 'create_symlink'):
                try:
                    link.send_response(rid, payload=fs_request(args, name, p))
                except OSError as e:
                    link.send_response(rid, error=str(e))
            elif name == 'upgrade':
                say('upgrade-requested')  # timeout -1: never answered
            elif m.get('timeout', 60) >= 0:
                pass  # unknown: no reply, as ghosts do
        except (KeyError, TypeError) as e:
            say('bad-request', name, e)
            return 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--gen', choices=['classic', 'current'], default='classic')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--mid', default='ghost-' + uuid.uuid4().hex[:8])
    ap.add_argument('--properties', default='{}')
    ap.add_argument('--ping-interval', type=float, default=6.0)
    ap.add_argument('--shell', default='/bin/sh')
    ap.add_argument('--home', default=os.getcwd())
    ap.add_argument('--passive-download', default='', help='each terminal also starts a download of this file (ghost.py --download)')
    ap.add_argument('--stderr-apart', action='store_true', help='a shell passes stderr on after stdout')
    ap.add_argument('--py3-classic-shell', action='store_true', help='a classic shell dies on any stdin byte (ghost.py under Python 3)')
    ap.add_argument('--eager', default='', help='a terminal child sends this right behind its register')
    args = ap.parse_args()
    try:
        sys.exit(agent(args))
    except (IOError, OSError) as e:
        say('error', e)
        sys.exit(5)


if __name__ == '__main__':
    main()
