"""The settings' door: a setting no deployment can use is a SettingsError naming it, a database
URL is never shown with its password, and nothing is created on the way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xieshang import SettingsError, StoreError
from xieshang.adapters.cli import app
from xieshang.adapters.settings import Settings, build_engine, masked_url

SECRET = "s3cr3t-Pw"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "WORKFLOWS", "CLOCK", "DEPLOYMENT", "SYNCHRONOUS", "CALENDAR"):
        monkeypatch.delenv(f"XIESHANG_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{SECRET}@db.example:port/xieshang",
        f"post gres://app:{SECRET}@db.example/xieshang",
        f"postgresql://app:{SECRET}@[::1/xieshang",
        f"postgresql://app:{'p' * 120}{SECRET}@db.example:99x/xieshang",
    ],
)
def test_an_unreadable_url_is_named_with_its_password_masked(url: str) -> None:
    """The setting is refused naming it, as postgresql://app:***@...; the password appears
    nowhere: not in the message, the details, nor a chained error."""
    with pytest.raises(SettingsError) as refused:
        Settings(database_url=url)
    error = refused.value
    assert error.errors[0]["field"] == "database_url"
    assert "app:***@" in error.message
    assert error.__cause__ is not None  # pydantic's error, for whoever debugs it
    shown = " ".join([error.message, str(error.to_dict()), str(error.__cause__)])
    assert SECRET not in shown


def test_the_cli_masks_the_password_of_a_db_option_or_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--db and XIESHANG_DATABASE_URL that cannot be read exit 2, the password masked."""
    url = f"postgresql://app:{SECRET}@db.example:port/x"
    for args, env in ((["--db", url, "list"], {}), (["list"], {"XIESHANG_DATABASE_URL": url})):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2
        assert "postgresql://app:***@db.example:port/x" in result.stderr
        assert SECRET not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_url", "sqlite:///a\x00b.db"),
        ("deployment", "贵阳\x00"),
        ("calendar", Path("holidays\x00.yaml")),
        ("workflows", [Path("flows\x00")]),
    ],
)
def test_a_setting_with_nul_is_refused_naming_it(field: str, value: object) -> None:
    """No path, URL or name holds a NUL character: SettingsError naming the setting."""
    with pytest.raises(SettingsError) as refused:
        Settings(**{field: value})
    assert refused.value.errors[0]["field"].partition(".")[0] == field
    assert "NUL" in refused.value.message


def test_a_bare_path_is_a_sqlite_file() -> None:
    """XIESHANG_DATABASE_URL (or --db) may be a path: it names a SQLite file."""
    assert Settings(database_url="data/xs.db").database_url == "sqlite:///data/xs.db"
    assert Settings(database_url=" sqlite:///x.db ").database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("pg://u:p@ss@h:x/db", "pg://u:***@h:x/db"),
        ("no scheme:pw@host", "no scheme:pw@host"),
    ],
)
def test_masked_url_hides_only_the_password(text: str, shown: str) -> None:
    """The user and host stay, the password (everything up to the last @) becomes ***."""
    assert masked_url(text) == shown


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    scheme=st.sampled_from(["postgresql", "postgres", "sqlite", "mysql", "post gres", ""]),
    user=st.text("abc_-", min_size=1, max_size=6),
    host=_TEXT,
    tail=_TEXT,
    deployment=_TEXT,
)
def test_fuzz_settings_refuse_with_a_settings_error_and_never_leak(
    scheme: str, user: str, host: str, tail: str, deployment: str
) -> None:
    """Whatever the environment holds, settings are built or refused with a SettingsError;
    the password is never in what is shown, and building creates no file."""
    url = f"{scheme}://{user}:{SECRET}@{host}{tail}" if scheme else f"{host}{tail}"
    before = sorted(os.listdir("."))
    try:
        built = Settings(database_url=url, deployment=deployment or "x")
    except SettingsError as e:
        assert SECRET not in f"{e.message} {e.to_dict()}"
        assert e.errors[0]["field"] in ("database_url", "deployment")
    else:
        assert built.database_url.startswith(("sqlite:///", f"{scheme}://"))
    assert sorted(os.listdir(".")) == before


def test_a_missing_calendar_file_stops_the_engine_before_any_database(tmp_path: Path) -> None:
    """build_engine names a calendar that cannot be read, and opens (creates) no database."""
    from xieshang import CalendarError

    with pytest.raises(CalendarError, match="cannot read the calendar file"):
        build_engine(Settings(database_url="x.db", calendar=tmp_path / "missing.yaml"))
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:s3cret@h:5432:x/db", "postgresql://u:s3cret@h:port/db", "://u:s3cret@h/db"],
)
def test_open_store_never_shows_the_password_of_a_url_it_cannot_read(url: str) -> None:
    """Called directly from Python, the store's error shows the URL with its password masked."""
    from xieshang.adapters.sql import open_store

    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value.details)
    assert "u:***@" in str(caught.value)
