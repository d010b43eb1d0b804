"""The CloudEvents the deployment emits, as the OpenAPI document's ``webhooks`` section.

One entry per event type: the engine's own (``xieshang.instance.started`` ...), each event a
workflow names in ``emits:``, and ``xieshang.<workflow>.warning`` for a workflow with soft rules.
Each is the request the relay POSTs (the CloudEvents 1.0 envelope, the signature header) with
its ``data``: the step, its actor, the instance's deadline, and the instance's public fields,
typed by the workflow's definition when the type belongs to one workflow. The event stream
(``/events/stream``) sends the same events.
"""

from __future__ import annotations

from typing import Any

from xieshang import Registry
from xieshang.adapters.events import SIGNATURE_HEADER
from xieshang.adapters.reports.labels import SATISFACTION_ZH

from .bodies import field_schema

__all__ = [
    "ENGINE_EVENTS",
    "PUBLIC_RATED",
    "event_components",
    "public_data_component",
    "webhook_parts",
    "webhooks",
]

CLOUDEVENTS_JSON = "application/cloudevents+json"
PREFIX = "xieshang."
_REF = "#/components/schemas/"
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"anyOf": [_TIME, {"type": "null"}]}
_TEXT_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}

ENGINE_EVENTS: dict[str, str] = {
    "instance.started": "An instance was started (its first history row).",
    "instance.transitioned": "A public step moved an instance.",
    "instance.completed": "A step brought an instance to a final state (after `transitioned`).",
    "instance.reminder": "A deadline is near; the instance did not change. `due_at` is the "
    "deadline.",
    "instance.overdue": "An instance's deadline passed in its state.",
    "instance.deadline_changed": "An instance's deadline moved (the calendar was reconciled, or "
    "another instance's step changed its data); `due_at_before` is the deadline it had.",
    "instance.updated": "Another instance's step changed this instance's data.",
}
PUBLIC_RATED = "proposal.public_rated"  # written by the console's public page, not by a step
_EXTRA: dict[str, dict[str, Any]] = {
    "instance.deadline_changed": {"due_at_before": _TIME_OR_NULL},
    "warning": {"code": {"type": "string"}, "message": {"type": "string"}},
}


def public_data_component(workflow: str) -> str:
    """The component of a workflow's public fields (``proposal`` gives ``ProposalPublicData``)."""
    return "".join(part.capitalize() for part in workflow.split("_")) + "PublicData"


def event_components(registry: Registry) -> dict[str, dict[str, Any]]:
    """The schemas the webhooks name: the envelope, the data, the actor of a step, and each
    workflow's public fields."""
    return {
        **{public_data_component(wf.id): _public_data(registry, wf.id) for wf in registry},
        "CloudEvent": _cloud_event({"$ref": f"{_REF}EventData"}),
        "EventData": {
            "type": "object",
            "description": "What a step did to an instance, and the instance's public fields.",
            "properties": {
                "workflow": {"type": "string", "enum": sorted(registry.ids())},
                "workflow_version": {"type": "integer"},
                "org": {"type": "string"},
                "trigger": {"type": "string"},
                "from": {**_TEXT_OR_NULL, "description": "the state before (null on a start)"},
                "to": {"type": "string", "description": "the state after"},
                "actor": {"$ref": f"{_REF}EventActor"},
                "version": {"type": "integer", "description": "the instance's version after"},
                "parent_id": _TEXT_OR_NULL,
                "unit": _TEXT_OR_NULL,
                "due_at": _TIME_OR_NULL,
                "overdue": {"type": "boolean"},
                "data": {
                    "$ref": f"{_REF}JsonObject",
                    "description": "the instance's fields marked `public: true`",
                },
            },
            "required": [
                "workflow",
                "workflow_version",
                "org",
                "trigger",
                "from",
                "to",
                "actor",
                "version",
                "parent_id",
                "unit",
                "due_at",
                "overdue",
                "data",
            ],
        },
        "EventActor": {
            "type": "object",
            "description": "Who took the step (`system` for timers and the engine's own steps).",
            "properties": {"id": {"type": "string"}, "role": {"type": "string"}},
            "required": ["id", "role"],
        },
    }


def _cloud_event(data: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvents 1.0 envelope with ``data`` as its data's schema."""
    return {
        "type": "object",
        "description": "A CloudEvents 1.0 event in structured JSON mode. De-duplicate on "
        "`id`: delivery is at least once. `sequence` orders one instance's events.",
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": {"type": "string"},
            "source": {
                "type": "string",
                "description": "/xieshang/<deployment>/<org>/<workflow>",
            },
            "type": {"type": "string"},
            "subject": {"type": "string", "description": "the instance id"},
            "time": {**_TIME, "description": "when the step happened"},
            "datacontenttype": {"type": "string", "enum": ["application/json"]},
            "sequence": {
                "type": "string",
                "pattern": "^[0-9]{12}$",
                "description": "the history row's number, 12 digits",
            },
            "data": data,
        },
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "sequence",
            "data",
        ],
    }


