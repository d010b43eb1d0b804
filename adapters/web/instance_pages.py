"""The instance page: its data under the definition's labels, the diagram with the current
state marked, the timeline (internal rows only for those allowed), the children, and one form
per trigger the signed-in actor may fire; a refused command is shown in the page, never as an
error page."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from xieshang import Actor, CommandRefused, ConcurrencyConflict, NotFound, XieshangError
from xieshang.adapters.http.idempotency import command_id
from xieshang.adapters.http.workflow_schemas import workflow_schemas

from .context import Pages, first, form_values
from .forms import TriggerForm, payload_from_form, trigger_form
from .present import diagram
from .sessions import Session

__all__ = ["add_instance_pages", "refusal_title"]

_TITLES = {
    "forbidden": "无权执行此操作 / Not allowed for you",
    "transition-not-allowed": "当前状态下不能执行此操作 / Not allowed now",
    "invalid-payload": "填写的内容有误 / Invalid input",
    "unknown-trigger": "没有这个操作 / No such action",
    "concurrency-conflict": "已被他人先行处理，请刷新后重试 / Changed by someone else first",
    "not-found": "未找到 / Not found",
}


def refusal_title(code: str) -> str:
    """The Chinese (and English) heading of a refusal's ``code``."""
    return _TITLES.get(code, "操作未执行 / Not done")


def _forms(pages: Pages, instance: Any, actor: Actor) -> list[TriggerForm]:
    definition = pages.labels.definition(instance.workflow)
    if definition is None:
        return []
    return [
        trigger_form(definition, a.trigger, instance.state, a.target, a.payload_schema)
        for a in pages.engine.available(instance.id, actor)
        if a.allowed or a.needs_payload
    ]


def _view(pages: Pages, instance_id: str, session: Session) -> dict[str, Any]:
    """Everything the page shows; raises NotFound as the engine does."""
    engine, actor = pages.engine, session.actor
    instance = engine.get(instance_id, actor, fresh=True)
    definition = pages.labels.definition(instance.workflow)
    fields = list(definition.data) if definition is not None else []
    shown = [k for k in fields if k in instance.data] + [
        k for k in instance.data if k not in fields
    ]
    return {
        "instance": instance,
        "data": [(k, pages.labels.field(instance.workflow, k), instance.data[k]) for k in shown],
        "history": engine.history(instance_id, actor),
        "children": engine.children(instance_id, actor),
        "forms": _forms(pages, instance, actor),
        "svg": (
            diagram(definition, instance.definition_hash, instance.state)
            if definition is not None
            else None
        ),
    }


def add_instance_pages(api: FastAPI, pages: Pages) -> None:
    """Add ``GET /i/{id}`` and ``POST /i/{id}/fire``."""

    def _not_found(request: Request, session: Session, instance_id: str) -> HTMLResponse:
        return pages.render(
            request,
            "error.html",
            404,
            session,
            title="未找到 / Not found",
            message=f"没有编号为 {instance_id} 的事项，或您无权查看。"
            " / No such instance, or you may not read it.",
        )

    @api.get("/i/{instance_id}", include_in_schema=False, response_class=HTMLResponse)
    def instance_page(instance_id: str, request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_signin()
        try:
            view = _view(pages, instance_id, session)
        except NotFound:
            return _not_found(request, session, instance_id)
        return pages.render(request, "instance.html", session=session, **view)

    @api.post("/i/{instance_id}/fire", include_in_schema=False, response_class=HTMLResponse)
    async def fire(instance_id: str, request: Request) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_signin()
        values = await form_values(request)
        if not session.csrf_ok(first(values, "csrf")):
            return pages.refused_csrf(request, session)
        htmx = request.headers.get("HX-Request") == "true"
        try:
            await run_in_threadpool(_fire, pages, instance_id, session, values)
        except NotFound:
            return _not_found(request, session, instance_id)
        except (CommandRefused, ConcurrencyConflict, XieshangError) as e:
            trigger = first(values, "trigger") or ""
            status = 200 if htmx else 422
            name = "_refusal.html" if htmx else "refused.html"
            return pages.render(
                request,
                name,
                status,
                session,
                title=refusal_title(e.code),
                error=e,
                trigger=trigger,
                instance_id=instance_id,
            )
        target = f"/i/{instance_id}"
        if htmx:
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def _fire(pages: Pages, instance_id: str, session: Session, values: dict[str, list[str]]) -> None:
    engine, actor = pages.engine, session.actor
    trigger = first(values, "trigger") or ""
    instance = engine.get(instance_id, actor, fresh=True)
    definition = pages.labels.definition(instance.workflow)
    now = next((a for a in engine.available(instance_id, actor) if a.trigger == trigger), None)
    payload: dict[str, Any] = {}
    if definition is not None:
        # a trigger the actor cannot fire now is not checked here: the engine says why not
        strict = now is not None and (now.allowed or now.needs_payload)
        schema = (
            now.payload_schema
            if now is not None and now.payload_schema is not None
            else workflow_schemas(definition)["payloads"].get(trigger)
        )
        form = trigger_form(definition, trigger, instance.state, "", schema)
        payload = payload_from_form(form, values, strict=strict)
    version = first(values, "version")
    reason = (first(values, "reason") or "").strip() or None
    engine.fire(
        instance_id,
        trigger,
        actor,
        payload,
        reason=reason,
        expected_version=int(version) if version and version.isdigit() else None,
        # the form's nonce: a form sent twice (a double click, a resent request) steps once
        command_id=command_id(actor, first(values, "nonce") or None),
    )
