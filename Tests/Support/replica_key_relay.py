"""A hostile relay for the replica key hand-over test: it serves HTTPS with its own certificate,
passes /api/v2/quote on to a real Coordinator, and answers a key request with a key of its own
and the real Coordinator's quote over the joiner's nonce (fetched from its public /quote).

Usage: replica_key_relay.py PORT CERT_PEM KEY_PEM UPSTREAM_HOST:PORT
"""
import base64
import http.server
import json
import os
import ssl
import sys
import urllib.request

PORT, CERT, KEY, UPSTREAM = sys.argv[1:5]
INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE


def upstream(path):
    with urllib.request.urlopen(f"https://{UPSTREAM}{path}", context=INSECURE, timeout=10) as response:
        return response.read()


class Relay(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(upstream(self.path))

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        nonce = base64.urlsafe_b64encode(base64.b64decode(request["nonce"])).decode()
        genuine = json.loads(upstream(f"/api/v2/quote?nonce={nonce}"))["data"]
        root = genuine["cert"][genuine["cert"].rindex("-----BEGIN CERTIFICATE-----"):]
        forged = {"key": base64.b64encode(os.urandom(32)).decode(), "quote": genuine["quote"], "cert": root}
        self.answer(json.dumps({"status": "success", "data": forged}).encode())

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Relay)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
