"""A deployment's settings file: the orgs it serves (全国, 省, 市, 县, 区), which workflows each
uses and at which version, the params each runs them with, and which org's figures roll up to
its parent. Reading it checks it against the loaded workflows and lists every problem at its
line under a stable code:

| code | name | what |
| --- | --- | --- |
| XS150 | deployment-shape | a key, type or value the format does not allow |
| XS151 | unknown-level | an org's ``level`` is not national, province, city, county or district |
| XS152 | duplicate-org | two orgs share an id |
| XS153 | unknown-parent | an org's ``parent`` is not an org of the file |
| XS154 | parent-cycle | an org is its own ancestor |
| XS155 | unknown-workflow | ``workflows`` or ``params`` names a workflow that is not loaded |
| XS156 | version-not-loaded | an org uses a version of a workflow that is not loaded |
| XS157 | pin-conflict | ``XIESHANG_PINS`` pins an org's workflow to another version than the file |
| XS158 | params-unused | an org sets params of a workflow it does not use |
| XS159 | rollup-without-parent | ``rollup: true`` on an org that has no parent |
| XS112 | unknown-param | a param the workflow does not declare (as in a workflow file) |
| XS116 | bad-default | a param value that does not fit the param's type (as in a workflow file) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from .errors import Problem, XieshangError
from .registry import Registry
from .shape_errors import suggest
from .yamlsafe import Located, Path, read_yaml

__all__ = [
    "LEVELS",
    "DeploymentConfig",
    "DeploymentError",
    "OrgConfig",
    "deployment_problems",
    "load_deployment",
]

LEVELS = {"national": "全国", "province": "省", "city": "市", "county": "县", "district": "区"}
LATEST = "latest"
Level = Literal["national", "province", "city", "county", "district"]
Params = dict[str, dict[str, Any]]


class DeploymentError(XieshangError):
    """A deployment settings file is invalid. ``problems`` lists every problem, in file order."""

    code = "deployment-file-invalid"

    def __init__(self, problems: list[Problem], *, file: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path, p.code))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in deployment settings file {file}"
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{head.rstrip()}:\n{body}", problems=[p.to_dict() for p in self.problems])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrgConfig(_Model):
    """One org: its place among the others, the workflows it uses and the params it sets."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[^\s\x00]+$")
    name: str = Field(default="", max_length=200)
    level: Level
    parent: str | None = None
    rollup: bool = Field(default=False, description="the parent may see this org's figures")
    workflows: dict[str, int | Literal["latest"]] | None = Field(
        default=None,
        description="the workflows its people may start, each at a version or 'latest'; "
        "None: every loaded workflow",
    )
    params: Params = Field(default_factory=dict)

    @field_validator("workflows", mode="before")
    @classmethod
    def _list_is_latest(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return dict.fromkeys(value, LATEST)
        return value


class DeploymentConfig(_Model):
    """The deployment's settings file, checked (:func:`load_deployment`)."""

    orgs: tuple[OrgConfig, ...] = ()
    params: Params = Field(default_factory=dict, description="per workflow, for every org")
    strict: bool = Field(
        default=False, description="an org the file does not list may start nothing"
    )
    report_roles: tuple[str, ...] = Field(
        default=("cppcc_office", "admin"),
        description="the roles whose holders may read a rolled-up report of their org",
    )
    _file: str = PrivateAttr(default="")
    _lines: dict[Path, int] = PrivateAttr(default_factory=dict)

    @property
    def file(self) -> str:
        """The file the settings were read from ("" when none was named)."""
        return self._file

    def org(self, org_id: str) -> OrgConfig | None:
        return next((o for o in self.orgs if o.id == org_id), None)

    def line_of(self, path: Path) -> int | None:
        return Located(None, self._lines, self.file).line_of(path)

    def index_of(self, org_id: str) -> int:
        return next(i for i, o in enumerate(self.orgs) if o.id == org_id)

    def params_for(self, org_id: str, workflow: str) -> dict[str, Any]:
        """The params in force for ``org_id``'s instances of ``workflow``: the org's own over
        the deployment-wide ones."""
        org = self.org(org_id)
        return {**self.params.get(workflow, {}), **(org.params.get(workflow, {}) if org else {})}

    def children(self, org_id: str) -> list[OrgConfig]:
        return [o for o in self.orgs if o.parent == org_id]


def load_deployment(
    text: str | bytes,
    file: str = "",
    registry: Registry | None = None,
    *,
    pins: Mapping[str, Mapping[str, int]] | None = None,
) -> DeploymentConfig:
    """The settings of a file's text, checked against ``registry`` (when given) and ``pins``.

    Raises:
        DeploymentError: every problem of the file, each with its line and code.
    """
    config, problems = parse_deployment(text, file, registry, pins=pins)
    if problems or config is None:
        raise DeploymentError(problems, file=file)
    return config


def deployment_problems(
    text: str | bytes, file: str = "", registry: Registry | None = None, **kw: Any
) -> list[Problem]:
    """Every problem of a settings file (none: it is valid)."""
    return parse_deployment(text, file, registry, **kw)[1]


def parse_deployment(
    text: str | bytes,
    file: str = "",
    registry: Registry | None = None,
    *,
    pins: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[DeploymentConfig | None, list[Problem]]:
    """The settings (None when the file does not fit the format) and every problem found."""
    located, problems = read_yaml(text, file)
    if located is None or problems:
        return None, problems
    if not isinstance(located.data, dict):
        msg = f"a deployment settings file is a mapping, not {type(located.data).__name__}"
        return None, [located.problem("XS150", "deployment-shape", msg, ())]
    config: DeploymentConfig | None = None
    try:
        config = DeploymentConfig.model_validate(located.data)
    except ValidationError as e:
        problems += [_shape(located, err) for err in e.errors() if not _is_level(err)]
    from .deployment_checks import check_file

    problems += check_file(located, registry, pins or {})
    if config is None or problems:
        return None, problems
    config._lines.update(located.lines)
    config._file = file
    return config, problems


def _is_level(err: Any) -> bool:
    loc = tuple(err["loc"])
    return len(loc) == 3 and loc[0] == "orgs" and loc[2] == "level" and err["type"] != "missing"


def _shape(located: Located, err: Any) -> Problem:
    path: Path = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    message = f"{err['msg']}{shown}"
    if err["type"] == "extra_forbidden" and isinstance(path[-1], str):
        fields = OrgConfig.model_fields if path[0] == "orgs" else DeploymentConfig.model_fields
        keys = list(fields)
        message = f"unknown key {path[-1]!r}{suggest(path[-1], keys)} (keys: {', '.join(keys)})"
    return located.problem("XS150", "deployment-shape", message, path)


def unknown_level(level: Any) -> str:
    shown = ", ".join(f"{k} ({v})" for k, v in LEVELS.items())
    near = suggest(level, LEVELS) if isinstance(level, str) else ""
    by_zh = {v: k for k, v in LEVELS.items()}
    if isinstance(level, str) and level in by_zh:
        near = f"; did you mean {by_zh[level]!r}?"
    return f"unknown level {level!r}{near} (levels: {shown})"
