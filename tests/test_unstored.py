"""A stream whose client asks to keep nothing (STORE false): its events reach it as usual,
and the store holds nothing of it; a stored session of the same name is neither continued
nor touched."""

from __future__ import annotations

from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Speaker,
    clock,
    kinds,
    stages,
)
from test_stream_spec import assert_all_freed, make_pipeline, threads_before  # noqa: F401 (autouse)

from livetranslate.protocol import EventKind
from livetranslate.store import SessionStore


def test_an_unstored_stream_leaves_nothing_behind(stages, clock, tmp_path):
    store = SessionStore(tmp_path)
    pipeline = make_pipeline(stages, clock, store=store)
    kept = Speaker(pipeline, clock, 1, "standup")
    kept.say(1, 2)
    kept.end()
    before = store.events("standup")
    private = Speaker(pipeline, clock, 2, "standup", store=False)
    private.say(3, 4)
    events = private.end()
    assert [e.text for e in kinds(events, EventKind.TRANSCRIPT)] == ["Guten.", "Morgen."]
    assert [e.segment_id for e in kinds(events, EventKind.TRANSCRIPT)] == [0, 1]  # not a continuation
    assert kinds(events, EventKind.TRANSLATION)
    assert store.events("standup") == before  # the stored session of that name is untouched
    other = Speaker(pipeline, clock, 3, "nobody-keeps-this", store=False)
    other.say(5)
    other.end()
    assert store.info("nobody-keeps-this") is None and "nobody-keeps-this" not in {i.name for i in store.sessions()}
    assert_all_freed(pipeline, stages)
