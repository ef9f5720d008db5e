"""charts/signgate, deploy/ and the Dockerfile: rendered by Helm's own engine (helm-python-sdk),
validated against the Kubernetes schemas, and run with the signgate binary."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from chartlib import (
    CHART,
    DEPLOY,
    DEPLOY_VALUES,
    EXAMPLES,
    NAMESPACE,
    RELEASE,
    ROOT,
    deploy_manifest,
    documents,
    load_values,
    render,
    render_docs,
)
from support import (
    USER_SECRETS,
    container,
    find,
    find_all,
    free_port,
    lay_out_pod,
)

# The chart's kubeVersion floor (1.30) up to the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ["1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]

# SPEC "Metrics": what dashboards and alerts may use (one list for the Rust tests and these).
SPEC_METRICS = set((ROOT / "tests/fixtures/metrics/spec-metrics.txt").read_text().split())
# `serve --audit`'s families (README "What is running now"), which the dashboard and the audit
# alerts use. spec-metrics.txt does not list them yet; once it does, this adds nothing.
AUDIT_METRICS = {"signgate_audit_workloads", "signgate_audit_images",
                 "signgate_audit_last_run_timestamp_seconds", "signgate_audit_duration_seconds"}
CHART_METRICS = SPEC_METRICS | AUDIT_METRICS

SVC_DNS = f"{RELEASE}.{NAMESPACE}.svc"


def _helm_ca_pem() -> str:
    """A real CA certificate (Helm's genCA), for the existingSecret scenario."""
    docs = render_docs({"tls": {"mode": "helm"}})
    return base64.b64decode(find(docs, "Secret", f"{RELEASE}-ca")["data"]["tls.crt"]).decode()


CA_PEM = _helm_ca_pem()

# The root key examples/prod-enforce.yaml pins.
PROD_ROOT_KEY = load_values(EXAMPLES / "prod-enforce.yaml")["config"]["trustRoots"][0]["notary"]["rootKeys"][0]


def ml_platform_root() -> dict[str, Any]:
    """The Notary v1 root the migration examples keep beside their new one (a new dict each time)."""
    return {"name": "ml-platform", "notary": {
        "url": "https://notary.ai-team.internal:4443",
        "rootKeys": [PROD_ROOT_KEY]}}


EVERYTHING: dict[str, Any] = {
    "replicaCount": 4,
    "priorityClassName": "signgate-critical",
    "podAntiAffinity": "hard",
    "webhook": {"timeoutSeconds": 15, "mutating": {"enabled": True},
                "namespaceSelectorExpressions": [{"key": "tier", "operator": "NotIn", "values": ["sandbox"]}]},
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "audit": {"enabled": True, "interval": 900},
    "extraVolumes": [{"name": "bundles", "emptyDir": {}}],
    "extraVolumeMounts": [{"name": "bundles", "mountPath": "/etc/signgate/bundles", "readOnly": True}],
    "config": {
        "trustRoots": [
            {"name": "ml-platform", "notary": {
                "url": "https://notary.ai-team.internal:4443",
                "caBundle": CA_PEM,
                "rootKeys": [PROD_ROOT_KEY],
                "requireRoles": ["targets/releases"],
                "offlineDir": "/etc/signgate/bundles/ml-platform"}},
        ],
        "registries": [
            {"host": "registry.ai-team.internal", "caBundle": CA_PEM,
             "credentials": {"secretName": "harbor-pull"}, "notary": "https://notary.ai-team.internal:4443"},
            {"host": "registry.ai-team.internal:5000",
             "credentials": {"username": "robot", "passwordSecret": {"name": "robot-password", "key": "password"}}},
            {"host": "ghcr.io"},
        ],
        "policies": [
            {"name": "pytorch-gpu-prod", "images": ["registry.ai-team.internal/ml/**"],
             "namespaces": {"matchLabels": {"env": "prod"}}, "trustRoot": "ml-platform", "mode": "enforce"},
            {"name": "audit-ghcr", "images": ["ghcr.io/**"], "trustRoot": "ml-platform", "mode": "audit"},
            {"name": "cluster-system", "images": ["registry.k8s.io/**"], "action": "allow"},
        ],
        "defaultAction": "deny",
    },
}

# alice's cosign public key from Connaisseur's test data (tests/fixtures/cosign/connaisseur).
COSIGN_PUB = yaml.safe_load((ROOT / "tests/fixtures/cosign/connaisseur/01_cosign.yaml").read_text())["trustRoots"][0]["key"]

SCENARIOS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "helm-certs": {"tls": {"mode": "helm"}, "webhook": {"mutating": {"enabled": True}}},
    "cert-manager": {"tls": {"mode": "certManager"}, "webhook": {"mutating": {"enabled": True}}},
    "cert-manager-issuer": {"tls": {"mode": "certManager",
                                    "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer",
                                                                  "group": "cert-manager.io"}}}},
    "existing-secret": {"tls": {"mode": "existingSecret",
                                "existingSecret": {"name": "webhook-tls", "caBundle": CA_PEM}}},
    "prod-enforce": load_values(EXAMPLES / "prod-enforce.yaml"),
    "dev-warn": load_values(EXAMPLES / "dev-warn.yaml"),
    "everything": EVERYTHING,
    # The background audit alone (no label selectors): its RBAC, arguments and alerts.
    "audit": {"audit": {"enabled": True, "interval": 300},
              "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}},
    # A trust root without notary.url: each registry names its notary server.
    "notary-by-registry": {"config": {
        "trustRoots": [{"name": "harbor", "notary": {
            "rootKeys": [PROD_ROOT_KEY]}}],
        "registries": [{"host": "harbor.ai-team.internal", "notary": "https://harbor.ai-team.internal:4443"}],
        "policies": [{"name": "harbor", "images": ["harbor.ai-team.internal/**"], "trustRoot": "harbor"}],
    }},
    # The move off Docker Content Trust: a Notary v1 root and a Notation root, both required.
    "notation-migration": {"config": {
        "trustRoots": [
            ml_platform_root(),
            {"name": "ml-notation", "notation": {
                "trustStores": {"ca": [CA_PEM]},
                "trustedIdentities": ["x509.subject: C=US, ST=WA, O=acme-rockets.io"],
                "level": "strict", "override": {"revocation": "log"}, "verifyTimestamp": "always"}},
        ],
        "policies": [
            {"name": "migrate", "images": ["registry.ai-team.internal/ml/**"],
             "trustRoots": ["ml-platform", "ml-notation"], "require": "all"},
            {"name": "either", "images": ["registry.ai-team.internal/tools/**"],
             "trustRoots": ["ml-platform", "ml-notation"], "require": "any", "mode": "warn"},
        ],
    }},
    # cosign keys beside Docker Content Trust: either signature admits.
    "cosign-migration": {"config": {
        "trustRoots": [
            ml_platform_root(),
            {"name": "ml-cosign", "cosign": {
                "transparencyLog": "ignore", "threshold": 1, "required": ["ci"],
                "keys": [{"name": "ci", "publicKey": COSIGN_PUB}]}},
        ],
        "policies": [
            {"name": "migrate", "images": ["registry.ai-team.internal/ml/**"],
             "trustRoots": ["ml-platform", "ml-cosign"], "require": "any"},
        ],
    }},
    # SPEC's cosign root: a key and keyless CI identities, the transparency log required, the
    # trusted root mounted from a Secret the admin made.
    "cosign-keyless": {
        "extraVolumes": [{"name": "sigstore", "secret": {"secretName": "sigstore-trusted-root"}}],
        "extraVolumeMounts": [{"name": "sigstore", "mountPath": "/etc/signgate/sigstore", "readOnly": True}],
        "config": {
            "trustRoots": [
                {"name": "ml-cosign", "cosign": {
                    "keys": [{"name": "ci", "publicKey": COSIGN_PUB}],
                    "threshold": 1,
                    "keyless": {
                        "trustedRootFile": "/etc/signgate/sigstore/trusted_root.json",
                        "identities": [{"issuer": "https://token.actions.githubusercontent.com",
                                        "subjectRegExp": "^https://github.com/acme/.*$"}]},
                    "transparencyLog": "required"}},
            ],
            "policies": [
                {"name": "ml", "images": ["registry.ai-team.internal/ml/**"], "trustRoot": "ml-cosign"},
            ],
        },
    },
}


