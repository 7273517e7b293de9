#!/usr/bin/python3
"""A Python peer for the seed 004 packet protocol, written from the seed (Armchair).

17-byte header: payload length (8 bytes big-endian), type (1 byte), command id (8 bytes
big-endian); payloads are dill pickles of the argument tuple. Files travel the seed's way:
raw bytes followed by the end marker. Unlike the seed, the window allows exactly `window`
packets in flight and packets that arrive while waiting for a ready are kept, not lost.

Usage: armchair_peer.py PORT DIR   (connects to 127.0.0.1:PORT and runs the scenario below)
"""
import hashlib
import os
import socket
import sys

import dill

TYPES = {'init': 0, 'close': 1, 'error': 2, 'ready': 3, 'transfer': 4, 'init_containers': 5,
         'sending_files': 6, 'pause': 7, 'stop': 8, 'continue': 9, 'stopped': 10, 'loc_req': 11,
         'loc_resp': 12, 'home': 13, 'make': 14, 'mix': 15, 'save': 16}
NAMES = {v: k for k, v in TYPES.items()}
GHOST = ['continue', 'stopped', 'loc_resp', 'loc_req', 'save', 'error']
FTP_EOF = b'AFKJldkjvaJKDvJDFDFGHowCouldYouEverHaveThisInAFile'


class Peer:
    def __init__(self, sock, window):
        self.sock = sock
        self.window = window
        self.cid = 0
        self.inflight = []
        self.pending = []
        self.buf = b''

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError('peer closed')
        self.buf += data

    def recv_size(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_until(self, marker):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            start = max(0, len(self.buf) - len(marker) + 1)
            self._fill()

    def send(self, ptype, *args):
        if ptype != 'ready' and ptype not in GHOST:
            while len(self.inflight) >= self.window:
                self._block_on_ready()
        if ptype not in GHOST:
            self.cid += 1
        payload = dill.dumps(args) if args else b''
        self.sock.sendall(len(payload).to_bytes(8, 'big') + bytes([TYPES[ptype]]) + self.cid.to_bytes(8, 'big') + payload)
        if ptype != 'ready' and ptype not in GHOST:
            self.inflight.append(self.cid)
        return self.cid

    def _recv(self):
        header = self.recv_size(17)
        n = int.from_bytes(header[:8], 'big')
        ptype = NAMES[header[8]]
        cid = int.from_bytes(header[9:17], 'big')
        payload = dill.loads(self.recv_size(n)) if n > 0 else None
        return ptype, cid, payload

    def _block_on_ready(self):
        ptype, cid, payload = self._recv()
        if ptype == 'ready':
            self.inflight.remove(payload[0])
        else:
            self.pending.append((ptype, cid, payload))

    def recv(self):
        if self.pending:
            return self.pending.pop(0)
        while True:
            ptype, cid, payload = self._recv()
            if ptype == 'ready':
                self.inflight.remove(payload[0])
                continue
            return ptype, cid, payload

    def burn(self):
        while self.inflight:
            self._block_on_ready()

    def recv_ftp(self, directory):
        ptype, cid, args = self.recv()
        assert ptype == 'sending_files', ptype
        out = []
        for name in args[0]:
            assert os.path.basename(name) == name
            data = self.recv_until(FTP_EOF)
            with open(os.path.join(directory, name), 'wb') as f:
                f.write(data)
            out.append((name, hashlib.sha256(data).hexdigest(), len(data)))
        self.send('ready', cid)
        return out

    def send_ftp(self, paths):
        self.send('sending_files', [os.path.basename(p) for p in paths])
        for p in paths:
            with open(p, 'rb') as f:
                self.sock.sendfile(f)
            self.sock.sendall(FTP_EOF)


def main():
    port = int(sys.argv[1])
    directory = sys.argv[2]
    sock = socket.create_connection(('127.0.0.1', port))
    peer = Peer(sock, window=2)

    # 1. Plain data of every kind, as the seed sends it (an argument tuple).
    peer.send('init', 'py-peer', 3, -2**70, [1.5, None, True], {'k': b'\x00\x01', 2: (1, 2)}, {'s'})
    # 2. Five windowed packets; wirekit acknowledges each.
    for i in range(5):
        peer.send('make', i)
    peer.burn()

    # 3. wirekit sends three packets; answer each with ready, echo the payloads back in 'mix'.
    got = []
    for _ in range(3):
        ptype, cid, payload = peer.recv()
        got.append((ptype, payload))
        peer.send('ready', cid)
    peer.send('mix', got)

    # 4. An urgent request gets an urgent answer carrying the current id.
    ptype, cid, payload = peer.recv()
    assert ptype == 'loc_req', ptype
    peer.send('loc_resp', payload[0] * 2, peer.cid)

    # 5. Files from wirekit (seed raw stream), hashes reported back; then files to wirekit.
    received = peer.recv_ftp(directory)
    peer.send('save', received)
    src = os.path.join(directory, 'from_python.bin')
    with open(src, 'wb') as f:
        f.write(bytes(range(256)) * 1000)
    peer.send_ftp([src])
    peer.burn()

    # 6. Error packet, then close after wirekit resets.
    peer.send('error', 'py error', 7)
    ptype, cid, payload = peer.recv()
    assert ptype == 'home', ptype
    peer.send('close', 'bye')
    peer.burn()
    sock.close()


if __name__ == '__main__':
    main()
