"""Open connections that stall, and report when the server closes them.

Usage: stalled_connections.py HOST PORT COUNT MODE SECONDS [CERT KEY]
  MODE tcp:   connect and send nothing
       tls:   send the first half of a TLS 1.2 ClientHello record, then nothing (a handshake left half-done)
       h2:    TLS with ALPN h2 (presenting CERT and KEY when given: the mesh wants a client
              certificate), the HTTP/2 preface and an empty SETTINGS frame, then nothing
       https: TLS, then half an HTTP/1.1 request (headers never ended), then nothing
Once all are open, waits at most SECONDS more for the server to close every one (EOF or reset),
and prints JSON: {"opened": n, "closed": n, "still_open": n, "failed_to_open": n,
"open_seconds": time to open them all, "last_close_seconds": t} (times from the start).
"""
import json
import resource
import selectors
import socket
import ssl
import sys
import time


def client_hello_half():
    # A TLS record header announcing 512 bytes of handshake, and only 64 of them.
    return bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + bytes([0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + bytes(58)


def open_one(host, port, mode, identity):
    raw = socket.create_connection((host, port), timeout=5)
    if mode == "tcp":
        return raw
    if mode == "tls":
        raw.sendall(client_hello_half())
        return raw
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if mode == "h2":
        context.set_alpn_protocols(["h2"])
    if identity:
        context.load_cert_chain(*identity)
    wrapped = context.wrap_socket(raw, server_hostname=host)
    if mode == "https":
        wrapped.sendall(b"GET /api/v2/status HTTP/1.1\r\nHost: coordinator\r\nX-Slow: ")
        return wrapped
    if identity and wrapped.selected_alpn_protocol() != "h2":
        raise SystemExit(f"the server did not choose h2: {wrapped.selected_alpn_protocol()}")
    wrapped.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    return wrapped


def main():
    host, port, count, mode, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    identity = tuple(sys.argv[6:8]) if len(sys.argv) >= 8 else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
    start = time.monotonic()
    sockets, failed = [], 0
    for _ in range(count):
        try:
            sockets.append(open_one(host, port, mode, identity))
        except OSError:
            failed += 1
    opened = len(sockets)
    selector = selectors.DefaultSelector()  # epoll: select() stops at 1024 descriptors
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    still_open = opened
    last_close = 0.0
    opened_at = time.monotonic() - start
    deadline = time.monotonic() + seconds
    while still_open and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                data = b""
            if not data:
                # The server closed it (an HTTP/2 server may first send SETTINGS or GOAWAY, read and dropped).
                selector.unregister(sock)
                sock.close()
                still_open -= 1
                last_close = time.monotonic() - start
    print(
        json.dumps(
            {
                "opened": opened,
                "closed": opened - still_open,
                "still_open": still_open,
                "failed_to_open": failed,
                "open_seconds": round(opened_at, 2),
                "last_close_seconds": round(last_close, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
