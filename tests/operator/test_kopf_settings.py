"""What the operator's kopf settings rely on: with no change or spawning handler registered,
kopf needs neither an essence of the bodies nor a finalizer (`handlers.NoDiffBase`)."""

from __future__ import annotations

import kopf

from genvid_operator import handlers
from genvid_operator.config import Settings


def test_no_handler_needs_the_diff_base_or_a_finalizer() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, Settings())
    # kopf's registries of on.create/update/resume/delete handlers and of timers and daemons:
    # a handler in either would need the essence NoDiffBase leaves empty.
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert registry._watching.get_all_handlers()  # the event handlers are there


def test_no_essence_is_built_or_stored() -> None:
    storage = handlers.NoDiffBase()
    body = kopf.Body({"metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"prompt": "x"}})
    patch = kopf.Patch()
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence(spec={"prompt": "x"}))
    assert not patch
