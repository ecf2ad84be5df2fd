"""The Kubernetes manifests in ``deploy/``: they render, they are valid Kubernetes objects, and
they agree with the Dockerfile, the settings and the app they deploy."""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from starlette.routing import Match

from app.ingest.carriers import BUILT_IN
from app.settings import AccountSettings, CarrierSettings, Settings
from tests.support.kustomize import UnsupportedKustomization, render, resource_id

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("single", "ha")
KUBERNETES_VERSION = "1.32.0"
CONTAINER = "relay"
SERVE_COMMAND = ["relay", "serve", "--host", "0.0.0.0", "--port", "8080"]  # noqa: S104
PART_OF = {
    "app.kubernetes.io/name": "tracking-relay",
    "app.kubernetes.io/part-of": "tracking-relay",
}
# Peak RSS measured under ingest load (README "Performance"): the memory limit must leave room.
MEASURED_PEAK_RSS_MIB = 87

Resource = dict[str, Any]


# --- rendering ------------------------------------------------------------------------------


@functools.cache
def _rendered(overlay: str) -> tuple[Resource, ...]:
    return tuple(render(DEPLOY / "overlays" / overlay))


def rendered(overlay: str) -> list[Resource]:
    return copy.deepcopy(list(_rendered(overlay)))


def find(resources: list[Resource], kind: str) -> list[Resource]:
    return [resource for resource in resources if resource["kind"] == kind]


def one(resources: list[Resource], kind: str) -> Resource:
    found = find(resources, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(resources: list[Resource]) -> dict[str, Any]:
    spec: dict[str, Any] = one(resources, "Deployment")["spec"]["template"]["spec"]
    return spec


def relay_container(resources: list[Resource]) -> dict[str, Any]:
    containers = pod_spec(resources)["containers"]
    return next(container for container in containers if container["name"] == CONTAINER)


def by_name(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in find(resources, kind) if r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name} is referenced but not rendered"
    return matches[0]


def secret_values(secret: Resource) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**values, **(secret.get("stringData") or {})}


def env_sources(resources: list[Resource]) -> list[tuple[str, dict[str, str]]]:
    """The container's envFrom sources, in order, as (kind, values)."""
    sources = []
    for source in relay_container(resources).get("envFrom") or []:
        assert "prefix" not in source, "envFrom prefixes are not expected"
        if "configMapRef" in source:
            config_map = by_name(resources, "ConfigMap", source["configMapRef"]["name"])
            sources.append(("ConfigMap", dict(config_map.get("data") or {})))
        else:
            secret = by_name(resources, "Secret", source["secretRef"]["name"])
            sources.append(("Secret", secret_values(secret)))
    return sources


def effective_env(overlay: str) -> dict[str, str]:
    """The relay's environment in the pod: the image's ENV, then envFrom sources in order
    (a later source wins), then ``env`` (wins over envFrom), as Kubernetes composes them."""
    resources = rendered(overlay)
    environment = dict(dockerfile().env)
    for _, values in env_sources(resources):
        environment.update(values)
    for variable in relay_container(resources).get("env") or []:
        assert "value" in variable, f"{variable['name']}: only literal env values are expected"
        environment[variable["name"]] = variable["value"]
    return environment


@pytest.fixture
def settings_of(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Settings]:
    """The relay's Settings as an overlay's pod would load them."""

    def load(overlay: str) -> Settings:
        for name in [name for name in os.environ if name.startswith("RELAY_")]:
            monkeypatch.delenv(name)
        for name, value in effective_env(overlay).items():
            if name.startswith("RELAY_"):
                monkeypatch.setenv(name, value)
        return Settings(_env_file=None)

    return load


def quantity_mib(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)", value)
    assert match, f"unexpected quantity {value!r}"
    return float(match.group(1)) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}[match.group(2)]


def subset(labels: dict[str, str], of: dict[str, str]) -> bool:
    return labels.items() <= of.items()


# --- the Dockerfile -------------------------------------------------------------------------


