"""A container's environment and command line, resolved as the kubelet resolves them.

Pure functions over the pod as the API serves it (camelCase dicts), so the rules Kubernetes
documents — `envFrom` before `env`, later entries winning, `$(VAR)` expansion against what was
defined before, `$$` as an escape, `optional` references — are unit-tested without a cluster.
The agent fetches the Secrets and ConfigMaps named by `referenced_objects` and passes them in.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# What a container sees of a Secret or ConfigMap: its string data, or None if it does not exist.
Sources = Mapping[str, Mapping[str, str] | None]

_LABEL_OR_ANNOTATION = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """A reference that cannot be resolved yet; the kubelet reports it and retries."""

    reason = "CreateContainerConfigError"


class CommandRequired(Exception):
    """Images are ignored here, so a container without `command` has nothing to run."""

    reason = "StartError"


@dataclass(frozen=True)
class References:
    secrets: frozenset[str]
    config_maps: frozenset[str]


def referenced_objects(container: Obj) -> References:
    """The Secrets and ConfigMaps (in the pod's namespace) that `container`'s environment reads."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            secrets.add(source["secretRef"]["name"])
        if "configMapRef" in source:
            config_maps.add(source["configMapRef"]["name"])
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if "secretKeyRef" in value_from:
            secrets.add(value_from["secretKeyRef"]["name"])
        if "configMapKeyRef" in value_from:
            config_maps.add(value_from["configMapKeyRef"]["name"])
    return References(frozenset(secrets), frozenset(config_maps))


def secret_strings(data: Mapping[str, str] | None) -> dict[str, str]:
    """Secret `data` is base64 on the wire; environment variables carry the decoded text."""
    return {
        key: base64.b64decode(value).decode(errors="replace") for key, value in (data or {}).items()
    }


def expand(text: str, mapping: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown references stay as written, `$$` is a `$`.

    A port of k8s.io/kubernetes third_party/forked/golang/expansion, including its edge cases:
    an unterminated `$(` and a `$` before any other character are copied through unchanged.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == "$":
                out.append("$")
                advance = 1
            elif following == "(":
                closer = text.find(")", cursor + 2)
                if closer == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = text[cursor + 2 : closer]
                    value = mapping(name)
                    out.append(f"$({name})" if value is None else value)
                    advance = closer - cursor
            else:
                out.append("$" + following)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _field_value(pod: Obj, path: str, pod_ip: str) -> str:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": pod_ip,
        "status.hostIPs": pod_ip,
    }
    if path in simple:
        return str(simple[path])
    match = _LABEL_OR_ANNOTATION.match(path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise EnvError(f"fieldRef {path!r} is not supported by the process kubelet")


def _key_ref(kind: str, ref: Obj, objects: Sources, namespace: str) -> str | None:
    """The referenced value, None if optional and absent; EnvError if required and absent."""
    optional = bool(ref.get("optional"))
    name, key = ref["name"], ref["key"]
    data = objects.get(name)
    if data is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


def container_env(
    pod: Obj,
    container: Obj,
    *,
    secrets: Sources,
    config_maps: Sources,
    pod_ip: str,
) -> dict[str, str]:
    """The variables the pod spec defines for `container`, in Kubernetes' precedence order."""
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, ref_key, objects in (
            ("Secret", "secretRef", secrets),
            ("ConfigMap", "configMapRef", config_maps),
        ):
            if ref_key not in source:
                continue
            ref = source[ref_key]
            data = objects.get(ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind.lower()} "{ref["name"]}" not found')
            for key, text in data.items():
                if "=" not in key:
                    env[prefix + key] = text
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env.get)
            continue
        value_from = var["valueFrom"]
        value: str | None
        if "secretKeyRef" in value_from:
            value = _key_ref("Secret", value_from["secretKeyRef"], secrets, namespace)
        elif "configMapKeyRef" in value_from:
            value = _key_ref("ConfigMap", value_from["configMapKeyRef"], config_maps, namespace)
        elif "fieldRef" in value_from:
            value = _field_value(pod, value_from["fieldRef"]["fieldPath"], pod_ip)
        else:
            kinds = ", ".join(value_from)
            raise EnvError(f"env {name}: valueFrom {kinds} is not supported by the process kubelet")
        if value is not None:
            env[name] = value
    return env


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    """`command` + `args` with `$(VAR)` expanded against the container's environment."""
    command = container.get("command") or []
    if not command:
        raise CommandRequired(
            f'container "{container["name"]}" has no command: the process kubelet ignores '
            "images and runs containers as local processes, so each container needs an "
            "explicit command (for example: command: [python, -m, genvid_worker])"
        )
    return [expand(part, env.get) for part in [*command, *(container.get("args") or [])]]
