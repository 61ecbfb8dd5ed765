"""A TCP server whose port has lingering connections, checking itself on SIGUSR1.

  lingering.py WORK FAMILY MODE      FAMILY: 4 (127.0.0.1) or 6 ([::], dual stack); MODE: plain or established

Listens with SO_REUSEADDR (as servers do) and serves three clients that connect and that the server closes first, so
that their connections stay in TIME-WAIT on the listener's port. A helper started with a double fork (outside the
process tree: its pid is in WORK/helper) accepts one more connection from the listener and keeps it established.
With MODE established the server also keeps a connection of its own to its listener open (both ends in the tree). A
second listener, without SO_REUSEADDR and with no clients, shows that the option's saved value comes back. Writes
WORK/port and WORK/ready. On SIGUSR1 it checks both listeners' SO_REUSEADDR (1 and 0), that each accepts a new
client and echoes, and that its own connection still carries data both ways, then appends "OK pid=N" (or
"FAIL ...") to WORK/lingering.log.
"""
import os, signal, socket, sys, time

work, family, mode = sys.argv[1], sys.argv[2], sys.argv[3]
os.chdir(work)
log = open('lingering.log', 'a', buffering=1)
if family == '4':
    af, any_address, loopback = socket.AF_INET, '127.0.0.1', '127.0.0.1'
else:
    af, any_address, loopback = socket.AF_INET6, '::', '::1'


def listener(reuse):
    s = socket.socket(af, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuse)
    s.bind((any_address, 0))
    s.listen(8)
    return s


L = listener(1)
quiet = listener(0)
port = L.getsockname()[1]


def connect(to):
    return socket.create_connection((loopback, to.getsockname()[1]), timeout=5)


# The helper: a worker that took one connection and left the tree (its parent exits, it is reparented).
if os.fork() == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    client = connect(L)
    served, _ = L.accept()
    L.close(); quiet.close()
    open('helper.tmp', 'w').write(str(os.getpid()))
    os.rename('helper.tmp', 'helper')
    while True:
        time.sleep(1)
os.wait()
while not os.path.exists('helper'):
    time.sleep(0.01)

# Clients the server closes first: its side of each connection stays in TIME-WAIT on the port.
for _ in range(3):
    client = connect(L)
    served, _ = L.accept()
    served.sendall(b'bye')
    served.close()
    assert client.recv(3) == b'bye'
    client.recv(1)
    client.close()

own_client = own_served = None
if mode == 'established':
    own_client = connect(L)
    own_served, _ = L.accept()

open('port', 'w').write('%d %d\n' % (port, quiet.getsockname()[1]))


def echo(client, served, what):
    client.sendall(b'ping-' + what.encode())
    served.settimeout(2)
    assert served.recv(100) == b'ping-' + what.encode(), 'receive-' + what
    served.sendall(b'pong')
    client.settimeout(2)
    assert client.recv(100) == b'pong', 'reply-' + what


def check(*_):
    try:
        assert L.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1, 'reuseaddr-1'
        assert quiet.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0, 'reuseaddr-0'
        assert L.getsockname()[1] == port, 'port'
        for listening, what in ((L, 'listener'), (quiet, 'quiet')):
            client = connect(listening)
            listening.settimeout(2)
            served, _ = listening.accept()
            echo(client, served, what)
            served.close(); client.close()
        if own_client is not None:
            echo(own_client, own_served, 'own')
        log.write('OK pid=%d\n' % os.getpid())
    except Exception as e:
        log.write('FAIL %r pid=%d\n' % (e, os.getpid()))


signal.signal(signal.SIGUSR1, check)
open('ready.tmp', 'w').write(str(os.getpid()))
os.rename('ready.tmp', 'ready')
while True:
    time.sleep(1)