class Dockerfile:
    """The final stage's instructions."""

    def __init__(self, text: str) -> None:
        lines: list[str] = []
        pending = ""
        for raw in text.splitlines():
            stripped = raw.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):  # a comment inside a continued instruction
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            lines.append(pending + stripped)
            pending = ""
        instructions = [tuple(line.split(None, 1)) for line in lines]
        last_from = max(i for i, parts in enumerate(instructions) if parts[0].upper() == "FROM")
        self.instructions: list[tuple[str, str]] = [
            (parts[0].upper(), parts[1] if len(parts) > 1 else "")
            for parts in instructions[last_from:]
        ]

    def last(self, instruction: str) -> str | None:
        values = [args for name, args in self.instructions if name == instruction]
        return values[-1] if values else None

    def exec_form(self, instruction: str) -> list[str] | None:
        args = self.last(instruction)
        if args is None:
            return None
        parsed = json.loads(args)
        assert isinstance(parsed, list), f"{instruction} must be in exec form (a JSON array)"
        return [str(item) for item in parsed]

    @property
    def env(self) -> dict[str, str]:
        environment: dict[str, str] = {}
        for name, args in self.instructions:
            if name != "ENV":
                continue
            words = shlex.split(args)
            if "=" not in words[0]:  # legacy form: ENV NAME value with spaces
                environment[words[0]] = args.split(None, 1)[1]
                continue
            for word in words:
                key, _, value = word.partition("=")
                environment[key] = value
        return environment

    @property
    def user_id(self) -> int:
        user = self.last("USER")
        assert user is not None, "the image must not run as root"
        return int(user.split(":")[0])

    @property
    def exposed_ports(self) -> set[int]:
        return {
            int(port.split("/")[0])
            for name, args in self.instructions
            if name == "EXPOSE"
            for port in args.split()
        }

    @property
    def volumes(self) -> set[str]:
        paths: set[str] = set()
        for name, args in self.instructions:
            if name == "VOLUME":
                paths.update(json.loads(args) if args.startswith("[") else args.split())
        return paths


@functools.cache
def dockerfile() -> Dockerfile:
    return Dockerfile((REPO / "Dockerfile").read_text(encoding="utf-8"))


# --- rendering and validity -----------------------------------------------------------------

