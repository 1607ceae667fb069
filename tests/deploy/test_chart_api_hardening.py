"""The chart's api: its connection bounds, the trusted proxies, the abuse limits, the deadline
bounds, and the JWT key from an existing Secret with a previous key for rotation (rendered with
the pinned helm)."""

from __future__ import annotations

import itertools

import pytest

from support.chart import env_of, find, render, template

pytestmark = pytest.mark.stack


def _api_container(*values: str) -> dict[str, object]:
    (container,) = find(render(*values), "Deployment", "genvid-api")["spec"]["template"]["spec"][
        "containers"
    ]
    return container


def test_the_api_bounds_its_connections_and_trusts_only_the_proxies() -> None:
    args = _api_container()["command"]
    assert isinstance(args, list)
    pairs = dict(itertools.pairwise(args))
    assert pairs["--limit-concurrency"] == "1000"
    assert pairs["--backlog"] == "2048"
    assert pairs["--timeout-keep-alive"] == "5"
    assert pairs["--forwarded-allow-ips"] == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    refused = template("--set=api.forwardedAllowIps=*")
    assert refused.returncode != 0 and "forwardedAllowIps" in refused.stderr


def test_every_limit_reaches_the_api() -> None:
    env = env_of(_api_container("--set=api.limits.loginPerMinutePerIp=7"))
    assert env["GENVID_RATE_LIMITS"] == "true"
    assert env["GENVID_LOGIN_PER_MINUTE_PER_IP"] == "7"
    for name in (
        "GENVID_LOGIN_PER_MINUTE_PER_ACCOUNT", "GENVID_LOGIN_PER_HOUR_PER_ACCOUNT",
        "GENVID_REGISTER_PER_HOUR_PER_IP", "GENVID_REFRESH_PER_MINUTE_PER_IP",
        "GENVID_REFRESH_PER_MINUTE_PER_USER", "GENVID_MAX_BODY_BYTES",
        "GENVID_SSE_STREAMS_PER_USER", "GENVID_SSE_MAX_REPLAY_EVENTS",
        "GENVID_SSE_RECHECK_SECONDS", "GENVID_SSE_QUEUE_EVENTS",
    ):  # fmt: skip
        assert env[name], name


def test_the_garbage_collector_threshold_reaches_the_api() -> None:
    assert env_of(_api_container())["GENVID_GC_YOUNG_THRESHOLD"] == "50000"
    chosen = env_of(_api_container("--set=api.config.gcYoungThreshold=0"))
    assert chosen["GENVID_GC_YOUNG_THRESHOLD"] == "0"


def test_the_deadline_bounds_reach_the_api() -> None:
    chosen = env_of(
        _api_container("--set=api.config.minDeadlineSeconds=30,api.config.maxDeadlineSeconds=600")
    )
    assert (chosen["GENVID_MIN_DEADLINE_SECONDS"], chosen["GENVID_MAX_DEADLINE_SECONDS"]) == (
        "30", "600",
    )  # fmt: skip
    refused = template("--set=api.config.minDeadlineSeconds=601,api.config.maxDeadlineSeconds=600")
    assert refused.returncode != 0 and "minDeadlineSeconds (601)" in refused.stderr


def test_an_existing_secret_and_a_previous_key_for_rotation() -> None:
    docs = render(
        "--set=api.jwt.existingSecret=my-jwt,api.jwt.existingSecretKey=current",
        "--set-string=api.jwt.keyId=2026,api.jwt.previous.keyId=2025",
        "--set=api.jwt.previous.existingSecretKey=old",
        "--set=api.jwt.previous.until=2026-12-31T00:00:00Z",
    )
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "genvid-api"]
    (container,) = find(docs, "Deployment", "genvid-api")["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["GENVID_JWT_SECRET"] == {"secretKeyRef": {"name": "my-jwt", "key": "current"}}
    assert env["GENVID_JWT_KEY_ID"] == "2026"
    assert env["GENVID_JWT_PREVIOUS_SECRET"] == {"secretKeyRef": {"name": "my-jwt", "key": "old"}}
    assert env["GENVID_JWT_PREVIOUS_KEY_ID"] == "2025"
    assert env["GENVID_JWT_PREVIOUS_KEY_UNTIL"] == "2026-12-31T00:00:00Z"
    plain = env_of(_api_container())
    assert plain["GENVID_JWT_KEY_ID"] == "1"
    assert "GENVID_JWT_PREVIOUS_SECRET" not in plain


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set=api.jwt.previous.existingSecretKey=old"], "needs api.jwt.existingSecret"),
        (
            [
                "--set=api.jwt.existingSecret=my-jwt,api.jwt.previous.existingSecretKey=old",
                "--set-string=api.jwt.previous.keyId=1",
            ],
            "must be set and differ",
        ),
        (["--set=api.jwt.previous.until=next-week"], "until"),
    ],
)
def test_a_previous_key_without_its_parts_fails_clearly(values: list[str], message: str) -> None:
    result = template(*values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
