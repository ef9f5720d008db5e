"""Starts Connaisseur v3.3.x for signgate's side-by-side benchmark (examples/peerbench.rs).

Set up by scripts/bench --peer (scripts/lib/peer/connaisseur-setup): a copy of Connaisseur's
`connaisseur/` package whose only change is the `/app/` path prefix, its requirements in a venv.
This file replaces Connaisseur's `__main__.py` (same server: cheroot with its default 10 worker
threads, the same Flask app and logging wrapper) and writes its configuration from the lab the
benchmark started:

- PEER_LAB_JSON: notary URL, lab CA, one root public key per GUN; each GUN gets a policy rule
  `<gun>:*` -> notaryv1 validator `lab` with its root and the `releases` delegation required (what
  `docker trust sign` publishes); everything else is denied by a static validator;
- PEER_TLS_CERT / PEER_TLS_KEY: the serving certificate; PEER_LISTEN: host:port.
Feature flags: detection mode, automatic child and unchanged approval off (a bare Pod decides).
"""
import json
import os
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "app")

lab = json.load(open(os.environ["PEER_LAB_JSON"], encoding="utf-8"))
os.makedirs(f"{APP}/certs", exist_ok=True)
os.makedirs(f"{APP}/connaisseur-config", exist_ok=True)
shutil.copy(os.environ["PEER_TLS_CERT"], f"{APP}/certs/tls.crt")
shutil.copy(os.environ["PEER_TLS_KEY"], f"{APP}/certs/tls.key")

notary_host = lab["notary_url"].split("://", 1)[1].rstrip("/")
roots, policy = [], [{"pattern": "*:*", "validator": "deny"}]
for i, r in enumerate(lab["roots"]):
    key = r["root_key_pem"]
    if not key.startswith("-----"):
        key = open(key, encoding="utf-8").read()
    roots.append({"name": f"root{i}", "key": key})
    policy.append(
        {
            "pattern": f'{r["gun"]}:*',
            "validator": "lab",
            "with": {"trustRoot": f"root{i}", "delegations": ["releases"]},
        }
    )
config = {
    "validators": [
        {"name": "deny", "type": "static", "approve": False},
        {
            "name": "lab",
            "type": "notaryv1",
            "host": notary_host,
            "cert": open(lab["ca_pem"], encoding="utf-8").read(),
            "trustRoots": roots,
        },
    ],
    "policy": policy,
}
with open(f"{APP}/connaisseur-config/config.yaml", "w", encoding="utf-8") as f:
    yaml.safe_dump(config, f)

for flag in ("DETECTION_MODE", "AUTOMATIC_CHILD_APPROVAL", "AUTOMATIC_UNCHANGED_APPROVAL"):
    os.environ.setdefault(flag, "false")
os.environ.setdefault("KUBE_VERSION", "v1.31.0")

# Connaisseur opens its JSON schemas relative to the working directory.
os.chdir(HERE)
sys.path.insert(0, HERE)

from logging.config import dictConfig  # noqa: E402

import nest_asyncio  # noqa: E402
from cheroot.server import HTTPServer  # noqa: E402
from cheroot.ssl.builtin import BuiltinSSLAdapter  # noqa: E402
from cheroot.wsgi import Server  # noqa: E402

nest_asyncio.apply()
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
dictConfig(
    {
        "version": 1,
        "formatters": {"json": {"class": "connaisseur.logging.JsonLogFormatter"}},
        "handlers": {
            "wsgi": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
            }
        },
        "root": {"level": LOG_LEVEL, "handlers": ["wsgi"]},
    }
)

from connaisseur.flask_application import APP as FLASK_APP  # noqa: E402
from connaisseur.logging import ConnaisseurLoggingWrapper  # noqa: E402

HTTPServer.ssl_adapter = BuiltinSSLAdapter(
    certificate=f"{APP}/certs/tls.crt", private_key=f"{APP}/certs/tls.key"
)
host, port = os.environ["PEER_LISTEN"].rsplit(":", 1)
Server((host, int(port)), ConnaisseurLoggingWrapper(FLASK_APP, LOG_LEVEL)).start()
