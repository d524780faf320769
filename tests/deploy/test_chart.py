"""The Helm chart, linted and rendered by a real helm 3 with its default values and each value
set in values/, every manifest validated against Kubernetes 1.29's schemas, and the pods'
environment resolved and read by the application's own settings loader."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url
from yamllint import linter
from yamllint.config import YamlLintConfig

from tenantry.config import PRODUCTION_REQUIRED, ConfigError, Settings, load_settings
from tests.deploy.conftest import (
    CHART,
    VALUE_SETS,
    VALUES_DIR,
    image_environment,
    known_env_names,
)

Manifest = dict[str, Any]
KUBERNETES_VERSION = "1.29"
# Custom resources: kubernetes-validate ships only the built-in kinds' schemas.
CRD_KINDS = {"ServiceMonitor"}
VALUE_SET_IDS = ["defaults"] + [path.stem for path in VALUE_SETS]


def _helm(helm: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True)


def _render(helm: Path, *args: str | Path) -> list[Manifest]:
    result = _helm(helm, "template", "media", CHART, "--namespace", "tenantry", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _values_args(value_set: str) -> list[str | Path]:
    return [] if value_set == "defaults" else ["-f", VALUES_DIR / f"{value_set}.yaml"]


@pytest.fixture(scope="module", params=VALUE_SET_IDS)
def value_set(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def rendered(helm: Path, value_set: str) -> list[Manifest]:
    return _render(helm, *_values_args(value_set))


def _one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} manifests"
    return found[0]


def _pod_specs(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    """The pod specs that run tenantry: the API's and the migration Job's."""
    specs = {"Deployment": _one(manifests, "Deployment")["spec"]["template"]["spec"]}
    jobs = [m for m in manifests if m["kind"] == "Job"]
    if jobs:
        specs["Job"] = jobs[0]["spec"]["template"]["spec"]
    return specs


def _container_env(manifests: list[Manifest], container: dict[str, Any]) -> dict[str, str | None]:
    """The container's environment, envFrom resolved. A secret value is None when the Secret is
    not rendered (existingSecret); a key the rendered Secret lacks is left out when optional and
    fails when required."""
    by_name = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        config_map = by_name[("ConfigMap", source["configMapRef"]["name"])]
        env.update(config_map["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        ref = variable["valueFrom"]["secretKeyRef"]
        secret = by_name.get(("Secret", ref["name"]))
        if secret is None:
            env[variable["name"]] = None
        elif ref["key"] in secret["stringData"]:
            env[variable["name"]] = secret["stringData"][ref["key"]]
        else:
            assert ref.get("optional"), f"{variable['name']}: Secret has no key {ref['key']}"
    return env


def _settings(manifests: list[Manifest], kind: str) -> Settings:
    container = _pod_specs(manifests)[kind]["containers"][0]
    env = _container_env(manifests, container)
    resolved = {name: value for name, value in env.items() if value is not None}
    return load_settings({**image_environment(), **resolved}, dotenv=Path("/nonexistent"))


# -- helm itself ------------------------------------------------------------------------------------


def test_helm_lint(helm: Path, value_set: str) -> None:
    result = _helm(helm, "lint", "--strict", CHART, *_values_args(value_set))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (["--set", "ingress.enabeld=true"], "enabeld"),
        (["--set", "replicaCount=two"], "replicaCount"),
        (["--set", "replicas=3"], "replicas"),
        (["--set", "settings.LOG_LEVEL=DEBUG"], "LOG_LEVEL"),
        (["--set", "server.workers=0"], "workers"),
        (["--set-string", "shutdown.graceSeconds=30"], "graceSeconds"),
        (["--set", "s3.endpointUrl=minio:9000"], "endpointUrl"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, values: list[str], complaint: str) -> None:
    result = _helm(helm, "template", "media", CHART, *values)
    assert result.returncode != 0, f"{values} rendered"
    assert complaint in result.stderr


# -- what every value set renders -------------------------------------------------------------------


def test_manifests_match_the_kubernetes_schemas(rendered: list[Manifest]) -> None:
    for manifest in rendered:
        if manifest["kind"] in CRD_KINDS:
            # Asserted, not assumed: once the package ships the CRD's schema, validate it.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_rendered_yaml_has_no_duplicate_keys(helm: Path, value_set: str) -> None:
    # PyYAML and the API server both keep the last of two equal keys, silently.
    output = _helm(helm, "template", "media", CHART, *_values_args(value_set)).stdout
    problems = list(linter.run(output, YamlLintConfig("rules: {key-duplicates: enable}")))
    assert not problems, problems


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_provide_every_production_requirement(rendered: list[Manifest], kind: str) -> None:
    container = _pod_specs(rendered)[kind]["containers"][0]
    env = _container_env(rendered, container)
    missing = [name for name in PRODUCTION_REQUIRED if name not in env]
    assert not missing, f"{kind} lacks {missing}"
    unknown = set(env) - known_env_names()
    assert not unknown, f"{kind} sets names the application never reads: {unknown}"


def test_deployment_and_job_share_one_environment(rendered: list[Manifest]) -> None:
    specs = _pod_specs(rendered)
    environments = [
        (spec["containers"][0].get("envFrom"), spec["containers"][0].get("env"))
        for spec in specs.values()
    ]
    assert environments[0] == environments[-1]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_locked_down(rendered: list[Manifest], kind: str) -> None:
    spec = _pod_specs(rendered)[kind]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    container = spec["containers"][0]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # The only writable paths: /tmp and the image's data dir, both emptyDirs.
    empty_dirs = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", image_environment()["TENANTRY_DATA_DIR"]}
    assert set(mounts.values()) <= empty_dirs


def test_probes_and_shutdown(rendered: list[Manifest]) -> None:
    pod = _pod_specs(rendered)["Deployment"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    settings = _settings_or_defaults(rendered)
    budget = int(sleep[1]) + settings.shutdown_drain_seconds + settings.shutdown_grace_seconds
    assert pod["terminationGracePeriodSeconds"] > budget


def _settings_or_defaults(rendered: list[Manifest]) -> Settings:
    """The Deployment's settings without the production check (the defaults are placeholders)."""
    container = _pod_specs(rendered)["Deployment"]["containers"][0]
    env = {k: v for k, v in _container_env(rendered, container).items() if v is not None}
    return load_settings({**env, "TENANTRY_ENV": "dev"}, dotenv=Path("/nonexistent"))


