"""The VideoGeneration CRD as the real apiserver enforces it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from genvid_contracts.resource import DEFAULT_MODEL, OWNER_NAME_ANNOTATION
from support.kube import Kubectl

pytestmark = pytest.mark.stack


def video_generation(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "genvid.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": name},
        "spec": {"prompt": "a red fox running through snow", "owner": "user-1", **spec},
    }


def apply(kubectl: Kubectl, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kubectl("create", "-f", "-", input=json.dumps(obj))


def test_valid_object_is_accepted_with_defaults(kubectl: Kubectl) -> None:
    assert apply(kubectl, video_generation("fox")).returncode == 0
    stored = json.loads(kubectl("get", "vg", "fox", "-o", "json", check=True).stdout)
    assert stored["spec"]["durationSeconds"] == 4
    assert stored["spec"]["aspectRatio"] == "16:9"
    assert stored["spec"]["model"] == DEFAULT_MODEL
    assert stored["spec"]["cancel"] is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"prompt": ""}, "spec.prompt: Invalid value"),
        ({"prompt": "   "}, "prompt must not be blank"),
        ({"prompt": "bell\u0007"}, "prompt must not contain control characters"),
        ({"durationSeconds": 0}, "spec.durationSeconds: Invalid value: 0"),
        ({"durationSeconds": 30}, "spec.durationSeconds: Invalid value: 30"),
        ({"aspectRatio": "4:3"}, 'spec.aspectRatio: Unsupported value: "4:3"'),
        ({"model": "Not A Model"}, "spec.model: Invalid value"),
    ],
)
def test_invalid_objects_are_rejected_with_the_apiservers_message(
    kubectl: Kubectl, spec: dict[str, Any], message: str
) -> None:
    result = apply(kubectl, video_generation("bad", **spec))
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert message in result.stderr


def patch_status(
    kubectl: Kubectl, name: str, status: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """A merge patch of the status subresource, as the operator writes status."""
    return kubectl(
        "patch", "vg", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_status_patch_with_unknown_phase_is_rejected(kubectl: Kubectl) -> None:
    apply(kubectl, video_generation("phases"))
    ok = patch_status(kubectl, "phases", {"phase": "RUNNING", "attempts": 1})
    assert ok.returncode == 0, ok.stderr
    bad = patch_status(kubectl, "phases", {"phase": "Exploded"})
    assert bad.returncode != 0
    assert 'status.phase: Unsupported value: "Exploded"' in bad.stderr
    phase = kubectl("get", "vg", "phases", "-o", "jsonpath={.status.phase}", check=True).stdout
    assert phase == "RUNNING"


def test_spec_is_immutable_except_cancel(kubectl: Kubectl) -> None:
    apply(kubectl, video_generation("frozen"))
    changed = kubectl(
        "patch", "vg", "frozen", "--type=merge", "-p", '{"spec": {"prompt": "something else"}}'
    )
    assert changed.returncode != 0
    assert "spec is immutable except for spec.cancel" in changed.stderr
    cancel = kubectl("patch", "vg", "frozen", "--type=merge", "-p", '{"spec": {"cancel": true}}')
    assert cancel.returncode == 0, cancel.stderr
    resume = kubectl("patch", "vg", "frozen", "--type=merge", "-p", '{"spec": {"cancel": false}}')
    assert resume.returncode != 0
    assert "a canceled generation cannot be resumed" in resume.stderr


def test_the_deadline_is_a_time_and_immutable_like_the_rest_of_the_spec(kubectl: Kubectl) -> None:
    bad = apply(kubectl, video_generation("not-a-time", deadline="in ten minutes"))
    assert bad.returncode != 0
    assert "spec.deadline" in bad.stderr
    assert apply(kubectl, video_generation("due", deadline="2026-11-24T08:10:00Z")).returncode == 0
    assert apply(kubectl, video_generation("undue")).returncode == 0
    for name, patch in [
        ("due", {"deadline": "2026-11-24T09:10:00Z"}),  # moved
        ("due", {"deadline": None}),  # removed
        ("undue", {"deadline": "2026-11-24T09:10:00Z"}),  # added
    ]:
        changed = kubectl("patch", "vg", name, "--type=merge", "-p", json.dumps({"spec": patch}))
        assert changed.returncode != 0, (name, patch)
        assert "spec is immutable except for spec.cancel" in changed.stderr
    cancel = kubectl("patch", "vg", "due", "--type=merge", "-p", '{"spec": {"cancel": true}}')
    assert cancel.returncode == 0, cancel.stderr
    kept = kubectl("get", "vg", "due", "-o", "jsonpath={.spec.deadline}", check=True).stdout
    assert kept == "2026-11-24T08:10:00Z"


def test_kubectl_get_prints_the_printer_columns(kubectl: Kubectl) -> None:
    named = video_generation("columns", durationSeconds=6, deadline="2026-11-24T08:10:00Z")
    # The api annotates the owner's username (genvid_api.resources); the id stays in spec.
    named["metadata"]["annotations"] = {OWNER_NAME_ANNOTATION: "user-1"}
    apply(kubectl, named)
    kubectl(
        "patch",
        "vg",
        "columns",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "SUCCEEDED", "estimatedCostUSD": "0.6"}}),
        check=True,
    )
    table = kubectl("get", "videogenerations", check=True).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "PHASE",
        "REASON",
        "MODEL",
        "SECONDS",
        "COST",
        "OWNER",
        "DEADLINE",
        "AGE",
    ]
    row = table[1].split()
    assert row[:2] == ["columns", "SUCCEEDED"]
    assert row[2:6] == ["veo-3.0-fast-generate-001", "6", "0.6", "user-1"]
    assert row[6] == "2026-11-24T08:10:00Z"
    wide = kubectl("get", "vg", "-o", "wide", check=True).stdout.splitlines()[0].split()
    assert wide[-3:] == ["ATTEMPTS", "JOB", "AGE"]
    assert "ID" in wide  # OWNER ID: spec.owner, in the wide table only
