"""IPv4 and IPv6 sockets that need no switch to be checkpointed, checking themselves on SIGUSR1.

  inetsockets.py WORK

Holds a TCP listener on 127.0.0.1 (SO_REUSEADDR, TCP_NODELAY, keepalive times, a larger receive buffer), an
IPv6-only listener on [::], an IPv6 UDP socket bound to ::1, an IPv4 UDP socket connected to its own port on
127.0.0.1 (SO_BROADCAST, IP_TOS), an unbound TCP socket and one bound to a port without listening. Writes WORK/ports
("listen4 listen6 udp6 connected-udp") and WORK/ready. On SIGUSR1 it checks that the options are still set, that
clients connect to both listeners and that a datagram sent to each UDP socket arrives, then appends "OK pid=N"
(or "FAIL ...") to WORK/inetsockets.log.
"""
import os, signal, socket, sys, time

os.chdir(sys.argv[1])
log = open('inetsockets.log', 'a', buffering=1)

L4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
L4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L4.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
L4.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
L4.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 33)
L4.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 200000)
rcvbuf = L4.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
L4.bind(('127.0.0.1', 0))
L4.listen(9)

L6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
L6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
L6.bind(('::', 0))
L6.listen(3)

U6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
U6.bind(('::1', 0))

U4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
U4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
U4.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
U4.bind(('127.0.0.1', 0))
U4.connect(U4.getsockname())

unbound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
bound.bind(('127.0.0.1', 0))

open('ports', 'w').write('%d %d %d %d\n' % (L4.getsockname()[1], L6.getsockname()[1], U6.getsockname()[1], U4.getsockname()[1]))


def check(*_):
    try:
        assert L4.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1, 'reuseaddr'
        assert L4.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1, 'nodelay'
        assert L4.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1, 'keepalive'
        assert L4.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 33, 'keepidle'
        assert L4.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf, 'rcvbuf'
        assert L6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1, 'v6only'
        assert U4.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1, 'broadcast'
        assert U4.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x10, 'tos'
        assert U4.getpeername() == U4.getsockname(), 'udp-peer'
        assert bound.getsockname()[1] != 0 and unbound.getsockname()[1] == 0, 'bound'
        for listener, address in ((L4, '127.0.0.1'), (L6, '::1')):
            client = socket.create_connection((address, listener.getsockname()[1]), timeout=2)
            listener.settimeout(2)
            server, _ = listener.accept()
            client.sendall(b'ping')
            assert server.recv(4) == b'ping', 'tcp-%s' % address
            client.close(); server.close()
        sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sender.sendto(b'datagram6', ('::1', U6.getsockname()[1]))
        U6.settimeout(2)
        assert U6.recv(100) == b'datagram6', 'udp6'
        U4.send(b'datagram4')
        U4.settimeout(2)
        assert U4.recv(100) == b'datagram4', 'udp4'
        log.write('OK pid=%d\n' % os.getpid())
    except Exception as e:
        log.write('FAIL %r pid=%d\n' % (e, os.getpid()))


signal.signal(signal.SIGUSR1, check)
open('ready.tmp', 'w').write(str(os.getpid()))
os.rename('ready.tmp', 'ready')
while True:
    time.sleep(1)
