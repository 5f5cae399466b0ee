"""Config: one YAML file into typed models; unknown keys and bad values name their path."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.core.errors import ConfigError
from tests.harness import cli

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"


def test_no_file_means_safe_loopback_defaults() -> None:
    config = load_config(None, environ={})

    assert config.receivers.otlp_grpc.endpoint == "127.0.0.1:4317"
    assert config.receivers.otlp_http.endpoint == "127.0.0.1:4318"
    assert config.ops.endpoint == "127.0.0.1:9464"
    assert config.store.path == Path("data/driftwatch.db")
    assert config.store.retention == 7 * 86400


def test_every_section_is_read_with_units() -> None:
    config = load_config(TESTDATA / "full.yaml", environ={})

    assert config.receivers.otlp_grpc.max_body_size == 32 << 20
    assert config.receivers.otlp_http.enabled is False
    assert config.ingest.retry_after == 2.0
    assert config.ingest.join_window == 1800.0
    assert config.store.retention == 3 * 86400
    assert config.jobs.retention_interval == 600.0


def test_unknown_keys_and_bad_values_name_path_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(TESTDATA / "typo.yaml", environ={})

    message = str(err.value)
    assert "receivers.otlp_htttp: unknown key" in message
    assert "store.retention" in message and "'seven days'" in message


def test_environment_overrides_any_key() -> None:
    config = load_config(TESTDATA / "full.yaml", environ={
        "DRIFTWATCH_STORE__RETENTION": "1d",
        "DRIFTWATCH_RECEIVERS__OTLP_HTTP__ENABLED": "true",
        "DRIFTWATCH_INGEST__QUEUE_MAX_ITEMS": "7",
    })

    assert config.store.retention == 86400
    assert config.receivers.otlp_http.enabled is True
    assert config.ingest.queue_max_items == 7


def test_environment_override_of_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"store\.colour: unknown key"):
        load_config(None, environ={"DRIFTWATCH_STORE__COLOUR": "blue"})


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.store.retention = 1  # type: ignore[misc]


@pytest.mark.parametrize("text, message", [
    ("receivers: {otlp_grpc: {endpoint: 'localhost'}}", "receivers.otlp_grpc.endpoint"),
    ("ops: {auth: {bearer_token: short}}", "ops.auth.bearer_token"),
    ("receivers: {otlp_http: {tls: {cert_file: /nope.pem, key_file: /nope.key}}}",
     "cert_file: no such file"),
    ("log: {level: chatty}", "log.level"),
    ("ingest: {workers: many}", "ingest.workers: expected 'auto' or a number of processes "
                                "from 0 to 64, got: 'many'"),
    ("ingest: {workers: -1}", "ingest.workers: expected 'auto'"),
    ("- just\n- a list", "expected a mapping"),
    ("store: [", "not valid YAML"),
])
def test_invalid_values_are_refused_with_their_path(tmp_path: Path, text: str,
                                                     message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(path, environ={})


def test_validate_command_accepts_a_good_file_and_refuses_a_bad_one() -> None:
    good = cli("validate", str(TESTDATA / "full.yaml"))
    assert good.stdout.strip().endswith("full.yaml: ok")

    bad = cli("validate", str(TESTDATA / "typo.yaml"), check=False)
    assert bad.returncode == 2
    assert "receivers.otlp_htttp: unknown key" in bad.stderr


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "ops:\n"
        "  endpoint: 127.0.0.1:9464\n"
        "  auth: {bearer_token_file: /run/secrets/ops}\n"
        "store:\n"
        "  path: ./data/driftwatch.db\n"
        "ops:\n"  # would silently replace the first block, auth and all
        "  endpoint: 127.0.0.1:9465\n")

    done = cli("validate", str(path), check=False)

    assert done.returncode == 2
    assert "line 6: duplicate key 'ops' (first at line 1)" in done.stderr


def test_a_key_given_twice_deep_inside_a_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("receivers:\n  otlp_http:\n    enabled: true\n    enabled: false\n")
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'enabled' \(first at line 3\)"):
        load_config(path, environ={})


def test_yaml_merge_keys_still_override_as_yaml_says(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("receivers:\n"
                    "  otlp_grpc: &loopback {endpoint: '127.0.0.1:5317', enabled: true}\n"
                    "  otlp_http:\n    <<: *loopback\n    endpoint: '127.0.0.1:5318'\n")
    config = load_config(path, environ={})
    assert config.receivers.otlp_http.endpoint == "127.0.0.1:5318"
