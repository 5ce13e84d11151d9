"""A Cumulocity tenant on the host's loopback for the remote access steps: HTTPS with a CA
made by openssl, the identity, Cloud Remote Access and event requests the README documents
(the same contract as the Rust tests' tenant, tests/cli/common/tenant.rs), every request
checked and kept. A guest reaches it through a reverse SSH forward (its own loopback); the
Ansible collection's integration test uses it too."""

from __future__ import annotations

import base64
import datetime
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
        self.events: dict[str, dict] = {}
        # event id -> {"filename", "content_type", "bytes"}: the file attached to it
        self.binaries: dict[str, dict] = {}
        # the body as JSON; a multipart upload's as bytes
        self.log: list[tuple[str, str, dict | bytes | None]] = []
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
                multipart = (self.headers.get("Content-Type") or "").startswith("multipart/")
                body = raw if multipart else json.loads(raw) if raw else None
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
        if headers.get("Accept") != "application/json":
            self.violations.append(f"{method} {path}: Accept is not application/json")
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["event", "events"]:
            return self._event(path, headers, body)
        if method == "POST" and len(parts) == 4 and parts[:2] == ["event", "events"] and parts[3] == "binaries":
            return self._attach(path, parts[2], headers, body)
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

    def _refuse(self, path: str, why: str) -> tuple[int, object]:
        self.violations.append(f"POST {path}: {why}")
        return 422, {"message": why}

    def _event(self, path: str, headers, body) -> tuple[int, object]:
        """An event needs a device's managed object as its source, a type, a text and an ISO 8601 time."""
        if headers.get("Content-Type") != "application/json" or not isinstance(body, dict):
            return self._refuse(path, "not a JSON body")
        source = (body.get("source") or {}).get("id")
        if source not in self.devices.values():
            return self._refuse(path, f"source {source} is no device's managed object")
        missing = [k for k in ("type", "text") if not isinstance(body.get(k), str) or not body[k]]
        if missing:
            return self._refuse(path, f"missing {missing}")
        if not _iso8601(body.get("time")):
            return self._refuse(path, f"time {body.get('time')!r} is not ISO 8601")
        self._next += 1
        stored = dict(body, id=str(self._next))
        self.events[stored["id"]] = stored
        return 201, stored

    def _attach(self, path: str, event: str, headers, body) -> tuple[int, object]:
        """multipart/form-data with a `file` part (filename, content type) and optionally an
        `object` part (JSON naming the same file); the event must exist and hold no file yet."""
        content_type = headers.get("Content-Type") or ""
        kind, _, params = content_type.partition(";")
        boundary = _param(params, "boundary")
        if kind.strip() != "multipart/form-data" or not boundary or not isinstance(body, bytes):
            return self._refuse(path, f"Content-Type is {content_type!r}, not multipart/form-data with a boundary")
        try:
            parts = _parts(body, boundary)
        except ValueError as e:
            return self._refuse(path, str(e))
        file, obj = None, None
        for part_headers, content in parts:
            disposition = part_headers.get("content-disposition", "")
            form, _, params = disposition.partition(";")
            name = _param(params, "name")
            if form.strip() != "form-data":
                return self._refuse(path, f"a part's Content-Disposition is {disposition!r}")
            if name == "file":
                filename = _param(params, "filename")
                if not filename or not part_headers.get("content-type"):
                    return self._refuse(path, "the file part has no filename or no Content-Type")
                file = {"filename": filename, "content_type": part_headers["content-type"], "bytes": content}
            elif name == "object":
                try:
                    obj = json.loads(content)
                except ValueError:
                    return self._refuse(path, "the object part is not JSON")
            else:
                return self._refuse(path, f"an unknown part {name!r}")
        if file is None:
            return self._refuse(path, "no file part")
        if obj is not None and (obj.get("name") != file["filename"] or obj.get("type") != file["content_type"]):
            return self._refuse(path, f"the object part {obj} does not name the file part")
        if event not in self.events:
            return 404, {"message": "no such event"}
        if event in self.binaries:
            return 409, {"message": "the event has a binary already"}
        self.binaries[event] = file
        shown = {"name": file["filename"], "type": file["content_type"], "length": len(file["bytes"])}
        self.events[event]["c8y_IsBinary"] = shown
        return 201, dict(shown, source=event)


def _iso8601(t) -> bool:
    """A date, `T`, a time and a zone (`Z` or an offset)."""
    if not isinstance(t, str) or len(t) < 20 or t[10] != "T":
        return False
    try:
        return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _param(params: str, key: str) -> str | None:
    """The value of `key` in `; key=value` parameters (quoted or not)."""
    for p in params.split(";"):
        k, eq, v = p.strip().partition("=")
        if eq and k.strip().lower() == key:
            return v.strip().strip('"')
    return None


def _parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body (RFC 2046): each its headers (names in lower case) and
    its content, byte for byte."""
    first = b"--" + boundary.encode()
    delimiter = b"\r\n" + first
    if not body.startswith(first):
        raise ValueError("the body does not begin with the boundary")
    rest = body[len(first):]
    parts = []
    while not rest.startswith(b"--"):
        if not rest.startswith(b"\r\n"):
            raise ValueError("no line end after a boundary")
        end = rest.find(delimiter, 2)
        if end < 0:
            raise ValueError("a part is not closed by the boundary")
        part, rest = rest[2:end], rest[end + len(delimiter):]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no end of its headers")
        headers = {}
        for line in head.decode().split("\r\n"):
            k, colon, v = line.partition(":")
            if not colon:
                raise ValueError(f"a part's header line {line!r}")
            headers[k.strip().lower()] = v.strip()
        parts.append((headers, content))
    return parts