def test_config_and_secret_exist_before_the_migration_job(rendered: list[Manifest]) -> None:
    job = _one(rendered, "Job")["metadata"]["annotations"]
    assert set(job["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "hook-succeeded" in job["helm.sh/hook-delete-policy"]
    for manifest in rendered:
        if manifest["kind"] in {"ConfigMap", "Secret"}:
            hooks = manifest["metadata"]["annotations"]
            assert {"pre-install", "pre-upgrade"} <= set(hooks["helm.sh/hook"].split(","))
            assert int(hooks["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])


def test_service_selects_the_api_pods_only(rendered: list[Manifest]) -> None:
    selector = _one(rendered, "Service")["spec"]["selector"]
    deployment = _one(rendered, "Deployment")["spec"]
    job = _one(rendered, "Job")["spec"]
    assert selector == deployment["selector"]["matchLabels"]
    assert selector.items() <= deployment["template"]["metadata"]["labels"].items()
    assert not selector.items() <= job["template"]["metadata"]["labels"].items()


# -- particular value sets --------------------------------------------------------------------------


def test_defaults_are_refused_by_production_naming_each_placeholder(helm: Path) -> None:
    rendered = _render(helm)
    for kind in ("Deployment", "Job"):
        with pytest.raises(ConfigError) as refused:
            _settings(rendered, kind)
        for name in ("TENANTRY_JWT_SECRET", "TENANTRY_DB_APP_PASSWORD", "TENANTRY_BASE_DOMAIN"):
            assert name in str(refused.value)


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_minimal_values_are_a_complete_production_configuration(helm: Path, kind: str) -> None:
    settings = _settings(_render(helm, *_values_args("minimal")), kind)
    assert settings.is_production
    assert settings.base_domain == "media.example.com"
    assert settings.database_url == (
        "postgresql://postgres:db-admin-password@db.example.internal:5432/tenantry"
    )
    assert settings.s3 is not None
    assert settings.s3.bucket == "tenantry"


def test_database_parts_make_a_url_that_parses_back(helm: Path) -> None:
    settings = _settings(_render(helm, *_values_args("external-services")), "Deployment")
    assert settings.database_url is not None
    url = make_url(settings.database_url)
    assert (url.username, url.password) == ("citus_admin", "p@ss/word with spaces")
    assert (url.host, url.port, url.database) == (
        "pgbouncer.databases.svc.cluster.local",
        6432,
        "tenantry",
    )
    assert settings.s3 is not None
    assert settings.s3.endpoint_url == "http://minio.storage.svc.cluster.local:9000"
    assert settings.s3.secret_access_key == "tenantry-secret-key"
    assert settings.smtp_password == "smtp-test-password"
    assert settings.server_workers == 4


def test_existing_secret_replaces_the_chart_secret(helm: Path) -> None:
    rendered = _render(helm, *_values_args("production"))
    assert not [m for m in rendered if m["kind"] == "Secret"]
    for spec in _pod_specs(rendered).values():
        refs = [v["valueFrom"]["secretKeyRef"] for v in spec["containers"][0]["env"]]
        assert {ref["name"] for ref in refs} == {"tenantry-credentials"}
        required = {ref["key"] for ref in refs if not ref.get("optional")}
        assert set(PRODUCTION_REQUIRED) - {"TENANTRY_BASE_DOMAIN"} <= required


def test_ingress_serves_the_wildcard_and_custom_domains_with_tls(helm: Path) -> None:
    ingress = _one(_render(helm, *_values_args("production")), "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    hosts = [rule["host"] for rule in ingress["rules"]]
    assert hosts == ["*.media.example.com", "media.pack-training.example", "learn.acme.example"]
    assert ingress["tls"][0] == {
        "secretName": "tenantry-wildcard-tls",
        "hosts": ["*.media.example.com"],
    }


def test_autoscaling_owns_the_replica_count(helm: Path) -> None:
    rendered = _render(helm, *_values_args("production"))
    assert "replicas" not in _one(rendered, "Deployment")["spec"]
    hpa = _one(rendered, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == _one(rendered, "Deployment")["metadata"]["name"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert {metric["resource"]["name"] for metric in hpa["metrics"]} == {"cpu", "memory"}


def test_service_monitor_scrapes_the_service_with_the_token(helm: Path) -> None:
    rendered = _render(helm, *_values_args("production"))
    monitor = _one(rendered, "ServiceMonitor")
    service = _one(rendered, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["credentials"] == {
        "name": "tenantry-credentials",
        "key": "TENANTRY_METRICS_TOKEN",
    }


def test_service_monitor_is_off_by_default(helm: Path) -> None:
    assert not [m for m in _render(helm) if m["kind"] == "ServiceMonitor"]


def test_a_changed_setting_rolls_the_pods(helm: Path) -> None:
    def checksums(*args: str) -> dict[str, str]:
        deployment = _one(_render(helm, *args), "Deployment")
        annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations

    before = checksums()
    assert (
        checksums("--set", "settings.TENANTRY_LOG_LEVEL=DEBUG")["checksum/config"]
        != before["checksum/config"]
    )
    assert (
        checksums("--set", "secrets.jwtSecret=" + "x" * 40)["checksum/secret"]
        != before["checksum/secret"]
    )


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every value the schema names, down to the objects it spells out inline."""
    paths = []
    for name, spec in schema.get("properties", {}).items():
        path = prefix + name
        paths.extend(_schema_paths(spec, path + ".") if "properties" in spec else [path])
    return paths


def test_every_value_is_in_the_schema_and_the_readme() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    readme = (CHART / "README.md").read_text()
    undocumented = [path for path in _schema_paths(schema) if f"`{path}`" not in readme]
    assert not undocumented, f"charts/tenantry/README.md lacks {undocumented}"
    # And the schema knows every default (additionalProperties: false does the rest).
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) == set(schema["properties"])