def _public_data(registry: Registry, workflow: str) -> dict[str, Any]:
    fields = registry.get(workflow).definition.data
    return {
        "type": "object",
        "description": f"The fields of a {workflow} that its events carry (`public: true`).",
        "properties": {
            name: field_schema(spec, label="description")
            for name, spec in fields.items()
            if spec.public
        },
        "additionalProperties": False,
    }


def _event(registry: Registry, name: str, workflows: list[str], description: str) -> dict[str, Any]:
    data: dict[str, Any] = {"properties": {}}
    if len(workflows) == 1:
        data["properties"]["workflow"] = {"type": "string", "enum": workflows}
        data["properties"]["data"] = {"$ref": _REF + public_data_component(workflows[0])}
    extra = _EXTRA.get(name) or (_EXTRA["warning"] if name.endswith(".warning") else {})
    if extra:
        data["properties"].update(extra)
        data["required"] = list(extra)
    envelope = {
        "allOf": [
            {"$ref": f"{_REF}CloudEvent"},
            {
                "properties": {
                    "type": {"type": "string", "enum": [PREFIX + name]},
                    "data": {"allOf": [{"$ref": f"{_REF}EventData"}, data]},
                }
            },
        ]
    }
    return _post(PREFIX + name, description, envelope)


def _post(summary: str, description: str, envelope: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "tags": ["events"],
            "parameters": [{"$ref": "#/components/parameters/EventSignature"}],
            "requestBody": {
                "required": True,
                "content": {CLOUDEVENTS_JSON: {"schema": envelope}},
            },
            "responses": {
                "2XX": {"$ref": "#/components/responses/EventDelivered"},
                "default": {"$ref": "#/components/responses/EventNotDelivered"},
            },
        }
    }


def webhook_parts() -> dict[str, dict[str, Any]]:
    """The ``parameters`` and ``responses`` components every webhook names."""
    return {
        "parameters": {
            "EventSignature": {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "`t=<unix seconds>,v1=<hex>`: HMAC-SHA256 over `t`, a dot and "
                "the raw body, keyed with the shared secret, in lower-case hex",
                "schema": {"type": "string", "pattern": r"^t=[0-9]+,v1=[0-9a-f]{64}$"},
            }
        },
        "responses": {
            "EventDelivered": {
                "description": "Delivered: not sent again (unless the relay crashed before "
                "recording it; de-duplicate on `id`)."
            },
            "EventNotDelivered": {
                "description": "408, 429 and 5xx (and timeouts) are retried with backoff, "
                "honouring Retry-After; any other 4xx dead-letters the event at once."
            },
        },
    }


def webhooks(registry: Registry) -> dict[str, Any]:
    """The ``webhooks`` section: one entry per event type the registry's workflows emit."""
    named: dict[str, list[str]] = {}
    for wf in sorted(registry, key=lambda w: w.id):
        d = wf.definition
        emitted = [*d.start.emits, *(e for t in d.transitions for e in t.emits)]
        if any(t.warn for t in d.transitions):
            emitted.append(f"{wf.id}.warning")
        for name in emitted:
            if name not in ENGINE_EVENTS and wf.id not in named.setdefault(name, []):
                named[name].append(wf.id)
    out = {PREFIX + name: _event(registry, name, [], text) for name, text in ENGINE_EVENTS.items()}
    for name in sorted(named):
        owners = named[name]
        what = "a soft rule warned" if name.endswith(".warning") else "named by `emits:`"
        text = f"Emitted by {', '.join(owners)}: {what}, with the step's data."
        out[PREFIX + name] = _event(registry, name, owners, text)
    if "proposal" in registry.ids():
        out[PREFIX + PUBLIC_RATED] = _public_rating_event()
    return out


def _public_rating_event() -> dict[str, Any]:
    """The event of a rating on the public page (网民满意度): not a step, so its ``data`` is its
    own (no actor, trigger or states) and ``sequence`` is the proposal's version when rated."""
    data = {
        "type": "object",
        "properties": {
            "workflow": {"type": "string"},
            "org": {"type": "string"},
            "number": {**_TEXT_OR_NULL, "description": "the proposal's number, once filed"},
            "rating": {"type": "string", "enum": list(SATISFACTION_ZH)},
        },
        "required": ["workflow", "org", "number", "rating"],
        "additionalProperties": False,
    }
    envelope = {
        "allOf": [
            _cloud_event(data),
            {"properties": {"type": {"type": "string", "enum": [PREFIX + PUBLIC_RATED]}}},
        ]
    }
    return _post(
        PREFIX + PUBLIC_RATED,
        "A visitor of the public page rated a closed proposal (one rating per browser). The "
        "browser and the address are not in the event. `subject` is the proposal's id.",
        envelope,
    )
