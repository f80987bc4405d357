"""A marble's activation call made with Python grpcio, from stubs generated from MarbleRun's
own proto: proof that the Coordinator speaks MarbleRun's wire format.

Usage: marble_activate.py PROTO ADDRESS ROOT_PEM CERT_PEM KEY_PEM QUOTE_FILE CSR_FILE TYPE UUID
Prints {"files": {name: b64}, "env": {name: b64}, "argv": [...]} on success (exit 0), or
{"code": "PERMISSION_DENIED", "details": "..."} when the Coordinator refuses (exit 2).
"""
import base64
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc


def stubs(proto):
    out = tempfile.mkdtemp(prefix="marblerun-proto-")
    folder, name = os.path.split(os.path.abspath(proto))
    status = protoc.main(["protoc", f"-I{folder}", f"--python_out={out}", f"--grpc_python_out={out}", name])
    if status != 0:
        sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, out)
    module = name[: -len(".proto")].replace("-", "_")
    return __import__(f"{module}_pb2"), __import__(f"{module}_pb2_grpc")


def main():
    proto, address, root, cert, key, quote, csr, marble_type, uuid = sys.argv[1:10]
    read = lambda path: open(path, "rb").read()
    pb2, pb2_grpc = stubs(proto)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(root), private_key=read(key), certificate_chain=read(cert))
    with grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", "localhost")]) as channel:
        request = pb2.ActivationReq(Quote=read(quote), CSR=read(csr), MarbleType=marble_type, UUID=uuid)
        try:
            response = pb2_grpc.MarbleStub(channel).Activate(request, timeout=30)
        except grpc.RpcError as error:
            print(json.dumps({"code": error.code().name, "details": error.details()}))
            sys.exit(2)
    parameters = response.Parameters
    print(json.dumps({
        "files": {k: base64.b64encode(v).decode() for k, v in parameters.Files.items()},
        "env": {k: base64.b64encode(v).decode() for k, v in parameters.Env.items()},
        "argv": list(parameters.Argv),
    }))


if __name__ == "__main__":
    main()
