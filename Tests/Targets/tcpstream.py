"""A TCP echo server and a client that streams a counter through it and checks every byte it gets back.

  tcpstream.py server WORK ADDRESS     listen on ADDRESS (port chosen by the kernel, written to WORK/port), accept
                                       one connection and echo it, reading only as fast as it can write back
  tcpstream.py client WORK ADDRESS PORT TOTAL
                                       connect, send TOTAL bytes of a counter stream (4-byte big-endian numbers,
                                       paced), check that the echo is the same stream, byte for byte, in order
  tcpstream.py pair WORK ADDRESS TOTAL the server, with the client as its own child (both ends in one tree)

While the file WORK/hold exists the client stops reading: the echo backs up into the server's send queue, the
server stops reading, and the client's data waits unacknowledged in its send queue and unread in the server's
receive queue. The client writes WORK/progress ("sent received unacknowledged") and, at the end, one line to
WORK/client.log: "OK sent=N received=N maxgap=SECONDS" (the longest wait for echoed data while reading), or
"CORRUPT ..." / "ERROR ...". The server writes errors and the end of its stream to WORK/server.log. Both use small
socket buffers, so that a few hundred KiB fill every queue. Each writes WORK/ready (its pid) once started.
"""
import array, fcntl, os, select, socket, struct, sys, termios, time

BUFFER = 65536
CHUNK, PACE = 8192, 0.004


def ready(name='ready'):
    open(name + '.tmp', 'w').write(str(os.getpid()))
    os.rename(name + '.tmp', name)


def family_of(address):
    return socket.AF_INET6 if ':' in address else socket.AF_INET


def small_buffers(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)


def listener(address):
    L = socket.socket(family_of(address), socket.SOCK_STREAM)
    L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    small_buffers(L)
    L.bind((address, 0))
    L.listen(4)
    open('port.tmp', 'w').write(str(L.getsockname()[1]))
    os.rename('port.tmp', 'port')
    return L


def echo(L):
    log = open('server.log', 'a', buffering=1)
    c, _ = L.accept()
    c.setblocking(False)
    pending = bytearray()
    try:
        while True:
            r, w, _ = select.select([c] if len(pending) < BUFFER else [], [c] if pending else [], [], 1)
            if r:
                data = c.recv(BUFFER)
                if not data:
                    log.write('EOF after the stream\n')
                    return
                pending += data
            if w or pending:
                try:
                    del pending[:c.send(pending)]
                except BlockingIOError:
                    pass
    except OSError as e:
        log.write('ERROR %r\n' % e)


def client(address, port, total):
    log = open('client.log', 'a', buffering=1)
    stream = array.array('I', range(total // 4))
    stream.byteswap()
    stream = stream.tobytes()
    s = socket.socket(family_of(address), socket.SOCK_STREAM)
    small_buffers(s)
    s.connect((address, port))
    s.setblocking(False)
    sent = received = 0
    maxgap, last, next_send, next_progress = 0.0, time.monotonic(), 0.0, 0.0
    try:
        while received < len(stream):
            now = time.monotonic()
            holding = os.path.exists('hold')
            if holding:
                last = now
            r, w, _ = select.select([] if holding else [s], [s] if sent < len(stream) and now >= next_send else [], [], PACE)
            if w:
                try:
                    sent += s.send(stream[sent:sent + CHUNK])
                except BlockingIOError:
                    pass
                next_send = now + PACE
            if r:
                data = s.recv(BUFFER)
                if not data:
                    log.write('ERROR end of stream after %d of %d bytes\n' % (received, len(stream)))
                    return
                if data != stream[received:received + len(data)]:
                    log.write('CORRUPT at byte %d (%d bytes sent)\n' % (received, sent))
                    return
                received += len(data)
                now = time.monotonic()
                maxgap, last = max(maxgap, now - last), now
            if now >= next_progress:
                unacknowledged = struct.unpack('i', fcntl.ioctl(s, termios.TIOCOUTQ, b'\0\0\0\0'))[0]
                open('progress.tmp', 'w').write('%d %d %d\n' % (sent, received, unacknowledged))
                os.rename('progress.tmp', 'progress')
                next_progress = now + 0.02
        log.write('OK sent=%d received=%d maxgap=%.3f\n' % (sent, received, maxgap))
    except OSError as e:
        log.write('ERROR %r after %d bytes\n' % (e, received))


def main():
    mode, work = sys.argv[1], sys.argv[2]
    os.chdir(work)
    if mode == 'server':
        L = listener(sys.argv[3])
        ready()
        echo(L)
    elif mode == 'client':
        ready()
        client(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == 'pair':
        L = listener(sys.argv[3])
        port = L.getsockname()[1]
        child = os.fork()
        if child == 0:
            L.close()
            ready('client-ready')
            client(sys.argv[3], port, int(sys.argv[4]))
            os._exit(0)
        ready()
        echo(L)
        os.waitpid(child, 0)
    # Stay around once done: the test reads the logs, then kills what it started.
    while True:
        time.sleep(1)


main()
