"""A server for a network namespace of its own, checking itself on SIGUSR1.

  netnsserver.py WORK

Serves on every address of its namespace: TCP port 7000 (one dual-stack listener on [::]) answers each line with
"pid=N LINE", UDP port 7001 answers each datagram the same way. Writes WORK/ready once it serves. On SIGUSR1 it checks
that getpid() is the PID it started with, that it still has its connections' sockets, that a client on 127.0.0.1 (the
loopback device, up) reaches the listener and that a datagram sent to 127.0.0.1:7001 arrives, then appends
"OK pid=N" (or "FAIL ...") to WORK/netns.log.
"""
import os, select, signal, socket, sys

os.chdir(sys.argv[1])
log = open('netns.log', 'a', buffering=1)
started = os.getpid()

listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
listener.bind(('::', 7000))
listener.listen(8)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(('0.0.0.0', 7001))
clients = {}


def check(*_):
    try:
        assert os.getpid() == started, 'getpid() %d, started as %d' % (os.getpid(), started)
        probe = socket.create_connection(('127.0.0.1', 7000), timeout=5)
        probe.close()
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b'selfcheck', ('127.0.0.1', 7001))
        udp.settimeout(5)
        data, _ = udp.recvfrom(100)
        udp.settimeout(None)
        assert data == b'selfcheck', 'datagram %r' % data
        log.write('OK pid=%d\n' % os.getpid())
    except Exception as e:
        log.write('FAIL %s\n' % e)


signal.signal(signal.SIGUSR1, check)
open('ready', 'w').write('%d\n' % started)
while True:
    readable, _, _ = select.select([listener, udp] + list(clients), [], [])
    for s in readable:
        if s is listener:
            connection, _ = listener.accept()
            clients[connection] = b''
        elif s is udp:
            try:
                data, peer = udp.recvfrom(2048)
            except BlockingIOError:
                continue
            udp.sendto(b'pid=%d %s' % (os.getpid(), data), peer)
        else:
            data = s.recv(2048)
            if not data:
                del clients[s]
                s.close()
                continue
            clients[s] += data
            while b'\n' in clients[s]:
                line, clients[s] = clients[s].split(b'\n', 1)
                s.sendall(b'pid=%d %s\n' % (os.getpid(), line))