def scenario_docs(name: str) -> list[dict[str, Any]]:
    return render_docs(SCENARIOS[name], namespace="security" if name == "everything" else NAMESPACE)


def config_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cm = find(docs, "ConfigMap", f"{RELEASE}-config")
    return yaml.safe_load(cm["data"]["signgate.yaml"])


def arg(c: dict[str, Any], flag: str) -> str:
    values = [a.split("=", 1)[1] for a in c["args"] if a.startswith(flag + "=")]
    assert len(values) == 1, f"{flag} given {len(values)} times in {c['args']}"
    return values[0]


# ============================================================================================
# helm lint, and the Kubernetes schemas
# ============================================================================================


@pytest.mark.parametrize("name", ["defaults", "prod-enforce", "dev-warn", "everything", "cert-manager"])
def test_helm_lint_strict_passes(name: str) -> None:
    report = helm.lint(CHART, SCENARIOS[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert report["total_charts_linted"] == 1
    assert not problems, problems


# cert-manager and Prometheus Operator kinds: no schema in kubernetes-validate. They are checked
# loosely: the fields this chart sets must be fields of those CRDs (cert-manager.io/v1,
# monitoring.coreos.com/v1), with the right shapes.
def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props, "required": list(required)}


_S = {"type": "string"}
_META = {"type": "object", "required": ["name", "namespace"]}
_ISSUER_REF = _obj({"name": _S, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": _S}, ("name",))
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("cert-manager.io/v1", "Issuer"): _obj({
        "apiVersion": _S, "kind": _S, "metadata": _META,
        "spec": {"oneOf": [_obj({"selfSigned": {"type": "object"}}, ("selfSigned",)),
                           _obj({"ca": _obj({"secretName": _S}, ("secretName",))}, ("ca",))]},
    }, ("apiVersion", "kind", "metadata", "spec")),
    ("cert-manager.io/v1", "Certificate"): _obj({
        "apiVersion": _S, "kind": _S, "metadata": _META,
        "spec": _obj({
            "secretName": _S, "commonName": _S, "isCA": {"type": "boolean"},
            "dnsNames": {"type": "array", "items": _S, "minItems": 1},
            "duration": {"type": "string", "pattern": "^[0-9]+h$"},
            "renewBefore": {"type": "string", "pattern": "^[0-9]+h$"},
            "privateKey": _obj({"algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                                "rotationPolicy": {"enum": ["Never", "Always"]}}),
            "usages": {"type": "array", "items": {"enum": ["server auth", "client auth", "digital signature",
                                                           "key encipherment", "cert sign"]}},
            "issuerRef": _ISSUER_REF,
        }, ("secretName", "issuerRef")),
    }, ("apiVersion", "kind", "metadata", "spec")),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _obj({
        "apiVersion": _S, "kind": _S, "metadata": _META,
        "spec": _obj({
            "selector": {"type": "object"},
            "namespaceSelector": _obj({"matchNames": {"type": "array", "items": _S}}),
            "endpoints": {"type": "array", "minItems": 1, "items": _obj({
                "port": _S, "scheme": {"enum": ["http", "https"]}, "path": _S, "interval": _S, "scrapeTimeout": _S})},
        }, ("selector", "endpoints")),
    }, ("apiVersion", "kind", "metadata", "spec")),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _obj({
        "apiVersion": _S, "kind": _S, "metadata": _META,
        "spec": _obj({"groups": {"type": "array", "items": _obj({
            "name": _S,
            "rules": {"type": "array", "items": _obj({
                "alert": _S, "expr": _S, "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
                "labels": {"type": "object", "additionalProperties": _S},
                "annotations": {"type": "object", "additionalProperties": _S}}, ("alert", "expr"))},
        }, ("name", "rules"))}}, ("groups",)),
    }, ("apiVersion", "kind", "metadata", "spec")),
}


def validate_against_kubernetes(docs: list[dict[str, Any]]) -> list[str]:
    import jsonschema

    errors = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_SCHEMAS:
            for e in jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).iter_errors(doc):
                errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {list(e.path)}: {e.message}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{version} {doc['kind']}/{doc['metadata']['name']}: {list(e.path)}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{version}: no schema for {key} (add it to CRD_SCHEMAS if it is a CRD)")
    return errors


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rendered_manifests_match_kubernetes_schemas(name: str) -> None:
    docs = scenario_docs(name)
    assert len(docs) >= 9
    assert not validate_against_kubernetes(docs)


def test_schema_validation_catches_a_misspelt_field() -> None:
    """The strict schemas reject unknown fields, so the test above is not vacuous."""
    docs = render_docs(None)
    dep = find(docs, "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    cert = find(render_docs({"tls": {"mode": "certManager"}}), "Certificate", f"{RELEASE}-tls")
    cert["spec"]["dnsName"] = ["x"]
    errors = validate_against_kubernetes([dep, cert])
    assert any("securityContxt" in e for e in errors), errors
    assert any("dnsName" in e for e in errors), errors


# ============================================================================================
# The webhook configuration: fail closed, and never in the way of its own recovery
# ============================================================================================

EXPECTED_RULES = {
    ("", "v1", "pods", ("CREATE", "UPDATE")),
    ("", "v1", "pods/ephemeralcontainers", ("UPDATE",)),
    ("", "v1", "replicationcontrollers", ("CREATE", "UPDATE")),
    ("apps", "v1", "deployments", ("CREATE", "UPDATE")),
    ("apps", "v1", "replicasets", ("CREATE", "UPDATE")),
    ("apps", "v1", "statefulsets", ("CREATE", "UPDATE")),
    ("apps", "v1", "daemonsets", ("CREATE", "UPDATE")),
    ("batch", "v1", "jobs", ("CREATE", "UPDATE")),
    ("batch", "v1", "cronjobs", ("CREATE", "UPDATE")),
}


def flat_rules(webhook: dict[str, Any]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (g, v, r, tuple(sorted(rule["operations"])))
        for rule in webhook["rules"]
        for g in rule["apiGroups"]
        for v in rule["apiVersions"]
        for r in rule["resources"]
    }


def test_validating_webhook_fails_closed_with_the_documented_settings() -> None:
    docs = render_docs(None)
    vwc = find(docs, "ValidatingWebhookConfiguration")
    (w,) = vwc["webhooks"]
    assert w["name"] == "validate.signgate.io"
    assert w["failurePolicy"] == "Fail"
    assert w["timeoutSeconds"] == 10
    assert w["sideEffects"] == "None"
    assert w["admissionReviewVersions"] == ["v1"]
    assert w["matchPolicy"] == "Equivalent"
    assert w["clientConfig"]["service"] == {"name": RELEASE, "namespace": NAMESPACE, "path": "/validate", "port": 443}
    assert flat_rules(w) == EXPECTED_RULES
    svc = find(docs, "Service")
    (port,) = [p for p in svc["spec"]["ports"] if p["port"] == 443]
    assert port["targetPort"] == "webhook"
    assert {"name": "webhook", "containerPort": 8443, "protocol": "TCP"} in container(docs)["ports"]
    # Digest pinning is on by default, and can be turned off.
    (m,) = find(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert m["clientConfig"]["service"]["path"] == "/mutate"
    assert m["failurePolicy"] == "Fail"
    assert not find_all(render_docs({"webhook": {"mutating": {"enabled": False}}}), "MutatingWebhookConfiguration")


def test_pod_templates_can_be_left_to_the_pods() -> None:
    (w,) = find(render_docs({"webhook": {"workloads": False}}), "ValidatingWebhookConfiguration")["webhooks"]
    assert flat_rules(w) == {r for r in EXPECTED_RULES if r[2].startswith("pods")}


def test_mutating_webhook_pins_pods_only() -> None:
    docs = render_docs({"webhook": {"mutating": {"enabled": True}}})
    (w,) = find(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert w["clientConfig"]["service"]["path"] == "/mutate"
    assert w["reinvocationPolicy"] == "IfNeeded"
    assert w["failurePolicy"] == "Fail" and w["timeoutSeconds"] == 10 and w["sideEffects"] == "None"
    assert flat_rules(w) == {r for r in EXPECTED_RULES if r[2].startswith("pods")}
    (v,) = find(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert w["namespaceSelector"] == v["namespaceSelector"]
    assert w["clientConfig"]["caBundle"] == v["clientConfig"]["caBundle"]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for matchLabels / matchExpressions."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@pytest.mark.parametrize("namespace", ["signgate", "security"])
def test_namespace_selector_spares_the_control_plane_signgate_and_opted_out_namespaces(namespace: str) -> None:
    docs = render_docs({"webhook": {"mutating": {"enabled": True}}}, namespace=namespace)
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        (w,) = find(docs, kind)["webhooks"]
        sel = w["namespaceSelector"]

        def covered(name: str, **labels: str) -> bool:
            # The API server sets kubernetes.io/metadata.name on every namespace.
            return selector_matches(sel, {"kubernetes.io/metadata.name": name, **labels})

        for spared in ("kube-system", "kube-node-lease", namespace):
            assert not covered(spared), f"{kind} covers {spared}"
        assert not covered("team-a", **{"signgate.io/ignore": "true"})
        assert covered("default")
        assert covered("ml-prod", env="prod")
        assert covered("team-a", **{"signgate.io/ignore": "false"})
        assert w["clientConfig"]["service"]["namespace"] == namespace


@pytest.mark.parametrize("timeout", [3, 10, 15, 30])
def test_review_deadline_is_two_seconds_inside_the_webhook_timeout(timeout: int) -> None:
    docs = render_docs({"webhook": {"timeoutSeconds": timeout, "mutating": {"enabled": True}}})
    review = float(arg(container(docs), "--review-timeout"))
    assert review == timeout - 2
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        (w,) = find(docs, kind)["webhooks"]
        assert w["timeoutSeconds"] == timeout and review < w["timeoutSeconds"]


# ============================================================================================
# The workload: replicas, spreading, disruption budget, probes, restricted Pod Security
# ============================================================================================


def test_deployment_is_replicated_spread_and_hardened() -> None:
    docs = render_docs(None)
    dep = find(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {t["podAffinityTerm"]["topologyKey"] for t in terms} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for t in terms:
        assert t["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert "priorityClassName" not in pod
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")

    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(docs)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert set(c["resources"]["limits"]) == {"cpu", "memory"}

    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "webhook", "scheme": "HTTPS"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "webhook", "scheme": "HTTPS"}
    assert c["image"] == "ghcr.io/signgate/signgate:0.1.0"
    assert c["args"][0] == "serve"

    # TLS and configuration are mounted as directories (no subPath), so kubelet's atomic
    # ..data swap reaches the process, which reloads by content.
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["tls"]["mountPath"] == "/etc/signgate/tls" and "subPath" not in mounts["tls"]
    assert mounts["config"]["mountPath"] == "/etc/signgate/config" and "subPath" not in mounts["config"]
    assert arg(c, "--tls-cert") == "/etc/signgate/tls/tls.crt"
    assert arg(c, "--tls-key") == "/etc/signgate/tls/tls.key"
    assert arg(c, "--config") == "/etc/signgate/config/signgate.yaml"
    assert all(m.get("readOnly") for m in c["volumeMounts"])
    # Restricted Pod Security allows only these volume types (no hostPath).
    restricted = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for v in pod["volumes"]:
        assert set(v) - {"name"} <= restricted, v


def test_restricted_pod_security_cannot_be_lowered_by_values() -> None:
    chart = helm.Chart.load(CHART)
    for bad in (
        {"securityContext": {"runAsNonRoot": False, "allowPrivilegeEscalation": False,
                             "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}},
        {"securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": True,
                             "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}},
        {"securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                             "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
                             "seccompProfile": {"type": "RuntimeDefault"}}},
        {"podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}},
    ):
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(bad)


def test_pod_disruption_budget_lets_a_node_drain() -> None:
    docs = render_docs(None)
    pdb = find(docs, "PodDisruptionBudget")
    dep = find(docs, "Deployment")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]}}
    assert "minAvailable" not in pdb["spec"]
    # With every replica healthy one may be evicted (a drain proceeds), never all of them.
    assert 1 <= pdb["spec"]["maxUnavailable"] < dep["spec"]["replicas"]


def test_options_priority_class_and_hard_anti_affinity() -> None:
    docs = scenario_docs("everything")
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    assert find(docs, "Deployment")["spec"]["replicas"] == 4
    assert pod["priorityClassName"] == "signgate-critical"
    (req,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert req["topologyKey"] == "kubernetes.io/hostname"
    (pref,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pref["podAffinityTerm"]["topologyKey"] == "topology.kubernetes.io/zone"
    (w,) = find(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert {"key": "tier", "operator": "NotIn", "values": ["sandbox"]} in w["namespaceSelector"]["matchExpressions"]


def test_rbac_is_exactly_what_the_configuration_needs() -> None:
    def automount(docs: list[dict]) -> tuple[bool, bool]:
        pod = find(docs, "Deployment")["spec"]["template"]["spec"]
        return pod["automountServiceAccountToken"], find(docs, "ServiceAccount")["automountServiceAccountToken"]

    key = PROD_ROOT_KEY
    root = {"name": "r", "notary": {"url": "https://notary.example:4443", "rootKeys": [key]}}

    def with_policies(*namespaces: dict | None) -> dict:
        policies = []
        for i, ns in enumerate(namespaces):
            p = {"name": f"p{i}", "images": [f"reg.example/p{i}/**"], "trustRoot": "r"}
            if ns is not None:
                p["namespaces"] = ns
            policies.append(p)
        return {"config": {"trustRoots": [root], "policies": policies}}

    # No label selector (the defaults, names only, no namespaces): no role, no token.
    for values in (None, with_policies({"names": ["ml"]}, None)):
        docs = render_docs(values)
        assert not find_all(docs, "ClusterRole") and not find_all(docs, "ClusterRoleBinding")
        assert automount(docs) == (False, False)
    # A label selector anywhere in the list: list + watch on namespaces, nothing else.
    docs = render_docs(with_policies({"names": ["ml"]}, {"matchLabels": {"env": "prod"}}))
    role = find(docs, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]
    binding = find(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert find(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == RELEASE
    assert automount(docs) == (True, True)
    assert not find_all(docs, "Role") and not find_all(docs, "RoleBinding")
    # rbac.create false: the operator grants it; the token is still mounted for the watch.
    values = with_policies({"matchLabels": {"env": "prod"}}) | {"rbac": {"create": False}}
    docs = render_docs(values)
    assert not find_all(docs, "ClusterRole")
    assert automount(docs) == (True, True)


REPORT_RULE = {"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"], "verbs": ["create", "patch"]}
AUDIT_RULES = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
               {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
               REPORT_RULE]


def audit_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules granted to the chart's ServiceAccount, checked to be bound to it."""
    (role,) = find_all(docs, "ClusterRole")
    (binding,) = find_all(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert not find_all(docs, "Role") and not find_all(docs, "RoleBinding")
    return role["rules"]


def test_audit_is_off_by_default_with_no_rbac_argument_or_alert() -> None:
    docs = render_docs({"metrics": {"prometheusRule": {"enabled": True}}})
    args = container(docs)["args"]
    assert not [a for a in args if a.startswith("--audit")], args
    assert not find_all(docs, "ClusterRole") and not find_all(docs, "ClusterRoleBinding")
    assert find(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    rules = [r["alert"] for g in find(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert rules and not [r for r in rules if "Audit" in r], rules
    assert "signgate_audit" not in json.dumps(find(docs, "PrometheusRule"))
    # audit.enabled false with label selectors: the namespace watch alone, no pods.
    docs = render_docs({"audit": {"enabled": False, "interval": 120}, "config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "action": "allow", "namespaces": {"matchLabels": {"env": "prod"}}}]}})
    assert audit_rules(docs) == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]
    assert not [a for a in container(docs)["args"] if a.startswith("--audit")]


@pytest.mark.parametrize("interval", [60, 600, 900, 86400])
def test_audit_enabled_passes_the_interval_and_grants_list_on_pods_and_namespaces(interval: int) -> None:
    docs = render_docs({"audit": {"enabled": True, "interval": interval}})
    c = container(docs)
    assert "--audit" in c["args"] and c["args"].count("--audit") == 1
    assert arg(c, "--audit-interval") == str(interval)
    assert audit_rules(docs) == AUDIT_RULES
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert find(docs, "ServiceAccount")["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == RELEASE
    assert not validate_against_kubernetes(docs)


def test_audit_rbac_merges_with_the_namespace_watch() -> None:
    """A label selector already grants list + watch on namespaces: the audit adds list on pods,
    one rule per resource, nothing twice."""
    docs = scenario_docs("everything")
    (role,) = find_all(docs, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
                             {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                             REPORT_RULE]
    (binding,) = find_all(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": "security"}]
    # rbac.create false: no role, but the token is mounted for the lists.
    docs = render_docs({"audit": {"enabled": True}, "rbac": {"create": False}})
    assert not find_all(docs, "ClusterRole") and not find_all(docs, "ClusterRoleBinding")
    assert find(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert "--audit" in container(docs)["args"]


def test_network_policy_opens_the_webhook_port_to_all_and_metrics_to_monitoring() -> None:
    docs = render_docs(None)
    np = find(docs, "NetworkPolicy")["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    assert np["podSelector"]["matchLabels"] == find(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    webhook, metrics = np["ingress"]
    assert webhook == {"ports": [{"port": "webhook", "protocol": "TCP"}]}  # no `from`: any source
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    dns, https = np["egress"]
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert {"port": 443, "protocol": "TCP"} in https["ports"] and "to" not in https
    custom = find(render_docs({"networkPolicy": {
        "metricsFrom": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
        "egress": {"ports": [443, 4443], "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}}}), "NetworkPolicy")["spec"]
    assert custom["ingress"][1]["from"] == [{"podSelector": {"matchLabels": {"app": "prometheus"}}}]
    assert custom["egress"][1] == {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 4443, "protocol": "TCP"}],
                                   "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    assert not find_all(render_docs({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


# ============================================================================================
# TLS: cert-manager, an existing Secret, Helm-generated (and kept across upgrades)
# ============================================================================================


def test_cert_manager_issues_a_private_ca_and_a_serving_certificate_for_the_service() -> None:
    docs = scenario_docs("cert-manager")
    issuers = {d["metadata"]["name"]: d["spec"] for d in find_all(docs, "Issuer")}
    assert issuers == {f"{RELEASE}-selfsigned": {"selfSigned": {}}, f"{RELEASE}-ca": {"ca": {"secretName": f"{RELEASE}-ca"}}}
    ca = find(docs, "Certificate", f"{RELEASE}-ca")["spec"]
    assert ca["isCA"] is True and ca["secretName"] == f"{RELEASE}-ca"
    assert ca["issuerRef"]["name"] == f"{RELEASE}-selfsigned"
    leaf = find(docs, "Certificate", f"{RELEASE}-tls")["spec"]
    assert SVC_DNS in leaf["dnsNames"]
    assert leaf["issuerRef"] == {"name": f"{RELEASE}-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert "server auth" in leaf["usages"]
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    (tls,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == leaf["secretName"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        cfg = find(docs, kind)
        assert cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{RELEASE}-tls"
        assert "caBundle" not in cfg["webhooks"][0]["clientConfig"]
    assert not find_all(docs, "Secret")


def test_cert_manager_with_an_existing_issuer() -> None:
    docs = scenario_docs("cert-manager-issuer")
    assert not find_all(docs, "Issuer")
    (leaf,) = find_all(docs, "Certificate")
    assert leaf["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert SVC_DNS in leaf["spec"]["dnsNames"]


def test_existing_secret_and_its_ca_bundle() -> None:
    docs = scenario_docs("existing-secret")
    assert not find_all(docs, "Secret") and not find_all(docs, "Certificate")
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    (tls,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "webhook-tls"
    (w,) = find(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert base64.b64decode(w["clientConfig"]["caBundle"]).decode() == CA_PEM.strip()
    with pytest.raises(helm.HelmError):
        render({"tls": {"mode": "existingSecret", "existingSecret": {"name": "webhook-tls"}}})


def helm_tls(docs: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    def data(name: str) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in find(docs, "Secret", name)["data"].items()}

    return data(f"{RELEASE}-ca"), data(f"{RELEASE}-tls")


def test_helm_generated_ca_is_the_webhooks_ca_bundle() -> None:
    docs = scenario_docs("helm-certs")
    ca, tls = helm_tls(docs)
    assert tls["ca.crt"] == ca["tls.crt"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        (w,) = find(docs, kind)["webhooks"]
        assert base64.b64decode(w["clientConfig"]["caBundle"]).decode() == ca["tls.crt"]
    # The pods mount the serving certificate, not the CA key.
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {f"{RELEASE}-tls"}
    secret = find(docs, "Secret", f"{RELEASE}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert SVC_DNS in secret["metadata"]["annotations"]["signgate.io/dns-names"].split(",")


def helm_upgrade_render(kube: Any, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A render as `helm upgrade` does it: `lookup` sees the (fake) cluster."""
    with helm.Chart.load(CHART) as chart, helm.Config(kubeconfig_content=kube.kubeconfig, namespace=NAMESPACE) as cfg:
        out = cfg.render(chart, values, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
    return documents("\n---\n".join(out[k] for k in sorted(out) if not k.endswith("NOTES.txt")))


def test_helm_generated_certificates_survive_upgrades(fake_kube: Any) -> None:
    first = helm_upgrade_render(fake_kube)
    ca1, tls1 = helm_tls(first)
    assert any("/secrets/" in r for r in fake_kube.requests), "lookup did not reach the API"
    for s in find_all(first, "Secret"):
        fake_kube.put_secret(s)

    # An upgrade keeps the CA and the serving certificate: the caBundle does not change.
    second = helm_upgrade_render(fake_kube)
    ca2, tls2 = helm_tls(second)
    assert (ca2, tls2) == (ca1, tls1)
    (w1,) = find(first, "ValidatingWebhookConfiguration")["webhooks"]
    (w2,) = find(second, "ValidatingWebhookConfiguration")["webhooks"]
    assert w1["clientConfig"]["caBundle"] == w2["clientConfig"]["caBundle"]

    # A serving certificate within renewBeforeDays of expiry is re-issued by the same CA.
    near = json.loads(json.dumps(find(first, "Secret", f"{RELEASE}-tls")))
    near["metadata"]["annotations"]["signgate.io/not-after"] = str(int(time.time()) + 86400)
    fake_kube.put_secret(near)
    third = helm_upgrade_render(fake_kube)
    ca3, tls3 = helm_tls(third)
    assert ca3 == ca1 and tls3["ca.crt"] == ca1["tls.crt"]
    assert tls3["tls.crt"] != tls1["tls.crt"] and tls3["tls.key"] != tls1["tls.key"]
    not_after = int(find(third, "Secret", f"{RELEASE}-tls")["metadata"]["annotations"]["signgate.io/not-after"])
    assert not_after > time.time() + 300 * 86400

    # Without the CA Secret, a new CA and a new certificate.
    fake_kube.objects.clear()
    fourth = helm_upgrade_render(fake_kube)
    ca4, tls4 = helm_tls(fourth)
    assert ca4["tls.crt"] != ca1["tls.crt"] and tls4["ca.crt"] == ca4["tls.crt"]


# ============================================================================================
# values.schema.json
# ============================================================================================

BAD_VALUES = {
    "replicas as a word": {"replicaCount": "three"},
    "no replicas": {"replicaCount": 0},
    "unknown tls mode": {"tls": {"mode": "selfSigned"}},
    "timeout above the API maximum": {"webhook": {"timeoutSeconds": 31}},
    "timeout leaving no review deadline": {"webhook": {"timeoutSeconds": 2}},
    "unknown failure policy": {"webhook": {"failurePolicy": "Open"}},
    "misspelt key": {"replicaCont": 3},
    "misspelt nested key": {"tls": {"mod": "helm"}},
    "unknown default action": {"config": {"defaultAction": "warn"}},
    "existingSecret without a CA bundle": {"tls": {"mode": "existingSecret", "existingSecret": {"name": "x"}}},
    "notary over http": {"config": {"trustRoots": [
        {"name": "a", "notary": {"url": "http://notary.internal", "rootKeys": [CA_PEM]}}]}},
    "trust root without keys": {"config": {"trustRoots": [{"name": "a", "notary": {"url": "https://n.internal"}}]}},
    "policy with trustRoot and action": {"config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "trustRoot": "a", "action": "allow"}]}},
    "policy with mode and action": {"config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "action": "allow", "mode": "warn"}]}},
    "unknown policy mode": {"config": {"policies": [{"name": "p", "images": ["r.io/**"], "trustRoot": "a", "mode": "block"}]}},
    "policy without images": {"config": {"policies": [{"name": "p", "images": [], "action": "deny"}]}},
    "two credential forms": {"config": {"registries": [
        {"host": "r.io", "credentials": {"secretName": "s", "dockerConfigFile": "/x"}}]}},
    "username without password": {"config": {"registries": [{"host": "r.io", "credentials": {"username": "u"}}]}},
    "privileged port": {"containerPorts": {"webhook": 443}},
    "unknown log format": {"logFormat": "xml"},
    "trust refresh of zero": {"trustRefreshSeconds": 0},
    "trust refresh above an hour": {"trustRefreshSeconds": 3601},
    "digest without algorithm": {"image": {"repository": "r", "digest": "abc"}},
    "notary and notation in one root": {"config": {"trustRoots": [
        {"name": "a", "notary": {"url": "https://n.internal", "rootKeys": [CA_PEM]},
         "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"]}}]}},
    "notation level skip": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"], "level": "skip"}}]}},
    "notation unknown field": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"], "plugins": []}}]}},
    "notation policy file without its store dir": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustPolicyFile": "/etc/notation/trustpolicy.json"}}]}},
    "notation policy file and inline stores": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustPolicyFile": "/p.json", "trustStoreDir": "/s",
                                   "trustStores": {"ca": [CA_PEM]}}}]}},
    "notation integrity override": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"],
                                   "override": {"integrity": "log"}}}]}},
    "notation authenticity logged": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"],
                                   "override": {"authenticity": "log"}}}]}},
    "notation expiry skipped": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"],
                                   "override": {"expiry": "skip"}}}]}},
    "cosign log required without a trusted root": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"keys": [{"name": "ci", "publicKey": COSIGN_PUB}]}}]}},
    "cosign transparencyLog require": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"transparencyLog": "require", "trustedRootFile": "/t.json",
                                 "keys": [{"name": "ci", "publicKey": COSIGN_PUB}]}}]}},
    "cosign publicKey and publicKeyFile": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"transparencyLog": "ignore",
                                 "keys": [{"name": "ci", "publicKey": COSIGN_PUB, "publicKeyFile": "/k.pub"}]}}]}},
    "cosign without keys": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"transparencyLog": "ignore", "keys": []}}]}},
    "cosign keyless with the log ignored": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"transparencyLog": "ignore", "keyless": {
            "trustedRootFile": "/t.json", "identities": [{"issuer": "i", "subject": "s"}]}}}]}},
    "cosign keyless identity without a subject": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"keyless": {
            "trustedRootFile": "/t.json", "identities": [{"issuer": "i"}]}}}]}},
    "cosign keyless identity subject and subjectRegExp": {"config": {"trustRoots": [
        {"name": "a", "cosign": {"keyless": {
            "trustedRootFile": "/t.json", "identities": [{"issuer": "i", "subject": "s", "subjectRegExp": "s.*"}]}}}]}},
    "notation and cosign in one root": {"config": {"trustRoots": [
        {"name": "a", "notation": {"trustStores": {"ca": [CA_PEM]}, "trustedIdentities": ["*"]},
         "cosign": {"transparencyLog": "ignore", "keys": [{"name": "ci", "key": COSIGN_PUB}]}}]}},
    "require with one trust root": {"config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "trustRoot": "a", "require": "any"}]}},
    "trustRoots and action": {"config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "trustRoots": ["a"], "action": "allow"}]}},
    "unknown require": {"config": {"policies": [
        {"name": "p", "images": ["r.io/**"], "trustRoots": ["a", "b"], "require": "most"}]}},
    "audit interval of 10 seconds": {"audit": {"enabled": True, "interval": 10}},
    "audit interval above a day": {"audit": {"enabled": True, "interval": 86401}},
    "audit interval as a duration": {"audit": {"enabled": True, "interval": "10m"}},
    "audit enabled as a word": {"audit": {"enabled": "yes"}},
    "audit misspelt key": {"audit": {"enabled": True, "intervall": 600}},
}


@pytest.mark.parametrize("values", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_values_schema_rejects(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)
    with pytest.raises(helm.HelmError):  # an install fails the same way
        render(values)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_values_schema_accepts(name: str) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(SCENARIOS[name])


# ============================================================================================
# The configuration the chart renders is one the binary accepts
# ============================================================================================

UNMATCHED = "unmatched.example/none/image:1"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_signgate_accepts_the_rendered_configuration(name: str, signgate_bin: Path, tmp_path: Path) -> None:
    docs = scenario_docs(name)
    files = lay_out_pod(docs, tmp_path)
    config = files.host("/etc/signgate/config/signgate.yaml")
    default = config_of(docs)["defaultAction"]
    r = subprocess.run([str(signgate_bin), "verify", "--config", config, "--namespace", "default", UNMATCHED],
                       capture_output=True, text=True, timeout=60)
    # 0/1: loaded and decided (an image no policy matches gets defaultAction); 2: refused.
    assert r.returncode == (0 if default == "allow" else 1), r.stdout + r.stderr
    assert "configuration" not in r.stderr, r.stderr


def test_signgate_refuses_a_configuration_the_schema_cannot_judge(signgate_bin: Path, tmp_path: Path) -> None:
    """The check above tells accepted from refused: a root key that is not a key passes the
    schema's PEM pattern, and the binary refuses it naming the field."""
    values = json.loads(json.dumps(SCENARIOS["prod-enforce"]))
    values["config"]["trustRoots"][0]["notary"]["rootKeys"] = ["-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"]
    files = lay_out_pod(render_docs(values), tmp_path)
    r = subprocess.run([str(signgate_bin), "verify", "--config", files.host("/etc/signgate/config/signgate.yaml"),
                        UNMATCHED], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "rootKeys" in r.stderr


def test_chart_extensions_become_mounted_files(tmp_path: Path) -> None:
    """caBundle -> caFile in the ConfigMap; secretName -> dockerConfigFile and passwordSecret ->
    passwordFile, both Secrets mounted as files: every file the configuration names exists in
    the pod."""
    docs = scenario_docs("everything")
    cfg = config_of(docs)
    root, = cfg["trustRoots"]
    assert root["notary"]["caFile"] == "notary-ca-ml-platform.crt"  # relative to the config file
    assert "caBundle" not in root["notary"]
    reg0, reg1, reg2 = cfg["registries"]
    assert reg0["caFile"] == "registry-ca-0.crt" and "caBundle" not in reg0
    assert reg0["credentials"] == {"dockerConfigFile": "/etc/signgate/credentials/0/.dockerconfigjson"}
    assert reg1["credentials"] == {"username": "robot", "passwordFile": "/etc/signgate/credentials/1/password"}
    assert reg2 == {"host": "ghcr.io"}
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert secrets["harbor-pull"]["items"] == [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}]
    assert secrets["robot-password"]["items"] == [{"key": "password", "path": "password"}]

    files = lay_out_pod(docs, tmp_path)
    config_dir = Path(files.host("/etc/signgate/config"))
    assert (config_dir / "notary-ca-ml-platform.crt").read_text().strip() == CA_PEM.strip()
    assert (config_dir / "registry-ca-0.crt").read_text().strip() == CA_PEM.strip()
    assert Path(files.host(reg0["credentials"]["dockerConfigFile"])).read_text() == USER_SECRETS["harbor-pull"][".dockerconfigjson"]
    assert Path(files.host(reg1["credentials"]["passwordFile"])).read_text() == USER_SECRETS["robot-password"]["password"]


def test_examples_are_the_policies_they_claim() -> None:
    prod = config_of(scenario_docs("prod-enforce"))
    (gpu,) = [p for p in prod["policies"] if p["name"] == "pytorch-gpu-prod"]
    assert gpu["mode"] == "enforce" and gpu["namespaces"] == {"names": ["ml-prod"]}
    assert all("pytorch" in i or "serving" in i for i in gpu["images"])
    assert prod["defaultAction"] == "deny"
    dev = config_of(scenario_docs("dev-warn"))
    assert {p["mode"] for p in dev["policies"]} == {"warn"}
    assert all(p["namespaces"] == {"names": ["ml-dev"]} for p in dev["policies"])
    assert dev["defaultAction"] == "allow"


def test_prod_example_denies_other_images_in_the_prod_namespace(signgate_bin: Path, tmp_path: Path) -> None:
    files = lay_out_pod(scenario_docs("prod-enforce"), tmp_path)
    r = subprocess.run([str(signgate_bin), "verify", "--config", files.host("/etc/signgate/config/signgate.yaml"),
                        "--namespace", "ml-prod", "docker.io/library/busybox:1.36"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ml-prod-only-pytorch" in r.stdout + r.stderr


# ============================================================================================
# The binary started as the Deployment starts it, with the chart's own certificate
# ============================================================================================


def pod_args(docs: list[dict[str, Any]], files: Any, port: int, metrics_port: int) -> list[str]:
    out = []
    for a in container(docs)["args"]:
        if a.startswith("--listen="):
            a = f"--listen=127.0.0.1:{port}"
        elif a.startswith("--metrics-listen="):
            a = f"--metrics-listen=127.0.0.1:{metrics_port}"
        elif "=" in a:
            flag, value = a.split("=", 1)
            a = f"{flag}={files.host(value)}"
        out.append(a)
    return out


def metric_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def base_metric(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def metrics_used(docs: list[dict[str, Any]]) -> set[str]:
    text = find(docs, "ConfigMap", f"{RELEASE}-dashboard")["data"]["signgate.json"]
    rule = find(docs, "PrometheusRule")
    text += json.dumps(rule)
    return {base_metric(m) for m in re.findall(r"\bsigngate_[a-z_]+", text)}


def admission_review(namespace: str, image: str) -> bytes:
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "7f0b2c4e-0d4b-4bd5-9a4e-3c1f1e2d3a4b",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "unsigned", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "admin", "groups": ["system:masters"]},
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "unsigned", "namespace": namespace},
                       "spec": {"containers": [{"name": "unsigned", "image": image}]}},
            "oldObject": None, "dryRun": True, "options": None,
        },
    }).encode() + b"\n"


def test_signgate_serves_the_chart_certificate_and_policy(serve: Any, tmp_path: Path) -> None:
    values = {"tls": {"mode": "helm"}, "webhook": {"mutating": {"enabled": True}},
              "metrics": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}}
    docs = render_docs(values)
    ca, _ = helm_tls(docs)
    files = lay_out_pod(docs, tmp_path / "pod", need_tls=True)
    port, metrics_port = free_port(), free_port()
    server = serve(pod_args(docs, files, port, metrics_port), port=port, metrics_port=metrics_port,
                   ca_pem=ca["tls.crt"], sni=SVC_DNS)

    # The API server's view: TLS to <service>.<namespace>.svc, verified with the caBundle.
    assert server.request("GET", "/healthz") == (200, b"ok")
    status, _ = server.request("GET", "/readyz")
    assert status == 200
    server.sni = f"other.{NAMESPACE}.svc"
    with pytest.raises(ssl.SSLCertVerificationError):
        server.request("GET", "/healthz")
    server.sni = SVC_DNS

    # NOTES.txt's smoke test: with the default policy an unsigned busybox is denied.
    status, body = server.request("POST", "/validate?timeout=10s", admission_review("default", "docker.io/library/busybox:1.36"))
    assert status == 200, body
    review = json.loads(body)
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    assert review["response"]["uid"] == "7f0b2c4e-0d4b-4bd5-9a4e-3c1f1e2d3a4b"
    assert review["response"]["allowed"] is False
    assert review["response"]["status"]["code"] == 403
    assert "docker.io/library/busybox:1.36" in review["response"]["status"]["message"]

    # Every metric the dashboard and the alerts query is one the binary exports (and SPEC names;
    # the audit's, with audit.enabled, are checked by the test below).
    exported = {base_metric(n) for n in metric_names(server.metrics())}
    used = metrics_used(docs) - AUDIT_METRICS
    assert used <= SPEC_METRICS, used - SPEC_METRICS
    assert used <= exported, used - exported


RUNNING_DIGEST = "sha256:" + "ab" * 32


def running_pod(namespace: str, name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "main", "image": image, "imageID": f"{image.split(':')[0]}@{RUNNING_DIGEST}",
                "ready": True, "restartCount": 0}]}}


def test_signgate_audits_with_the_chart_arguments_and_exports_what_the_chart_queries(
        serve: Any, fake_kube: Any, tmp_path: Path) -> None:
    """`serve` with the Deployment's arguments and audit.enabled, against a fake API server: it
    asks only for what the chart's role grants (a list of pods, a list of namespaces, an apply of
    its PolicyReport) and exports
    every signgate_audit_* series the dashboard and the alerts query."""
    values = {"tls": {"mode": "helm"}, "audit": {"enabled": True, "interval": 60},
              "metrics": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}}
    docs = render_docs(values)
    ca, _ = helm_tls(docs)
    files = lay_out_pod(docs, tmp_path / "pod", need_tls=True)
    fake_kube.objects["/api/v1/pods"] = {
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
        # No policy: defaultAction deny decides it without asking a registry.
        "items": [running_pod("default", "unsigned", "docker.io/library/busybox:1.36")]}
    fake_kube.objects["/api/v1/namespaces"] = {
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "1"},
        "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}}]}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(fake_kube.kubeconfig)
    port, metrics_port = free_port(), free_port()
    server = serve(pod_args(docs, files, port, metrics_port), port=port, metrics_port=metrics_port,
                   ca_pem=ca["tls.crt"], sni=SVC_DNS, env={"KUBECONFIG": str(kubeconfig)})

    deadline = time.monotonic() + 60
    while "signgate_audit_last_run_timestamp_seconds " not in (exposition := server.metrics()):
        assert time.monotonic() < deadline, f"no audit run:\n{server.log.read_text()}"
        time.sleep(0.2)
    assert re.search(r'^signgate_audit_workloads\{[^}]*verdict="denied"[^}]*\} 1$', exposition, re.M), exposition
    assert "audit: a running container fails the policy in force" in server.log.read_text()

    # Only lists of pods and namespaces, and the PolicyReport applied (no CRD here: 404, and the
    # audit goes on): what the chart's ClusterRole grants, nothing more.
    report = "PATCH /apis/wgpolicyk8s.io/v1alpha2/namespaces/default/policyreports/signgate-audit"
    deadline = time.monotonic() + 10
    while report not in {r.split("?")[0] for r in fake_kube.requests}:
        assert time.monotonic() < deadline, fake_kube.requests
        time.sleep(0.1)
    asked = {r.split("?")[0] for r in fake_kube.requests}
    assert asked == {"/api/v1/pods", "/api/v1/namespaces", report}, fake_kube.requests
    assert not [r for r in fake_kube.requests if "watch" in r], fake_kube.requests
    assert audit_rules(docs) == AUDIT_RULES

    exported = {base_metric(n) for n in metric_names(exposition)}
    used = metrics_used(docs)
    assert AUDIT_METRICS & used == {"signgate_audit_workloads", "signgate_audit_last_run_timestamp_seconds"}
    assert used <= exported, used - exported


def test_signgate_dev_mode_serves_the_rendered_configuration(serve: Any, tmp_path: Path) -> None:
    """`signgate serve --dev --config <rendered config>`, then /healthz (curl -k)."""
    files = lay_out_pod(render_docs(SCENARIOS["prod-enforce"]), tmp_path / "pod")
    port, metrics_port = free_port(), free_port()
    server = serve(["serve", "--dev", "--config", files.host("/etc/signgate/config/signgate.yaml"),
                    f"--listen=127.0.0.1:{port}", f"--metrics-listen=127.0.0.1:{metrics_port}", "--log-format=text"],
                   port=port, metrics_port=metrics_port)
    assert server.request("GET", "/healthz", verify=False) == (200, b"ok")
    assert "signgate_build_info" in server.metrics()


# ============================================================================================
# Monitoring: ServiceMonitor, PrometheusRule, Grafana dashboard
# ============================================================================================


def test_monitoring_crds_are_off_by_default() -> None:
    docs = render_docs(None)
    assert not find_all(docs, "ServiceMonitor") and not find_all(docs, "PrometheusRule")
    assert find(docs, "ConfigMap", f"{RELEASE}-dashboard")


def test_service_monitor_scrapes_the_metrics_port() -> None:
    docs = scenario_docs("everything")
    sm = find(docs, "ServiceMonitor")["spec"]
    svc = find(docs, "Service")
    assert sm["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (ep,) = sm["endpoints"]
    assert ep["port"] == "metrics" and ep["path"] == "/metrics"
    assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}


def test_prometheus_rule_alerts() -> None:
    docs = scenario_docs("everything")
    rules = {r["alert"]: r for g in find(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert {"SigngateDenialSpike", "SigngateVerificationErrors", "SigngateAdmissionLatencyHigh",
            "SigngateTrustDataExpiringSoon", "SigngateWebhookCertificateExpiringSoon",
            "SigngateNoReadyReplicas", "SigngateAuditDeniedWorkloads", "SigngateAuditNotRunning"} <= set(rules)
    sel = 'namespace="security",service="signgate"'
    assert 'decision="denied"' in rules["SigngateDenialSpike"]["expr"]
    assert 'result="error"' in rules["SigngateVerificationErrors"]["expr"]
    latency = rules["SigngateAdmissionLatencyHigh"]["expr"]
    assert re.search(r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(signgate_admission_duration_seconds_bucket\{"
                     + re.escape(sel) + r"\}\[5m\]\)\)\) > 3", latency), latency
    assert "signgate_trust_data_expiry_timestamp_seconds" in rules["SigngateTrustDataExpiringSoon"]["expr"]
    assert f"< {14 * 86400}" in rules["SigngateTrustDataExpiringSoon"]["expr"]
    assert "signgate_tls_certificate_expiry_timestamp_seconds" in rules["SigngateWebhookCertificateExpiringSoon"]["expr"]
    ready = rules["SigngateNoReadyReplicas"]["expr"]
    assert 'kube_deployment_status_replicas_available{namespace="security",deployment="signgate"}' in ready
    assert f"absent(up{{{sel}}} == 1)" in ready
    for r in rules.values():
        assert r["expr"].count("(") == r["expr"].count(")"), r["expr"]
        assert r["labels"]["severity"] in {"warning", "critical"}
        if "signgate_" in r["expr"]:
            assert sel in r["expr"], r["alert"]


@pytest.mark.parametrize("name, interval", [("everything", 900), ("audit", 300)])
def test_prometheus_rule_audit_alerts(name: str, interval: int) -> None:
    docs = scenario_docs(name)
    ns = "security" if name == "everything" else NAMESPACE
    sel = f'namespace="{ns}",service="signgate"'
    rules = {r["alert"]: r for g in find(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    denied = rules["SigngateAuditDeniedWorkloads"]
    assert " ".join(denied["expr"].split()) == f'sum(signgate_audit_workloads{{{sel},verdict="denied"}}) > 0'
    assert denied["for"] == "15m" and denied["labels"] == {"severity": "warning"}
    assert "`signgate audit" in denied["annotations"]["description"]
    stale = rules["SigngateAuditNotRunning"]
    expr = " ".join(stale["expr"].split())
    assert expr.startswith(f"time() - signgate_audit_last_run_timestamp_seconds{{{sel}}} > {3 * interval} or "), expr
    # No run has succeeded (the metric is absent until one does: e.g. no RBAC for the lists).
    assert f"absent(signgate_audit_last_run_timestamp_seconds{{{sel}}})" in expr
    assert stale["for"] == "10m" and stale["labels"] == {"severity": "warning"}
    for r in (denied, stale):
        assert r["expr"].count("(") == r["expr"].count(")"), r["expr"]
    assert metrics_used(docs) <= CHART_METRICS, metrics_used(docs) - CHART_METRICS


def test_grafana_dashboard() -> None:
    docs = render_docs(None)
    cm = find(docs, "ConfigMap", f"{RELEASE}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["signgate.json"])
    assert dash["uid"] == "signgate-overview"
    panels = {p["title"]: p for p in dash["panels"] if p["type"] != "row"}
    exprs = {t: " ".join(x["expr"] for x in p["targets"]) for t, p in panels.items()}

    def panel_using(*fragments: str) -> str:
        hits = [t for t, e in exprs.items() if all(f in e for f in fragments)]
        assert hits, f"no panel uses {fragments}"
        return hits[0]

    panel_using("signgate_admission_requests_total", "by (decision)")                 # decisions over time
    panel_using("histogram_quantile(0.99", "signgate_admission_duration_seconds_bucket")  # latency percentiles
    panel_using("histogram_quantile(0.5", "signgate_admission_duration_seconds_bucket")
    panel_using("signgate_cache_hits_total", "signgate_cache_misses_total")             # cache hit ratio
    panel_using("signgate_upstream_duration_seconds_bucket")                            # upstream latency
    panel_using("signgate_upstream_requests_total", 'status!~"2.."')                    # upstream errors
    panel_using("signgate_trust_data_expiry_timestamp_seconds", "time()")               # time to expiry
    # The audit: every replica reports the whole cluster, so max, not sum, across replicas.
    audit = panel_using("signgate_audit_workloads", "by (policy, verdict)")
    assert audit == "Running workloads the current policy denies"
    assert exprs[audit].startswith("max by (policy, verdict) (signgate_audit_workloads{namespace=~\"$namespace\"})")
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), ids
    used = {base_metric(m) for m in re.findall(r"\bsigngate_[a-z_]+", cm["data"]["signgate.json"])}
    assert used <= CHART_METRICS, used - CHART_METRICS
    for e in exprs.values():
        assert e.count("(") == e.count(")"), e


def test_notes_tell_the_admin_how_to_test_the_install() -> None:
    notes = render(None)["notes"]
    assert "kubectl -n default run unsigned --image=docker.io/library/busybox:1.36 --restart=Never --dry-run=server" in notes
    assert 'admission webhook "validate.signgate.io" denied the request' in notes
    assert "kube-system, kube-node-lease, signgate" in notes
    assert "signgate.io/ignore=true" in notes
    assert "rollout status deployment/signgate" in notes
    assert "defaultAction is allow" in render(SCENARIOS["dev-warn"])["notes"]


# ============================================================================================
# deploy/ and the Dockerfile
# ============================================================================================


def test_deploy_manifests_are_in_sync_with_the_chart() -> None:
    assert DEPLOY.read_text() == deploy_manifest(), "deploy/signgate.yaml is out of date: run scripts/render-deploy"


def test_deploy_manifests_are_the_chart_defaults_with_cert_manager() -> None:
    docs = documents(DEPLOY.read_text())
    ns = docs[0]
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert docs[1:] == render_docs(DEPLOY_VALUES)
    assert find_all(docs, "Certificate") and not find_all(docs, "Secret")
    assert not validate_against_kubernetes(docs)


def dockerfile_stages() -> list[tuple[str, list[str]]]:
    stages: list[tuple[str, list[str]]] = []
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_builds_with_cargo_locked_and_runs_distroless_nonroot() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build_from, build = stages[0]
    assert re.match(r"FROM (docker\.io/(library/)?)?rust:[0-9.]+-bookworm AS build", build_from, re.I), build_from
    assert any("cargo build --release --locked" in line for line in build if line.startswith("RUN"))
    final_from, final = stages[-1]
    assert re.match(r"FROM gcr\.io/distroless/cc-debian12:nonroot", final_from), final_from
    assert not any(line.startswith("RUN") for line in final), "the final image has no shell to run anything"
    assert "USER 65532:65532" in final
    assert any(line.startswith("ENTRYPOINT") and "/usr/local/bin/signgate" in line for line in final)
    labels = " ".join(line for line in final if line.startswith("LABEL"))
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.source",
                "org.opencontainers.image.licenses", "org.opencontainers.image.version"):
        assert key in labels
    assert "EXPOSE 8443 9090" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target" in ignored or "target/" in ignored or "/target" in ignored


def test_dockerfile_build_context_is_enough_for_cargo(signgate_bin: Path, tmp_path: Path) -> None:
    """What the build stage COPYs (and .dockerignore does not drop) is all cargo needs: the
    same files, checked in a directory of their own."""
    ignored = {line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    _, build = dockerfile_stages()[0]
    copies = [line.split()[1:] for line in build if line.startswith("COPY ")]
    assert copies
    for *sources, dest in copies:
        assert not any(src.startswith("--") for src in sources)
        for src in sources:
            assert src.strip("/") not in ignored, f".dockerignore drops {src}"
            # COPY semantics: a directory's contents go into dest; files into dest/ (a directory).
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, tmp_path / dest, dirs_exist_ok=True)
            else:
                target = tmp_path / dest / Path(src).name if dest.endswith("/") else tmp_path / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / src, target)
    r = subprocess.run(["cargo", "check", "--locked", "--offline", "--bin", "signgate"], cwd=tmp_path,
                       env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
