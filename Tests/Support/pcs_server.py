"""A local HTTPS stand-in for a PCCS / Intel PCS (API v4), serving a folder in Intel PCS layout.

Usage: pcs_server.py FOLDER CERT.pem KEY.pem [HOLD_FILE]
Prints the port it listens on (127.0.0.1), then serves until stdin closes. With HOLD_FILE, a
TCB Info request is counted at once but answered only when HOLD_FILE does not exist (a slow PCCS
that a test releases by deleting the file).
Routes (query strings as Intel's):
  /{sgx,tdx}/certification/v4/tcb?fmspc=X   tcbInfo.json, header TCB-Info-Issuer-Chain (404 for another FMSPC)
  /{sgx,tdx}/certification/v4/qe/identity   qeIdentity.json, header SGX-Enclave-Identity-Issuer-Chain
                                            (the /tdx/ routes read tdx/tcbInfo.json and tdx/qeIdentity.json
                                            when FOLDER has a tdx/ folder, as a simulated platform's has)
  /sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der   intermediateCaCrl.der, header SGX-PCK-CRL-Issuer-Chain
  /sgx/certification/v4/rootcacrl           rootCaCrl.der as hex text (as PCCS serves it)
  /_stats                                   JSON: how often each route was served
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

folder, cert, key = sys.argv[1:4]
hold = sys.argv[4] if len(sys.argv) > 4 else None
counts = {}


def read(name):
    with open(os.path.join(folder, name), "rb") as handle:
        return handle.read()


def chain(name):
    return urllib.parse.quote(read(name).decode(), safe="")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, body, headers=None, status=200):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        route = url.path
        if route == "/_stats":
            return self.reply(json.dumps(counts).encode())
        counts[route] = counts.get(route, 0) + 1
        tee = "tdx/" if route.startswith("/tdx/") and os.path.isdir(os.path.join(folder, "tdx")) else ""
        if route.endswith("/certification/v4/tcb"):
            while hold and os.path.exists(hold):
                time.sleep(0.02)
            body = read(tee + "tcbInfo.json")
            fmspc = json.loads(body)["tcbInfo"]["fmspc"]
            if query.get("fmspc", [""])[0].upper() != fmspc.upper():
                return self.reply(b"unknown FMSPC", status=404)
            return self.reply(body, {"TCB-Info-Issuer-Chain": chain("tcbSignChain.pem")})
        if route.endswith("/certification/v4/qe/identity"):
            return self.reply(read(tee + "qeIdentity.json"), {"SGX-Enclave-Identity-Issuer-Chain": chain("tcbSignChain.pem")})
        if route == "/sgx/certification/v4/pckcrl" and query.get("encoding") == ["der"]:
            return self.reply(read("intermediateCaCrl.der"), {"SGX-PCK-CRL-Issuer-Chain": chain("pckSignChain.pem")})
        if route == "/sgx/certification/v4/rootcacrl":
            return self.reply(read("rootCaCrl.der").hex().encode())
        return self.reply(b"not found", status=404)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_2
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