BASE = {
    ("ConfigMap", "tracking-relay-config"),
    ("Secret", "tracking-relay-secrets"),
    ("Deployment", "tracking-relay"),
    ("Service", "tracking-relay"),
    ("NetworkPolicy", "tracking-relay"),
    ("ServiceMonitor", "tracking-relay"),
}
EXPECTED = {
    "single": BASE | {("PersistentVolumeClaim", "tracking-relay-data")},
    "ha": BASE
    | {("HorizontalPodAutoscaler", "tracking-relay"), ("PodDisruptionBudget", "tracking-relay")},
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_its_resources_each_labelled(overlay: str) -> None:
    resources = rendered(overlay)
    assert {(r["kind"], r["metadata"]["name"]) for r in resources} == EXPECTED[overlay]
    for resource in resources:
        assert subset(PART_OF, resource["metadata"].get("labels") or {}), resource_id(resource)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_a_valid_kubernetes_object(overlay: str) -> None:
    for resource in rendered(overlay):
        if resource["kind"] == "ServiceMonitor":
            continue  # a CRD: checked by hand below
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def _set_replicas_to_words(deployment: Resource) -> None:
    deployment["spec"]["replicas"] = "three"


def _set_container_port_to_string(deployment: Resource) -> None:
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"


def _misspell_probe_field(deployment: Resource) -> None:
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")


def _drop_container_name(deployment: Resource) -> None:
    del deployment["spec"]["template"]["spec"]["containers"][0]["name"]


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (_set_replicas_to_words, ["spec", "replicas"]),
        (_set_container_port_to_string, ["containerPort"]),
        (_misspell_probe_field, ["readinessProbe", "httpGet"]),
        (_drop_container_name, ["containers", 0]),
    ],
)
def test_the_validator_catches_a_broken_field(
    breakage: Callable[[Resource], None], where: list[Any]
) -> None:
    deployment = one(rendered("ha"), "Deployment")
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    breakage(deployment)
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    path = list(caught.value.absolute_path)
    assert any(path[i : i + len(where)] == where for i in range(len(path))), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_the_services_http_port_at_metrics(overlay: str) -> None:
    resources = rendered(overlay)
    monitor = one(resources, "ServiceMonitor")
    service = one(resources, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) <= {"apiVersion", "kind", "metadata", "spec"}
    assert subset(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"], "a ServiceMonitor needs at least one endpoint"
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        assert re.fullmatch(r"\d+(s|m)", endpoint["interval"]), endpoint["interval"]


# --- the renderer against kustomize ---------------------------------------------------------


def kubectl_kustomize(directory: Path) -> dict[tuple[str, str, str], Resource]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: the renderer cannot be compared with kustomize")
    output = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    documents = [document for document in yaml.safe_load_all(output) if document]
    return {resource_id(document): document for document in documents}


def keyed(resources: list[Resource]) -> dict[tuple[str, str, str], Resource]:
    return {resource_id(resource): resource for resource in resources}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renderer_matches_kubectl_kustomize(overlay: str) -> None:
    expected = kubectl_kustomize(DEPLOY / "overlays" / overlay)
    assert keyed(rendered(overlay)) == expected


@pytest.fixture
def custom_overlay(tmp_path: Path) -> Path:
    """An operator's overlay on the ha one using the other features the renderer offers."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(DEPLOY / "overlays" / "ha", tmp_path)],
                "images": [{"name": "ghcr.io/example/tracking-relay", "newTag": "0.2.0"}],
                "patches": [{"path": "deployment.yaml"}, {"path": "no-monitor.yaml"}],
                "labels": [{"pairs": {"team": "logistics"}}],
            }
        )
    )
    (tmp_path / "deployment.yaml").write_text(
        """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tracking-relay
spec:
  revisionHistoryLimit: null
  template:
    spec:
      containers:
        - name: relay
          env:
            - name: RELAY_LOG_LEVEL
              value: DEBUG
          ports:
            - containerPort: 9090
              name: extra
          volumeMounts:
            - mountPath: /tmp
              $patch: delete
            - mountPath: /cache
              name: cache
      volumes:
        - name: cache
          emptyDir: {}
        - name: tmp
          $patch: delete
"""
    )
    (tmp_path / "no-monitor.yaml").write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
        "metadata:\n  name: tracking-relay\n$patch: delete\n"
    )
    return tmp_path


def test_renderer_applies_images_patches_deletions_and_labels(custom_overlay: Path) -> None:
    resources = render(custom_overlay)
    assert not find(resources, "ServiceMonitor")
    deployment = one(resources, "Deployment")
    assert "revisionHistoryLimit" not in deployment["spec"]
    assert deployment["metadata"]["labels"]["team"] == "logistics"
    assert "team" not in deployment["spec"]["selector"]["matchLabels"]
    container = relay_container(resources)
    assert container["image"] == "ghcr.io/example/tracking-relay:0.2.0"
    assert container["env"] == [{"name": "RELAY_LOG_LEVEL", "value": "DEBUG"}]
    assert [port["name"] for port in container["ports"]] == ["extra", "http"]
    assert container["volumeMounts"] == [{"mountPath": "/cache", "name": "cache"}]
    assert [volume["name"] for volume in pod_spec(resources)["volumes"]] == ["cache"]
    assert container["envFrom"] == relay_container(rendered("ha"))["envFrom"]


def test_renderer_matches_kubectl_kustomize_on_an_operators_overlay(
    custom_overlay: Path,
) -> None:
    expected = kubectl_kustomize(custom_overlay)
    assert keyed(render(custom_overlay)) == expected


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [../base]\nconfigMapGenerator:\n  - name: extra\n    literals: [A=1]\n"
    )
    with pytest.raises(UnsupportedKustomization, match="configMapGenerator"):
        render(tmp_path)


# --- agreement with the Dockerfile ----------------------------------------------------------


def container_argv(container: dict[str, Any]) -> list[str]:
    """What the container runs: ``command`` replaces the ENTRYPOINT (and drops the CMD),
    ``args`` replaces the CMD."""
    image = dockerfile()
    if "command" in container:
        return list(container["command"]) + list(container.get("args", []))
    entrypoint = image.exec_form("ENTRYPOINT") or []
    return entrypoint + list(container.get("args", image.exec_form("CMD") or []))


def command_port(argv: list[str]) -> int:
    return int(argv[argv.index("--port") + 1])


def test_the_image_serves_the_relay_on_8080() -> None:
    image = dockerfile()
    assert image.exec_form("ENTRYPOINT") is None
    assert image.exec_form("CMD") == SERVE_COMMAND
    assert image.exposed_ports == {command_port(SERVE_COMMAND)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_the_images_command_on_the_exposed_port(overlay: str) -> None:
    resources = rendered(overlay)
    container = relay_container(resources)
    assert container["image"] == "ghcr.io/example/tracking-relay:0.1.0"
    argv = container_argv(container)
    assert argv == SERVE_COMMAND
    http = {port["name"]: port["containerPort"] for port in container["ports"]}["http"]
    assert {http} == dockerfile().exposed_ports
    assert http == command_port(argv)
    assert "RELAY_PORT" not in effective_env(overlay)  # the command's --port decides
    service_port = one(resources, "Service")["spec"]["ports"][0]
    assert (service_port["name"], service_port["port"], service_port["targetPort"]) == (
        "http",
        80,
        "http",
    )
    policy = one(resources, "NetworkPolicy")["spec"]
    ingress_ports = [port["port"] for rule in policy["ingress"] for port in rule["ports"]]
    assert ingress_ports in ([http], ["http"])
    assert all("from" not in rule for rule in policy["ingress"]), "carriers post from anywhere"
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 5432)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_as_the_images_user_locked_down(overlay: str) -> None:
    spec = pod_spec(rendered(overlay))
    container = relay_container(rendered(overlay))
    uid = dockerfile().user_id
    pod_context, context = spec["securityContext"], container["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] == pod_context["runAsGroup"] == pod_context["fsGroup"] == uid
    assert context.get("runAsUser", uid) == uid
    assert context.get("runAsNonRoot", True) is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile"))
    assert seccomp == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    # A read-only root needs a writable /tmp.
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a path in the pod


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_fit_the_measured_footprint(overlay: str) -> None:
    resources = relay_container(rendered(overlay))["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert set(resources["limits"]) == {"memory"}, "no CPU limit: throttling only adds latency"
    limit = quantity_mib(resources["limits"]["memory"])
    assert limit >= quantity_mib(resources["requests"]["memory"])
    assert limit >= 2 * MEASURED_PEAK_RSS_MIB


# --- probes, shutdown and settings ----------------------------------------------------------


def answers_get(app: Any, path: str) -> bool:
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


@pytest.mark.usefixtures("clean_environment")
def test_probe_and_scrape_paths_are_routes_of_the_app() -> None:
    from app.api.app import create_app

    app = create_app(Settings(_env_file=None))
    assert not answers_get(app, "/no-such-route"), "the route check must be able to fail"
    for overlay in OVERLAYS:
        resources = rendered(overlay)
        container = relay_container(resources)
        paths = {
            container[probe]["httpGet"]["path"]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        paths |= {e["path"] for e in one(resources, "ServiceMonitor")["spec"]["endpoints"]}
        for path in paths:
            assert answers_get(app, path), f"{overlay}: GET {path} is not a route of the app"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_mean_what_they_should(overlay: str) -> None:
    container = relay_container(rendered(overlay))
    startup, liveness, readiness = (
        container["startupProbe"],
        container["livenessProbe"],
        container["readinessProbe"],
    )
    # A database outage makes /readyz fail: that must take the pod out of the Service,
    # never restart it, so liveness and start-up only ask whether the process answers.
    assert startup["httpGet"]["path"] == liveness["httpGet"]["path"] == "/livez"
    assert readiness["httpGet"]["path"] == "/readyz"
    for probe in (startup, liveness, readiness):
        assert probe["httpGet"]["port"] in ("http", 8080)
    # Start-up migrates the schema, queued on a lock when several pods start: be generous.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    # /readyz waits up to 2 s for the database before answering 503 itself.
    assert readiness["timeoutSeconds"] > 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_outlasts_the_drain(
    overlay: str, settings_of: Callable[[str], Settings]
) -> None:
    settings = settings_of(overlay)
    grace = settings.shutdown_grace.total_seconds()
    vtex_timeout = settings.vtex_timeout.total_seconds()
    assert (grace, vtex_timeout) == (5, 10)
    # app/cli.py: /readyz at 503 for the grace, then open requests get int(timeout) + 1 s
    # (uvicorn's graceful shutdown), then PUTs in flight get the timeout (Worker.stop).
    worst_case = grace + int(vtex_timeout) + 1 + vtex_timeout
    period = pod_spec(rendered(overlay))["terminationGracePeriodSeconds"]
    assert period > grace + vtex_timeout
    assert period > worst_case


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_accept_the_rendered_configuration(
    overlay: str, settings_of: Callable[[str], Settings]
) -> None:
    settings = settings_of(overlay)
    assert settings.log_format == "json"
    assert str(settings.vtex_timezone) == "America/Sao_Paulo"
    assert str(settings.carrier_default_timezone) == "America/Sao_Paulo"
    assert settings.worker is True
    assert settings.vtex_app_key is not None
    assert settings.vtex_app_token is not None
    # An empty admin token would not disable the admin routes: it must have a value.
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value()


def _secret_settings() -> set[str]:
    return {
        f"RELAY_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in repr(field.annotation)
    }


def _is_a_setting(variable: str) -> bool:
    parts = variable.removeprefix("RELAY_").lower().split("__")
    if len(parts) == 1:
        return parts[0] in Settings.model_fields
    if len(parts) == 3 and parts[0] == "carriers":
        return parts[1] in BUILT_IN and parts[2] in CarrierSettings.model_fields
    if len(parts) == 3 and parts[0] == "vtex_accounts":
        return parts[2] in AccountSettings.model_fields
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_in_the_secret_and_never_in_the_config_map(overlay: str) -> None:
    sources = env_sources(rendered(overlay))
    assert [kind for kind, _ in sources] == ["ConfigMap", "Secret"]
    (_, config), (_, secret) = sources
    assert not set(config) & set(secret), "a variable in both: one silently wins"
    for variable in {*config, *secret}:
        assert variable.startswith("RELAY_"), variable
        assert _is_a_setting(variable), f"{variable} is not a setting of the relay"
    secret_settings = _secret_settings()
    assert secret_settings == {
        "RELAY_VTEX_APP_KEY",
        "RELAY_VTEX_APP_TOKEN",
        "RELAY_ADMIN_TOKEN",
        "RELAY_VIEWER_TOKEN",
        "RELAY_VTEX_HOOK_SECRET",
    }
    assert secret_settings <= set(secret)
    for variable in config:
        assert not re.search(r"SECRET|TOKEN|KEY|PASSWORD|CLIENT_ID", variable), variable
    if "RELAY_DATABASE_URL" in config:
        assert "@" not in config["RELAY_DATABASE_URL"], "a database URL with a password"
    for variable in secret:
        match = re.fullmatch(r"RELAY_CARRIERS__(\w+?)__(SECRET|PUBLIC_KEY)", variable)
        if match:
            carrier = BUILT_IN[match.group(1).lower()]
            assert carrier.credential == match.group(2).lower(), f"{variable} is never read"


# --- the overlays ---------------------------------------------------------------------------


def test_single_runs_one_pod_on_sqlite_on_a_persistent_volume() -> None:
    resources = rendered("single")
    deployment = one(resources, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not find(resources, "HorizontalPodAutoscaler"), "SQLite cannot scale out"
    claim = one(resources, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"

    (volume_path,) = dockerfile().volumes
    mounts = {m["mountPath"]: m["name"] for m in relay_container(resources)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(resources)["volumes"]}
    assert volumes[mounts[volume_path]]["persistentVolumeClaim"] == {
        "claimName": claim["metadata"]["name"]
    }
    url = effective_env("single")["RELAY_DATABASE_URL"]
    assert url.startswith("sqlite:////"), url
    database = PurePosixPath(url.removeprefix("sqlite:///"))
    assert database.is_absolute()
    assert database.is_relative_to(volume_path)


def test_ha_runs_several_pods_on_postgresql() -> None:
    resources = rendered("ha")
    deployment = one(resources, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }

    autoscaler = one(resources, "HorizontalPodAutoscaler")["spec"]
    budget = one(resources, "PodDisruptionBudget")["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert autoscaler["minReplicas"] <= replicas <= autoscaler["maxReplicas"]
    assert autoscaler["minReplicas"] >= budget["minAvailable"] + 1, "a drain could never evict"
    assert autoscaler["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    assert "cpu" in relay_container(resources)["resources"]["requests"], "HPA needs a request"
    assert subset(budget["selector"]["matchLabels"], pod_labels)

    (preference,) = pod_spec(resources)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = preference["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert subset(term["labelSelector"]["matchLabels"], pod_labels)

    url = effective_env("ha")["RELAY_DATABASE_URL"]
    assert url.startswith("postgresql://"), url
    (_, config), (_, secret) = env_sources(resources)
    assert secret["RELAY_DATABASE_URL"] == url
    assert "RELAY_DATABASE_URL" not in config
    assert not find(resources, "PersistentVolumeClaim")
    mounts = {m["mountPath"] for m in relay_container(resources)["volumeMounts"]}
    assert not mounts & dockerfile().volumes, "no SQLite volume when the data is in PostgreSQL"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_find_the_pods(overlay: str) -> None:
    resources = rendered(overlay)
    deployment = one(resources, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert subset(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert subset(one(resources, "Service")["spec"]["selector"], pod_labels)
    assert subset(one(resources, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"], pod_labels)
