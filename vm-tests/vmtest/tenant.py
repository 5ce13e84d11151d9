"""A Cumulocity tenant on the host's loopback for the remote access steps: HTTPS with a CA
made by openssl, the identity and Cloud Remote Access requests the README documents (the
same contract as the Rust tests' tenant, tests/cli/common/tenant.rs), every request checked
and kept. A guest reaches it through a reverse SSH forward (its own loopback); the
Ansible collection's integration test uses it too."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

USER = "t100/admin"
PASSWORD = "Vm-Tenant#1"


def _ca_and_cert(out: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for localhost and 127.0.0.1 that it signed."""
    ca_key, ca, key, csr, cert, ext = (out / n for n in
                                       ("ca.key", "ca.pem", "tenant.key", "tenant.csr", "tenant.pem", "tenant.ext"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
                    "-subj", "/CN=edge-setup vm-tests CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    return ca, cert, key


class Tenant:
    """`devices` maps device IDs (c8y_Serial) to managed object ids."""

    def __init__(self, out: Path, devices: dict[str, str]):
        self.ca, cert, key = _ca_and_cert(out)
        self.devices = dict(devices)
        self.endpoints: dict[str, list[dict]] = {mo: [] for mo in devices.values()}
        self.log: list[tuple[str, str, dict | None]] = []
        self.violations: list[str] = []
        self._next = 200
        self._lock = threading.Lock()
        tenant = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with tenant._lock:
                    tenant.log.append((method, self.path, body))
                    status, answer = tenant._route(method, self.path, self.headers, body)
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def do_PUT(self):
                self._answer("PUT")

            def do_DELETE(self):
                self._answer("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def changes(self) -> list[str]:
        with self._lock:
            return [f"{m} {p}" for m, p, _ in self.log if m != "GET"]

    def _route(self, method: str, path: str, headers, body) -> tuple[int, object]:
        # any client may ask how to log in: edge-setup check's probe of TLS and the clock
        if method == "GET" and path == "/tenant/loginOptions":
            return 200, {"loginOptions": [{"type": "BASIC"}]}
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, {"error": "security/Unauthorized", "message": "Invalid credentials!"}
        parts = path.strip("/").split("/")
        if method == "GET" and parts[:3] == ["identity", "externalIds", "c8y_Serial"] and len(parts) == 4:
            mo = self.devices.get(parts[3])
            if mo is None:
                return 404, {"error": "identity/Not Found", "message": "no such external ID"}
            return 200, {"externalId": parts[3], "type": "c8y_Serial", "managedObject": {"id": mo}}
        if parts[:3] == ["service", "remoteaccess", "devices"] and len(parts) >= 5 and parts[4] == "configurations":
            listed = self.endpoints.get(parts[3])
            if listed is None:
                return 404, {"message": "no such device"}
            if method == "GET" and len(parts) == 5:
                return 200, [{k: v for k, v in e.items() if k not in ("password", "privateKey")} for e in listed]
            if method == "POST" and len(parts) == 5:
                body = body or {}
                wanted = {("SSH", "KEY_PAIR"): ("username", "privateKey", "publicKey", "hostKey"),
                          ("VNC", "PASS_ONLY"): ("password",)}.get((body.get("protocol"), body.get("credentialsType")))
                missing = [k for k in ("name", "hostname", "port", "protocol", "credentialsType", *(wanted or ()))
                           if not body.get(k)]
                if wanted is None or missing:
                    self.violations.append(f"POST {path}: {missing} {body.get('protocol')}")
                    return 422, {"message": f"missing {missing}"}
                self._next += 1
                stored = dict(body, id=str(self._next))
                listed.append(stored)
                return 201, {k: v for k, v in stored.items() if k not in ("password", "privateKey")}
        self.violations.append(f"unexpected {method} {path}")
        return 404, {"message": "unknown resource"}
