"""deploy/: Prometheus alert rules and the Grafana dashboard use only metrics that exist; KEDA
scales on pending plus running tasks per worker's max_jobs; k8s pods follow the restricted Pod
Security Standard, have probes and disruption budgets, and name their image in one place; every
compose service has a healthcheck."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.test_metrics import drive
from tests.system import OpsSystem

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
GRAFANA = DEPLOY / "grafana" / "taskgate-dashboard.json"
METRIC = re.compile(r"\btaskgate_[a-z0-9_]+\b")


def k8s_docs() -> list[dict[str, Any]]:
    return [
        d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def expressions() -> list[str]:
    exprs = [r["expr"] for r in rules()]
    exprs += [t["expr"] for p in json.loads(GRAFANA.read_text())["panels"] for t in p["targets"]]
    exprs += [
        t["metadata"]["query"]
        for d in k8s_docs()
        if d["kind"] == "ScaledObject"
        for t in d["spec"]["triggers"]
    ]
    return exprs


def exposed_names(text: str) -> set[str]:
    """Metric names a PromQL expression may use: samples, plus every family's (even unlabelled-yet) names."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
            if kind == "counter":
                names.add(name if name.endswith("_total") else name + "_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_alert_rules_cover_the_operator_cases() -> None:
    by_name = {r["alert"]: r for r in rules()}
    for name in (
        "TaskgateTasksStuck",
        "TaskgatePoolExhausted",
        "TaskgateTaskErrorRate",
        "TaskgateWebhookBacklog",
        "TaskgateNoSchedulerAlive",
    ):
        assert name in by_name
    for rule in by_name.values():
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]) and rule["labels"]["severity"] in {
            "info",
            "warning",
            "critical",
        }
        assert rule["annotations"]["summary"]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool is not installed (Debian's prometheus package is ~96 MB with a daemon; not pulled in)"
        )
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_every_metric_used_by_alerts_grafana_and_keda_is_exposed(ops: OpsSystem) -> None:
    await drive(ops)
    exposed: set[str] = set()
    for url in (ops.api_url, ops.worker_url, ops.scheduler_url):
        async with ops.http.get(url + "/metrics") as resp:
            exposed |= exposed_names(await resp.text())
    used = {m for e in expressions() for m in METRIC.findall(e)}
    assert len(used) >= 15
    assert used - exposed == set(), "metrics used in deploy/ but not exposed"


def test_keda_scales_on_what_bounds_a_worker_start_queue_per_max_jobs_and_running_per_max_inflight() -> None:
    docs = k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    triggers = next(d for d in docs if d["kind"] == "ScaledObject")["spec"]["triggers"]
    by_query = {t["metadata"]["query"]: t["metadata"]["threshold"] for t in triggers}
    assert by_query == {
        "max(taskgate_worker_queued_jobs)": config["TASKGATE_WORKER_MAX_JOBS"],
        "max(taskgate_running_tasks)": config["TASKGATE_WORKER_MAX_INFLIGHT"],
    }


def test_pods_are_restricted_probed_budgeted_and_share_one_image_tag() -> None:
    docs = k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    budgets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert set(deployments) == set(budgets) == {"taskgate-api", "taskgate-scheduler", "taskgate-worker"}
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert budgets[name]["spec"]["selector"] == dep["spec"]["selector"]
        assert (
            pod["securityContext"]["runAsNonRoot"]
            and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        )
        [container] = pod["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
        assert sc["readOnlyRootFilesystem"] is True
        assert container["image"] == "taskgate"  # the tag lives in kustomization.yaml only
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        role = name.removeprefix("taskgate-")
        if role != "api":
            port = next(p["containerPort"] for p in container["ports"] if p["name"] == "probes")
            assert str(port) == config[f"TASKGATE_{role.upper()}_PROBE_PORT"]
    [kustomization] = [d for d in docs if d["kind"] == "Kustomization"]
    assert [i["name"] for i in kustomization["images"]] == ["taskgate"] and kustomization["images"][0][
        "newTag"
    ]
    listed = {Path(p).name for p in kustomization["resources"]}
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_every_compose_service_has_a_healthcheck() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert "healthcheck" in service, name
    assert "9101/healthz" in json.dumps(compose["services"]["worker"]["healthcheck"])
    assert "9102/healthz" in json.dumps(compose["services"]["scheduler"]["healthcheck"])
