"""StoreConfig from the environment, and the botocore settings built from it."""

from __future__ import annotations

import pytest

from modelplane.store import InvalidStoreConfig, StoreConfig
from modelplane.store.s3 import botocore_config

MINIO = {
    "MODELPLANE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "AWS_ACCESS_KEY_ID": "minio",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
}


def test_reads_endpoint_credentials_and_region() -> None:
    config = StoreConfig.from_env({**MINIO, "AWS_REGION": "eu-west-1"})
    assert config.endpoint_url == "http://127.0.0.1:9000"
    assert config.access_key_id == "minio"
    assert config.secret_access_key == MINIO["AWS_SECRET_ACCESS_KEY"]
    assert config.region == "eu-west-1"


def test_defaults_without_environment() -> None:
    config = StoreConfig.from_env({})
    assert config == StoreConfig()
    assert config.endpoint_url is None
    assert config.access_key_id is None
    assert config.region == "us-east-1"
    assert config.effective_addressing_style == "auto"


def test_falls_back_to_aws_default_region() -> None:
    assert StoreConfig.from_env({"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"


def test_uses_path_style_for_an_s3_compatible_endpoint() -> None:
    assert StoreConfig.from_env(MINIO).effective_addressing_style == "path"
    env = {**MINIO, "MODELPLANE_S3_ADDRESSING_STYLE": "virtual"}
    assert StoreConfig.from_env(env).effective_addressing_style == "virtual"


def test_empty_variables_count_as_unset() -> None:
    config = StoreConfig.from_env({"MODELPLANE_S3_ENDPOINT_URL": "", "AWS_ACCESS_KEY_ID": " "})
    assert config.endpoint_url is None
    assert config.access_key_id is None


def test_reads_timeouts_and_attempts() -> None:
    config = StoreConfig.from_env(
        {
            "MODELPLANE_S3_CONNECT_TIMEOUT": "1.5",
            "MODELPLANE_S3_READ_TIMEOUT": "10",
            "MODELPLANE_S3_MAX_ATTEMPTS": "5",
        }
    )
    assert (config.connect_timeout, config.read_timeout, config.max_attempts) == (1.5, 10.0, 5)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"MODELPLANE_S3_CONNECT_TIMEOUT": "soon"}, "must be a float"),
        ({"MODELPLANE_S3_MAX_ATTEMPTS": "2.5"}, "must be a int"),
        ({"MODELPLANE_S3_MAX_ATTEMPTS": "0"}, "at least 1"),
        ({"MODELPLANE_S3_READ_TIMEOUT": "-1"}, "positive"),
        ({"MODELPLANE_S3_ENDPOINT_URL": "minio:9000"}, "http:// or https://"),
        ({"MODELPLANE_S3_ADDRESSING_STYLE": "dns"}, "path, virtual, auto"),
        ({"AWS_ACCESS_KEY_ID": "only-the-id"}, "both"),
    ],
)
def test_rejects_unusable_settings(env: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidStoreConfig, match=match):
        StoreConfig.from_env(env)


def test_secrets_stay_out_of_repr() -> None:
    config = StoreConfig.from_env({**MINIO, "AWS_SESSION_TOKEN": "t0ken-value"})
    assert "s3cr3t-value" not in repr(config)
    assert "t0ken-value" not in repr(config)
    assert "minio" in repr(config)


def test_botocore_config_bounds_timeouts_and_retries() -> None:
    # botocore sets its options as instance attributes, which its stubs do not declare.
    options = vars(botocore_config(StoreConfig.from_env(MINIO)))
    assert options["connect_timeout"] == 5.0
    assert options["read_timeout"] == 30.0
    assert options["retries"] == {"max_attempts": 3, "mode": "standard"}
    assert options["s3"] == {"addressing_style": "path"}
    assert options["region_name"] == "us-east-1"
