"""Helpers for the chart tests: a pod's filesystem laid out from rendered manifests, a signgate
server started with the Deployment's arguments, and a fake Kubernetes API for Helm's `lookup`."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


# Secrets the chart expects the admin to create, with stand-in contents.
USER_SECRETS: dict[str, dict[str, str]] = {
    "harbor-pull": {".dockerconfigjson": '{"auths": {}}'},
    "robot-password": {"password": "not-a-real-password\n"},
    # sigstore-go's copy of the public-good trusted root (tests/fixtures/sigstore-go).
    "sigstore-trusted-root": {
        "trusted_root.json": (Path(__file__).resolve().parents[2] / "tests/fixtures/sigstore-go/trusted-root-public-good.json").read_text()
    },
}


# --------------------------------------------------------------------------------------------
# Rendered manifests -> the files a pod would see.
# --------------------------------------------------------------------------------------------


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def find_all(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "signgate"]
    return c


@dataclass
class PodFiles:
    """The signgate container's mounted volumes, laid out under `root`."""

    root: Path
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath in the pod -> host dir

    def host(self, pod_path: str) -> str:
        for mount, host in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if pod_path == mount or pod_path.startswith(mount + "/"):
                return str(host) + pod_path[len(mount) :]
        return pod_path

    def rewrite(self, text: str) -> str:
        """`text` with every path under a mount replaced by its host path."""
        for mount, host in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            text = text.replace(mount + "/", str(host) + "/")
        return text


def lay_out_pod(docs: list[dict[str, Any]], root: Path, *, need_tls: bool = False) -> PodFiles:
    """Writes the files of the Deployment's volumes as kubelet would: ConfigMaps and Secrets the
    chart rendered, and stand-ins for the Secrets an admin creates (USER_SECRETS). A Secret
    the chart does not render (cert-manager's, an existing one) is skipped unless need_tls."""
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = PodFiles(root)
    for m in container(docs)["volumeMounts"]:
        v = volumes[m["name"]]
        target = root / m["mountPath"].lstrip("/")
        if "configMap" in v:
            data = find(docs, "ConfigMap", v["configMap"]["name"])["data"]
            items = v["configMap"].get("items")
        elif "secret" in v:
            name = v["secret"]["secretName"]
            rendered = [d for d in find_all(docs, "Secret") if d["metadata"]["name"] == name]
            if rendered:
                data = {k: base64.b64decode(x).decode() for k, x in rendered[0]["data"].items()}
            elif name in USER_SECRETS:
                data = USER_SECRETS[name]
            else:
                assert not need_tls, f"Secret {name} is not rendered by the chart"
                continue
            items = v["secret"].get("items")
        elif "emptyDir" in v:
            data, items = {}, None
        else:
            raise AssertionError(f"unexpected volume {v}")
        if items:
            data = {i["path"]: data[i["key"]] for i in items}
        target.mkdir(parents=True, exist_ok=True)
        for key, content in data.items():
            (target / key).write_text(content)
        files.mounts[m["mountPath"]] = target
    # The configuration names files by their paths in the pod.
    config_dir = files.host("/etc/signgate/config")
    config = Path(config_dir) / "signgate.yaml"
    config.write_text(files.rewrite(config.read_text()))
    return files


# --------------------------------------------------------------------------------------------
# A signgate server started with the Deployment's own arguments.
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    ca_pem: str | None
    sni: str
    log: Path

    def request(
        self, method: str, path: str, body: bytes = b"", *, verify: bool = True, timeout: float = 10
    ) -> tuple[int, bytes]:
        """One HTTP/1.1 request over TLS, the certificate checked against the CA bundle for
        the name the API server uses (<service>.<namespace>.svc)."""
        ctx = ssl.create_default_context()
        if verify and self.ca_pem:
            ctx = ssl.create_default_context(cadata=self.ca_pem)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=self.sni) as tls:
                head = (
                    f"{method} {path} HTTP/1.1\r\nHost: {self.sni}:{self.port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n"
                )
                tls.sendall(head.encode() + body)
                return parse_http(read_all(tls))

    def metrics(self) -> str:
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            status, body = parse_http(read_all(s))
        assert status == 200, body
        return body.decode()


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except (ssl.SSLZeroReturnError, ConnectionResetError):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_http(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return status, body


def start_server(bin_path: Path, args: list[str], *, port: int, metrics_port: int, log: Path,
                 ca_pem: str | None, sni: str, env: dict[str, str] | None = None) -> Server:
    """`env` is added to the environment (e.g. KUBECONFIG for a fake API server); the
    in-cluster variables (KUBERNETES_*) and any KUBECONFIG of the caller's are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_") and k != "KUBECONFIG"} | (env or {})
    env.setdefault("TMPDIR", str(log.parent))
    proc = subprocess.Popen([str(bin_path), *args], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    server = Server(proc, port, metrics_port, ca_pem, sni, log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"signgate exited with {proc.returncode}:\n{log.read_text()}")
        try:
            status, _ = server.request("GET", "/healthz", verify=False, timeout=2)
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(server)
            raise AssertionError(f"signgate did not answer /healthz:\n{log.read_text()}")
        time.sleep(0.1)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


# --------------------------------------------------------------------------------------------
# A fake Kubernetes API on loopback, enough for Helm's `lookup` of Secrets, the audit's lists
# of Pods and namespaces (objects are served by path, the query string ignored) and its
# PolicyReports (server-side apply to a known path; 404 elsewhere, as without the CRD).
# --------------------------------------------------------------------------------------------


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                path = self.path.split("?")[0]
                if path == "/version":
                    return self.send({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
                if path == "/api":
                    return self.send({"kind": "APIVersions", "versions": ["v1"],
                                      "serverAddressByClientCIDRs": []})
                if path == "/apis":
                    return self.send({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
                if path == "/api/v1":
                    return self.send({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "secrets", "singularName": "secret", "namespaced": True,
                         "kind": "Secret", "verbs": ["get", "list"]}]})
                if path in fake.objects:
                    return self.send(fake.objects[path])
                return self.send({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404, "message": "not found"}, 404)

            def do_PATCH(self) -> None:  # noqa: N802
                # A server-side apply (the audit's PolicyReports): stored by path when the path is
                # known to `objects` (the CRD "installed"), else 404 as a cluster without the CRD.
                fake.requests.append("PATCH " + self.path)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?")[0]
                if path in fake.objects:
                    fake.objects[path] = body
                    return self.send(body)
                return self.send({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404, "message": "not found"}, 404)

            def send(self, obj: dict[str, Any], code: int = 200) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        port = self.server.server_address[1]
        self.kubeconfig = (
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: fake, user: {token: fake}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\n"
            "current-context: fake\n"
        )

    def put_secret(self, secret: dict[str, Any]) -> None:
        md = secret["metadata"]
        self.objects[f"/api/v1/namespaces/{md['namespace']}/secrets/{md['name']}"] = secret

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
