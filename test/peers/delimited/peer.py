#!/usr/bin/env python3
"""A seed 002 peer written from the protocol description (not the original code).

Wire format: each message is b'%' + base64(utf-8 text) + b'$'. The client connects and sends
READY, the server answers OK, then messages go in turns; QUIT ends the conversation.

Usage:
  peer.py client SOCKET   connect, handshake, then answer every message M with 'echo:' + M
                          (reversed text for messages starting with 'rev:'), exit on QUIT.
  peer.py server SOCKET   bind SOCKET, print 'LISTENING' on stdout, accept one client, handshake,
                          send each line of stdin as a message, print every reply as a JSON
                          string on stdout, then send QUIT and exit.
  peer.py die SOCKET      write to stderr and exit with code 7 without connecting.
Reads use 256-byte recv() calls, as the seed does.
"""
import base64
import json
import os
import socket
import sys

RECV_SIZE = 256


class Reader:
    """Splits a byte stream into %...$ messages; each byte is scanned once."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.scanned = 0  # bytes of buf known not to hold the end marker

    def message(self):
        while True:
            start = self.buf.find(b'%')
            if start > 0:
                del self.buf[:start]
                self.scanned = 0
            elif start < 0:
                self.buf.clear()
                self.scanned = 0
            if self.buf:
                end = self.buf.find(b'$', max(1, self.scanned))
                if end >= 0:
                    body = bytes(self.buf[1:end])
                    del self.buf[:end + 1]
                    self.scanned = 0
                    return base64.b64decode(body, validate=True).decode('utf-8')
                self.scanned = len(self.buf)
            data = self.sock.recv(RECV_SIZE)
            if not data:
                raise EOFError('peer closed the connection')
            self.buf += data


def encode(text):
    return b'%' + base64.b64encode(text.encode('utf-8')) + b'$'


def run_client(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    reader = Reader(sock)
    sock.sendall(encode('READY'))
    if reader.message() != 'OK':
        sys.exit('handshake failed')
    while True:
        msg = reader.message()
        if msg == 'QUIT':
            break
        if msg.startswith('rev:'):
            sock.sendall(encode(msg[4:][::-1]))
        else:
            sock.sendall(encode('echo:' + msg))
    sock.close()


def run_server(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(1)
    print('LISTENING', flush=True)
    conn, _ = srv.accept()
    reader = Reader(conn)
    hello = reader.message()
    if hello != 'READY':
        sys.exit('expected READY, got %r' % hello)
    conn.sendall(encode('OK'))
    for line in sys.stdin.read().split('\n'):
        if line == '':
            continue
        conn.sendall(encode(json.loads(line)))
        print(json.dumps(reader.message()), flush=True)
    conn.sendall(encode('QUIT'))
    conn.close()
    srv.close()
    os.unlink(path)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == 'client':
        run_client(path)
    elif mode == 'server':
        run_server(path)
    elif mode == 'die':
        sys.stderr.write('peer: giving up before connecting\n')
        sys.exit(7)
    else:
        sys.exit('unknown mode ' + mode)


if __name__ == '__main__':
    main()
