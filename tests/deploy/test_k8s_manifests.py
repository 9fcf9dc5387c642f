"""deploy/kubernetes: the example overlay (and its migration Job) rendered as kustomize would
and validated offline against the Kubernetes schemas bundled in kubernetes-validate (strict:
an unknown field is an error), for the oldest and newest Kubernetes versions we support;
then what the deployment promises: probes on endpoints that exist, node name = pod name, a
grace period that covers the handover, one reconciler, a private admin, requests sized from
docs/benchmarks.md, and a ConfigMap + Secret that make a valid production configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kustomize_lite import Unsupported, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
OVERLAY = K8S / "overlays" / "example"
VERSIONS = ("1.29.0", "1.37.0")  # oldest and newest we validate against
MIB = 1024 * 1024
# docs/benchmarks.md: USS per worker <= 15 MB (14.1-14.9 MB idle), ~1 MB more after a sale;
# orchestrator + zygote ~160 MB RSS once per pod (docs/deploy-kubernetes.md, "Sizing")
WORKER_MIB = 16
POD_BASE_MIB = 160
BOTS_PER_POD = 100  # the density base/orchestrator.yaml is sized for


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(OVERLAY)


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("version", VERSIONS)
def test_k8s_manifests_validate_against_the_kubernetes_schemas_offline(docs, version):
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed (.ci/run installs it)"
    )
    rendered = docs + render(OVERLAY / "migrate")
    errors = []
    for doc in rendered:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert errors == []
    kinds = sorted({d["kind"] for d in rendered})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "StatefulSet",
    ]


def test_k8s_overlay_sets_namespace_image_and_orchestrator_count(docs):
    assert {d["metadata"]["namespace"] for d in docs} == {"vitrine"}
    images = {
        c["image"]
        for d in docs
        if "template" in d.get("spec", {})
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/vitrine:1.0.0"}
    assert _one(docs, "StatefulSet", "vitrine-orchestrator")["spec"]["replicas"] == 3
    config = _one(docs, "ConfigMap", "vitrine-config")["data"]
    assert config["TRUSTED_PROXIES"] == "10.244.0.0/16"
    assert config["PUBLIC_BASE_URL"].startswith("https://")


def test_k8s_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [], "commonLabels": {"a": "b"}})
    )
    with pytest.raises(Unsupported, match="commonLabels"):
        render(tmp_path)


def test_k8s_portal_runs_two_replicas_behind_a_tls_ingress_and_the_admin_stays_private(docs):
    portal = _one(docs, "Deployment", "vitrine-portal")
    assert portal["spec"]["replicas"] >= 2
    ingress = _one(docs, "Ingress", "vitrine-portal")
    assert ingress["spec"]["tls"][0]["secretName"]
    backends = {
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"vitrine-portal"}
    assert _one(docs, "Service", "vitrine-admin")["spec"]["type"] == "ClusterIP"
    assert [d for d in docs if d["kind"] == "Ingress"] == [ingress]


def test_k8s_probes_hit_endpoints_the_apps_serve(docs):
    from core.settings import load_settings
    from web.admin import create_app as admin_app
    from web.portal import create_app as portal_app

    settings = load_settings(
        {"ADMIN_API_TOKEN": "t" * 32, "TOKEN_ENCRYPTION_KEYS": _fernet()}, env_file=None
    )
    routes = {
        "vitrine-portal": {r.rule for r in portal_app(settings).url_map.iter_rules()},
        "vitrine-admin": {r.rule for r in admin_app(settings).url_map.iter_rules()},
    }
    for name, served in routes.items():
        container = _container(_one(docs, "Deployment", name))
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] in served, (name, probe)
    orchestrator = _container(_one(docs, "StatefulSet", "vitrine-orchestrator"))
    command = orchestrator["readinessProbe"]["exec"]["command"]
    assert command == ["python", "-m", "orchestrator.probe"]
    assert (ROOT / "orchestrator" / "probe.py").is_file()
    assert "livenessProbe" not in orchestrator  # a restart would end every bot of the pod


def test_k8s_orchestrator_node_is_the_pod_name_and_the_grace_covers_the_handover(docs):
    sts = _one(docs, "StatefulSet", "vitrine-orchestrator")
    env = {e["name"]: e for e in _container(sts).get("env", [])}
    assert env["ORCHESTRATOR_NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    config = _one(docs, "ConfigMap", "vitrine-config")["data"]
    assert config["VITRINE_ORCH_ON_STOP"] == "handover"
    stop_grace = float(config["VITRINE_POLICY_STOP_GRACE"])
    # workers get SIGKILL after stop_grace; then leases, dirty marks and closing: seconds
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= stop_grace + 15
    pdb = _one(docs, "PodDisruptionBudget", "vitrine-orchestrator")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_k8s_reconciler_is_single_and_never_overlaps_itself(docs):
    reconciler = _one(docs, "Deployment", "vitrine-reconciler")
    assert reconciler["spec"]["replicas"] == 1
    assert reconciler["spec"]["strategy"]["type"] == "Recreate"


def test_k8s_orchestrator_memory_request_fits_its_bots_per_docs_benchmarks(docs):
    sts = _one(docs, "StatefulSet", "vitrine-orchestrator")
    resources = _container(sts)["resources"]
    request = _mebibytes(resources["requests"]["memory"])
    assert request >= BOTS_PER_POD * WORKER_MIB + POD_BASE_MIB
    assert _mebibytes(resources["limits"]["memory"]) > request


def test_k8s_every_selector_finds_its_pods_and_every_target_port_exists(docs):
    pods = [
        (d["spec"]["template"]["metadata"]["labels"], _container(d))
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    ]
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"].items()
            matches = [c for labels, c in pods if selector <= labels.items()]
            assert matches, f"Service {doc['metadata']['name']} selects no pod"
            for port in doc["spec"].get("ports", []):
                names = {p["name"] for c in matches for p in c.get("ports", [])}
                assert port["targetPort"] in names
        if doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"].items()
            assert any(selector <= labels.items() for labels, _ in pods)


def test_k8s_config_and_the_secret_example_make_a_valid_production_configuration(docs):
    from core.settings import load_settings

    config = _one(docs, "ConfigMap", "vitrine-config")["data"]
    secret_keys = [
        line.split("=", 1)[0]
        for line in (OVERLAY / "secrets.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    values = {key: "x" * 32 for key in secret_keys}
    values |= {
        "DATABASE_URL": "postgres://vitrine:pw@postgres.example.internal:5432/vitrine",
        "REDIS_URL": "redis://:pw@redis.example.internal:6379/0",
        "TOKEN_ENCRYPTION_KEYS": _fernet(),
    }
    settings = load_settings({**config, **values}, env_file=None)  # ConfigError otherwise
    assert settings.environment == "production"
    assert not set(config) & set(secret_keys), "a setting is in both the ConfigMap and Secret"


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
