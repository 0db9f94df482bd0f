"""No secret setting shows: not in ``config show``, not in a repr, not in a log line."""

import json

import pytest

from mediaflow.cli import main as cli_main
from mediaflow.config import Secret, Settings
from mediaflow.config_secrets import masked, secret_values


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
