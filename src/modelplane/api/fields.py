"""Constrained field types shared by the kinds: names, commits, digests, URIs, durations, maps.

Each type carries its bounds (the API server's CEL cost estimator needs a maximum length on every
string, list and map) and its rule with a message that says what is expected. Rules that need a
clear message are CEL rules mirrored in Python (`validations.matches`); plain shape checks are
OpenAPI patterns, which the API server reports as "should match '<pattern>'".
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from modelplane.api.validations import Cel, cel_string, keys_match, matches

# Kubernetes object names (DNS subdomains, RFC 1123) and labels.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
STAGE = r"^[A-Za-z][-A-Za-z0-9]*$"
COMMIT = r"^[0-9a-f]{40}$"
DIGEST_ALGORITHM = r"^(md5|sha1|sha256|sha512):"
DIGEST = r"^(md5:[0-9a-f]{32}|sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$"
STORE_URI = r"^(s3|gs|file)://[^ ]+$"
REPOSITORY = r"^((https?|ssh|git|file)://[^ ]+|[A-Za-z0-9._-]+@[^ :/]+:[^ ]+)$"
PINNED_IMAGE = r"^[^@ ]+@sha256:[0-9a-f]{64}$"
# MLflow's rule for metric and param names: letters, digits, _ - . / and space.
METRIC_NAME = r"^[-A-Za-z0-9_./ ]{1,250}$"
# Go's time.ParseDuration format, restricted to the units that make sense for gates.
DURATION = r"^([0-9]+(ms|s|m|h))+$"

ModelName = Annotated[
    str,
    Field(min_length=1, max_length=63),
    matches(
        DNS_LABEL,
        "model name must be a DNS label: at most 63 lower-case letters, digits and '-', "
        "starting and ending with a letter or digit",
    ),
]
"""A model's name; it becomes part of object names (`<model>-v<version>`)."""

ObjectName = Annotated[
    str,
    Field(min_length=1, max_length=253),
    matches(
        DNS_SUBDOMAIN,
        "must name a Kubernetes object: lower-case letters, digits, '-' and '.' (DNS subdomain)",
    ),
]
"""The name of another object in the same namespace (a Run, an Experiment, a ModelVersion)."""

StageName = Annotated[
    str,
    Field(min_length=1, max_length=63),
    matches(
        STAGE,
        "stage name must start with a letter and hold only letters, digits and '-' "
        "(at most 63 characters)",
    ),
]
"""A stage such as Staging, Production or an alias such as champion."""

Version = Annotated[int, Field(ge=1, le=2_147_483_647)]
"""A model version number: 1, 2, 3, ... per model."""

Commit = Annotated[
    str,
    Field(max_length=40),
    matches(COMMIT, "commit must be a full 40-character lower-case hex git SHA"),
]

Digest = Annotated[
    str,
    Field(max_length=135),
    matches(DIGEST_ALGORITHM, "digest algorithm must be md5, sha1, sha256 or sha512"),
    # Guarded so that an unknown algorithm reports only the rule above.
    Cel(
        f"!self.matches({cel_string(DIGEST_ALGORITHM)}) || self.matches({cel_string(DIGEST)})",
        "digest must be <algorithm>:<lower-case hex> of the algorithm's length: "
        "md5 32, sha1 40, sha256 64, sha512 128",
        lambda value: re.search(DIGEST, value) is not None,
    ),
]
"""A content digest such as `sha256:<64 hex>`."""

StoreUri = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    matches(STORE_URI, "uri must use a known scheme: s3://, gs:// or file://"),
]
"""Where data or an artifact lives: an object-store prefix or a local path."""

RepositoryUri = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    matches(
        REPOSITORY,
        "repository must be an https://, http://, ssh://, git:// or file:// URL, "
        "or git's user@host:path form",
    ),
]
"""A git remote, as `git remote get-url origin` prints it."""

PinnedImage = Annotated[
    str,
    Field(min_length=1, max_length=512),
    matches(PINNED_IMAGE, "image must be pinned by digest: <name>@sha256:<64 hex>"),
]
"""A container image reference pinned by digest, so lineage names exactly one image."""

MetricName = Annotated[
    str,
    Field(min_length=1, max_length=250, pattern=METRIC_NAME),
]
"""A metric's name as the SDK logs it (`val_auc`, `loss/train`)."""

Duration = Annotated[str, Field(min_length=2, max_length=32, pattern=DURATION)]
"""A duration in Go's notation: `90s`, `10m`, `1h30m`."""

Description = Annotated[str, Field(max_length=4096)]

# Maps: names are checked by CEL (OpenAPI cannot constrain keys), values by length.
MAX_PARAMS = 256
MAX_TAGS = 64
MAX_METRICS = 256

ParamMap = Annotated[
    dict[str, Annotated[str, Field(max_length=500)]],
    Field(max_length=MAX_PARAMS),
    keys_match(
        METRIC_NAME, "param names must be 1-250 letters, digits, '_', '-', '.', '/' or spaces"
    ),
]
"""Run parameters, as strings (as MLflow stores them): {learning_rate: "0.05"}."""

TagMap = Annotated[
    dict[str, Annotated[str, Field(max_length=512)]],
    Field(max_length=MAX_TAGS),
    keys_match(
        METRIC_NAME, "tag names must be 1-250 letters, digits, '_', '-', '.', '/' or spaces"
    ),
]
"""Free-form labels for people and search: {team: growth}."""

Goal = Literal["maximize", "minimize"]

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """Parses a `Duration` (`10m`, `1h30m`, `500ms`) into a timedelta."""
    if re.fullmatch(DURATION, text) is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 90s, 10m, 1h30m)")
    seconds = sum(
        int(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
    )
    return timedelta(seconds=seconds)
