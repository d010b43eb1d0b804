"""A trigger's form is generated from its payload schema, and a submitted form gives the payload
back: each kind of input, blank optional inputs left out, and every bad input named."""

from __future__ import annotations

import pytest

from xieshang import InvalidPayload, Registry
from xieshang.adapters.http.workflow_schemas import workflow_schemas
from xieshang.adapters.web.forms import payload_from_form, trigger_form


def form_of(registry: Registry, workflow: str, trigger: str, state: str):  # type: ignore[no-untyped-def]
    definition = registry.get(workflow).definition
    schema = workflow_schemas(definition)["payloads"][trigger]
    return trigger_form(definition, trigger, state, "", schema)


def test_inputs_follow_the_payload_schema(registry: Registry) -> None:
    form = form_of(registry, "proposal", "submit", "draft")
    kinds = {f.name: (f.kind, f.required) for f in form.fields}
    assert kinds == {
        "category": ("select", True),
        "suggested_units": ("list", False),
        "is_public": ("bool", False),
        "non_public_reason": ("text", False),
        "channel": ("text", False),
    }
    category = next(f for f in form.fields if f.name == "category")
    assert category.label == "类别"
    assert category.options[0] == ("economy", "经济（economy）")
    extension = form_of(registry, "proposal", "request_extension", "assigned")
    assert [(f.name, f.kind) for f in extension.fields] == [("new_due", "date")]
    assert extension.reason_required is True


def test_a_submitted_form_gives_the_payload(registry: Registry) -> None:
    form = form_of(registry, "proposal", "submit", "draft")
    payload = payload_from_form(
        form,
        {
            "category": ["society"],
            "suggested_units": ["housing， transport、water"],
            "is_public": ["false"],
            "non_public_reason": [""],
            "channel": ["  "],
        },
    )
    assert payload == {
        "category": "society",
        "suggested_units": ["housing", "transport", "water"],
        "is_public": False,
    }


def test_bad_inputs_are_each_named(registry: Registry) -> None:
    form = form_of(registry, "proposal", "submit", "draft")
    with pytest.raises(InvalidPayload) as caught:
        payload_from_form(form, {"category": [""]})
    assert caught.value.errors == [{"field": "category", "error": "必填 / required (类别)"}]
    evaluate = form_of(registry, "proposal", "evaluate", "replied")
    with pytest.raises(InvalidPayload) as caught:
        payload_from_form(evaluate, {"satisfaction": ["satisfied"], "feedback": ["{not json"]})
    assert caught.value.errors == [
        {"field": "feedback", "error": "expected JSON", "got": "'{not json'"}
    ]
    lenient = payload_from_form(evaluate, {"feedback": ["{not json"]}, strict=False)
    assert lenient == {}
