import dataclasses
import json
from pathlib import Path

import pytest

from mediaflow.cli import main as cli_main
from mediaflow.config import Secret, Settings, masked, secret_values
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


def test_masked_configuration_shows_no_secret():
    settings = Settings.from_env(
        {
            "MEDIAFLOW_S3_SECRET_KEY": "s3-secret-value",
            "MEDIAFLOW_S3_ACCESS_KEY": "s3-access-value",
            "MEDIAFLOW_API_TOKEN": "api-token-value",
            "MEDIAFLOW_KAFKA_PROP_SASL_PASSWORD": "sasl-password-value",
            "MEDIAFLOW_PROJECTION_DB_URL": "postgresql://user:db-password@host/db",
        }
    )
    rendered = repr(masked(settings))
    for secret in (
        "s3-secret-value",
        "s3-access-value",
        "api-token-value",
        "sasl-password-value",
        "db-password",
    ):
        assert secret not in rendered
    assert masked(settings)["s3"]["bucket"] == "mediaflow-media"


def test_secret_never_shows_in_repr_or_str():
    secret = Secret("very-secret")
    assert "very-secret" not in repr(secret)
    assert "very-secret" not in str(secret)
    assert "very-secret" not in repr(Settings.from_env({"MEDIAFLOW_API_TOKEN": "very-secret"}))
    assert secret.reveal() == "very-secret"


@pytest.mark.parametrize(
    ("variable", "url", "secret", "shown"),
    [
        (
            "MEDIAFLOW_PROJECTION_DB_URL",
            "postgresql://mediaflow:p@ss@db:5432/media",
            "ss@",
            "postgresql://****@db:5432/media",
        ),
        (
            "MEDIAFLOW_PROJECTION_DB_URL",
            "postgresql://mediaflow:pa:ss@db/media",
            "pa:ss",
            "postgresql://****@db/media",
        ),
        (
            "MEDIAFLOW_PROJECTION_DB_URL",
            "postgresql://mediaflow:p?a#s@db/media",
            "a#s",
            "postgresql://****@db/media",
        ),
        (
            "MEDIAFLOW_PROJECTION_DB_URL",
            "postgresql://db/media?password=qs-db-pass&sslmode=require",
            "qs-db-pass",
            "postgresql://db/media?****",
        ),
        (
            "MEDIAFLOW_WAPI_BASE_URL",
            "https://api.w-api.app/v1?token=qs-secret-tok",
            "qs-secret-tok",
            "https://api.w-api.app/v1?****",
        ),
        (
            "MEDIAFLOW_CDN_BASE_URL",
            "https://tok3n-as-user@cdn.example/#frag-secret",
            "tok3n",
            "https://****@cdn.example/#****",
        ),
    ],
)
def test_a_url_setting_is_shown_without_its_user_info_and_query_values(
    variable: str, url: str, secret: str, shown: str
) -> None:
    rendered = json.dumps(masked(Settings.from_env({variable: url})))
    assert secret not in rendered
    assert shown in rendered


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        (
            "SASL_JAAS_CONFIG",
            'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" '
            'password="jaas-pw-value";',
        ),
        ("SASL_OAUTHBEARER_CONFIG", "principal=svc clientSecret=oauth-secret-value"),
        ("SASL_OAUTHBEARER_CLIENT_SECRET", "oauth-client-secret-value"),
        ("SSL_KEY_PASSWORD", "ssl-key-password-value"),
        ("SSL_KEY_PEM", "-----BEGIN PRIVATE KEY-----pem-value"),
        ("SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "https://u:oauth-url-pw@idp.example/token"),
    ],
)
def test_a_secret_kafka_property_is_masked_whole(prop: str, value: str) -> None:
    settings = Settings.from_env({f"MEDIAFLOW_KAFKA_PROP_{prop}": value})
    name = prop.lower().replace("_", ".")
    assert masked(settings)["kafka"]["properties"][name] == "****"


def test_a_plain_kafka_property_is_shown_and_a_url_in_one_is_masked() -> None:
    settings = Settings.from_env(
        {
            "MEDIAFLOW_KAFKA_PROP_SECURITY_PROTOCOL": "SASL_SSL",
            "MEDIAFLOW_KAFKA_PROP_CLIENT_RACK": "https://u:rack-url-pw@x.example/",
        }
    )
    properties = masked(settings)["kafka"]["properties"]
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["client.rack"] == "https://****@x.example/"


def test_every_secret_value_of_the_settings_is_listed_for_the_log_redactor() -> None:
    settings = Settings.from_env(
        {
            "MEDIAFLOW_S3_SECRET_KEY": "s3-secret-value",
            "MEDIAFLOW_API_TOKEN": "api-token-value",
            "MEDIAFLOW_KAFKA_PROP_SASL_PASSWORD": "sasl-password-value",
            "MEDIAFLOW_KAFKA_PROP_SASL_JAAS_CONFIG": "jaas-config-value",
            "MEDIAFLOW_PROJECTION_DB_URL": "postgresql://u:db-p@ssword@db/media",
            "MEDIAFLOW_WAPI_BASE_URL": "https://api.w-api.app/?token=qs-token-value",
        }
    )
    assert {
        "s3-secret-value",
        "api-token-value",
        "sasl-password-value",
        "jaas-config-value",
        "db-p@ssword",
        "qs-token-value",
    } <= set(secret_values(settings))


def test_config_show_prints_no_part_of_any_secret(
    log_lines: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # log_lines: the CLI logs to the captured stderr; the fixture points logging back after.
    environ = {
        "MEDIAFLOW_PROJECTION_DB_URL": "postgresql://mediaflow:p@ss@db:5432/media",
        "MEDIAFLOW_KAFKA_PROP_SASL_JAAS_CONFIG": 'PlainLoginModule required password="jaas-pw";',
        "MEDIAFLOW_WAPI_BASE_URL": "https://api.w-api.app/?token=qs-secret-tok",
        "MEDIAFLOW_KAFKA_PROP_SASL_PASSWORD": "sasl-pw-value",
        "MEDIAFLOW_API_TOKEN": "api-token-value",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["config", "show"]) == 0
    out = capsys.readouterr().out
    for part in ("p@ss", "ss@db", "jaas-pw", "qs-secret-tok", "sasl-pw-value", "api-token-value"):
        assert part not in out
    assert json.loads(out)["projection_db_url"] == "postgresql://****@db:5432/media"
