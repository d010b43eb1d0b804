"""The statement texts the SQL store writes once and sends as they are."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xieshang.adapters.sql.statements import Statements, numbered

PIECES = st.lists(st.text(alphabet=st.characters(blacklist_characters="%$")), min_size=1)


@given(PIECES)
def test_numbered_marks_follow_their_order_and_keep_the_text_between(pieces: list[str]) -> None:
    text = numbered("%s".join(pieces))
    expected = "".join(f"{piece}${k}" for k, piece in enumerate(pieces[:-1], 1)) + pieces[-1]
    assert text == expected
    assert text.count("$") == len(pieces) - 1


def test_a_percent_sign_that_is_not_a_mark_is_refused() -> None:
    with pytest.raises(ValueError, match="not a mark"):
        numbered("SELECT %s WHERE name LIKE 'a%'")


def test_a_postgresql_step_is_numbered_from_one_to_its_last_value() -> None:
    """The one statement of a step (more values than the driver keeps its reading of) has its
    marks numbered ``$1`` to ``$n``, each once, and no ``%s`` left."""
    sql = Statements(postgres=True)
    update = sql.updates[True, True, True]
    step = sql.step(update, 1, 2, ledger=True)
    marks = update.count("%s") + 23 + 2 * 7 + 4  # the update (its WHERE too), rows, ledger
    assert "%s" not in step
    assert [f"${k}" in step for k in (1, marks)] == [True, True]
    assert f"${marks + 1}" not in step
