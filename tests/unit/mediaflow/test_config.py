import dataclasses
from pathlib import Path

import pytest

from mediaflow.config import Settings
from mediaflow.errors import ConfigError


def test_defaults_point_at_the_local_stack():
    settings = Settings.from_env({})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.s3.endpoint_url == "http://127.0.0.1:9000"
    assert settings.downloader.allow_private_addresses is False


def test_an_empty_s3_endpoint_means_aws_as_documented():
    settings = Settings.from_env({"MEDIAFLOW_S3_ENDPOINT_URL": ""})

    assert settings.s3.endpoint_url is None


def test_environment_variables_override_defaults_with_types():
    settings = Settings.from_env(
        {
            "MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
            "MEDIAFLOW_DOWNLOAD_CONCURRENCY": "32",
            "MEDIAFLOW_ALLOW_PRIVATE_ADDRESSES": "yes",
            "MEDIAFLOW_ALLOWED_HOSTS": "a.example, *.b.example",
            "MEDIAFLOW_WEBHOOK_PORT": "9999",
        }
    )
    assert settings.kafka.bootstrap_servers == "broker:9093"
    assert settings.downloader.concurrency == 32
    assert settings.downloader.allow_private_addresses is True
    assert settings.downloader.allowed_hosts == ("a.example", "*.b.example")
    assert settings.webhook_port == 9999


def test_librdkafka_properties_pass_through_by_prefix():
    settings = Settings.from_env(
        {
            "MEDIAFLOW_KAFKA_PROP_SECURITY_PROTOCOL": "SASL_SSL",
            "MEDIAFLOW_KAFKA_PROP_SASL_PASSWORD": "hunter2-secret",
        }
    )
    assert settings.kafka.properties == {
        "security.protocol": "SASL_SSL",
        "sasl.password": "hunter2-secret",
    }


def test_config_file_is_read_and_environment_wins(tmp_path: Path):
    config = tmp_path / "mediaflow.toml"
    config.write_text(
        's3_bucket = "from-file"\nwebhook_port = 7000\n'
        '[kafka_properties]\n"security.protocol" = "SSL"\n'
    )
    settings = Settings.from_env(
        {"MEDIAFLOW_CONFIG_FILE": str(config), "MEDIAFLOW_WEBHOOK_PORT": "7001"}
    )
    assert settings.s3.bucket == "from-file"
    assert settings.webhook_port == 7001
    assert settings.kafka.properties["security.protocol"] == "SSL"


def test_a_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="MEDIAFLOW_DOWNLOAD_CONCURRENCY"):
        Settings.from_env({"MEDIAFLOW_DOWNLOAD_CONCURRENCY": "many"})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MEDIAFLOW_WEBHOOK_LINGER_MS", "-1", "MEDIAFLOW_WEBHOOK_LINGER_MS=-1 must be at least 0"),
        ("MEDIAFLOW_WEBHOOK_PORT", "70000", "MEDIAFLOW_WEBHOOK_PORT=70000 must be at most 65535"),
        (
            "MEDIAFLOW_CONNECT_TIMEOUT_S",
            "0",
            "MEDIAFLOW_CONNECT_TIMEOUT_S=0 must be greater than 0",
        ),
        (
            "MEDIAFLOW_DOWNLOAD_CONCURRENCY",
            "0",
            "MEDIAFLOW_DOWNLOAD_CONCURRENCY=0 must be at least 1",
        ),
        (
            "MEDIAFLOW_S3_PART_SIZE",
            "1048576",
            "MEDIAFLOW_S3_PART_SIZE=1048576 must be at least 5242880",
        ),
    ],
)
def test_a_value_out_of_range_names_the_variable_and_the_limit(variable, value, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value) == message


def test_limits_hold_for_the_config_file_and_for_settings_built_in_code(tmp_path: Path):
    config = tmp_path / "mediaflow.toml"
    config.write_text("webhook_max_body_bytes = 0\n")
    with pytest.raises(ConfigError, match="MEDIAFLOW_WEBHOOK_MAX_BODY_BYTES=0 must be at least 1"):
        Settings.from_env({"MEDIAFLOW_CONFIG_FILE": str(config)})
    with pytest.raises(
        ConfigError, match="MEDIAFLOW_BATCH_MAX_INTERVAL_S=0 must be greater than 0"
    ):
        dataclasses.replace(Settings(), batch_max_interval_s=0)


def test_values_at_their_limits_are_accepted():
    settings = Settings.from_env(
        {
            "MEDIAFLOW_WEBHOOK_LINGER_MS": "0",
            "MEDIAFLOW_WEBHOOK_PORT": "65535",
            "MEDIAFLOW_S3_PART_SIZE": str(5 * 1024 * 1024),
        }
    )
    assert settings.webhook_linger_ms == 0
    assert settings.webhook_port == 65535
    assert settings.s3.part_size == 5 * 1024 * 1024


def test_a_body_budget_smaller_than_one_body_is_refused_naming_both_variables():
    # Such a body would be answered 503 on every retry, forever.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "MEDIAFLOW_WEBHOOK_MAX_BODY_BYTES": "2048",
                "MEDIAFLOW_WEBHOOK_BODY_BUDGET_BYTES": "1024",
            }
        )
    assert str(caught.value) == (
        "MEDIAFLOW_WEBHOOK_BODY_BUDGET_BYTES=1024 must be at least "
        "MEDIAFLOW_WEBHOOK_MAX_BODY_BYTES (2048)"
    )


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.from_env({"MEDIAFLOW_CONFIG_FILE": str(tmp_path / "nope.toml")})
