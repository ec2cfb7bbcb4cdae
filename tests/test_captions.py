"""The captions page without a server: share tokens and links, `livetranslate share`, the
lines a viewer reads (newest last, interim replaced, each line improved in place: the
in-context translation only when it adds something, an organiser's correction above all),
the spoken words beside them, what each page is sent, the component's files, and the
dashboard's table and delays."""

import dataclasses
import json
import os
import stat
import threading

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from livetranslate import cli, share
from livetranslate import dashboard as D
from livetranslate.cli import dashboard as cli_dashboard
from livetranslate.present import readable
from livetranslate.present.captions import (
    COMPONENT_DIR,
    MARKS,
    MAX_KEPT,
    SIZES,
    CaptionLines,
    Line,
    Snapshot,
    caption_events,
    for_page,
    in_language,
    page_css,
    session_problem,
    text_size,
)
from livetranslate.present.captions_feed import PageFeed
from livetranslate.protocol import Event, EventKind

T, TR, P, EN, END = (EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.PARTIAL, EventKind.ENHANCED, EventKind.END)
C = EventKind.CORRECTION
HOSTILE = "![x](http://evil/x.png) <img src=x onerror=alert(1)> [link](http://evil)"


def ev(kind, text, seg, lang, first=-1, error=""):
    return Event(kind, text, seg, float(seg), seg + 1.0, lang, first_segment_id=first, error=error)


# --- tokens and links ---------------------------------------------------------------------------
def test_a_token_opens_its_own_session_only_and_depends_on_the_secret():
    token = share.share_token("standup", "secret-1")
    assert len(token) == 32 and token == share.share_token("standup", "secret-1")
    assert share.token_valid("standup", token, "secret-1")
    assert share.token_valid("standup", token.upper(), "secret-1")  # a link retyped in capitals
    assert share.token_valid("standup", token, "secret-1\n")  # the key as a file or a Secret holds it
    assert not share.token_valid("standup2", token, "secret-1")
    assert not share.token_valid("standup", token, "secret-2")
    assert not share.token_valid("standup", token[:-1] + ("0" if token[-1] != "0" else "1"), "secret-1")
    for missing in (None, "", " "):
        assert not share.token_valid("standup", missing, "secret-1")
    assert not share.token_valid("standup", token, None) and not share.token_valid("", token, "secret-1")


def test_a_share_link_names_the_view_session_language_and_token():
    link = share.share_link("https://board.example/", "Team Sync & Co/1", "en", "abc", "transparent")
    assert link == (
        "https://board.example/?view=captions&session=Team%20Sync%20%26%20Co%2F1&lang=en&style=transparent&token=abc"
    )
    assert share.share_link("http://h:8501", "s") == "http://h:8501/?view=captions&session=s"


def test_the_secret_comes_from_the_environment_or_an_owner_only_key_file(tmp_path):
    env = {share.KEY_FILE_ENV: str(tmp_path / "cfg" / "dashboard.key")}
    assert share.dashboard_secret(env) is None
    made = share.ensure_dashboard_secret(env)
    assert len(made) >= 32 and share.dashboard_secret(env) == made == share.ensure_dashboard_secret(env)
    assert stat.S_IMODE(os.stat(tmp_path / "cfg" / "dashboard.key").st_mode) == 0o600
    assert share.dashboard_secret({**env, share.COOKIE_KEY_ENV: "from-env"}) == "from-env"
    assert share.key_file({"XDG_CONFIG_HOME": "/x"}) == share.Path("/x/livetranslate/dashboard.key")


def stored_session(data_dir, name: str) -> None:
    from livetranslate.store import SessionStore

    store = SessionStore(data_dir)
    store.open(name, "de", "en")
    store.close(name)
    store.shutdown()


def test_livetranslate_share_prints_the_link_with_the_token_the_dashboard_checks(tmp_path):
    stored_session(tmp_path / "sessions", "standup")  # no server at --url: the local store says it exists
    env = {
        share.KEY_FILE_ENV: str(tmp_path / "k"),
        share.COOKIE_KEY_ENV: "the-dashboard-secret",
        share.DASHBOARD_URL_ENV: "",
        "LIVETRANSLATE_URL": "127.0.0.1:1",
        "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions"),
    }
    out = CliRunner().invoke(
        cli.main, ["share", "standup", "--lang", "DE", "--dashboard", "https://b.example"], env=env
    )
    assert out.exit_code == 0, out.output
    token = share.share_token("standup", "the-dashboard-secret")
    assert out.output.strip() == f"https://b.example/?view=captions&session=standup&lang=de&token={token}"
    # the dashboard's own check, with the secret it signs its cookies with
    assert share.token_valid("standup", token, D.cookie_key({D.COOKIE_KEY_ENV: "the-dashboard-secret"}))
    # no secret here: a link without token, and a note on stderr saying why
    out = CliRunner().invoke(cli.main, ["share", "standup"], env={**env, share.COOKIE_KEY_ENV: ""})
    assert out.exit_code == 0 and "token" not in out.stdout and "no dashboard secret" in out.stderr
    assert out.stdout.strip() == "http://127.0.0.1:8501/?view=captions&session=standup"
    for bad in (["share", "standup", "--lang", "xx"], ["share", "bad\nname"], ["share", "s", "--style", "pink"]):
        out = CliRunner().invoke(cli.main, bad, env=env)
        assert out.exit_code == 2 and "Error" in out.output


def test_share_refuses_a_session_that_does_not_exist_and_names_the_close_ones(tmp_path):
    stored_session(tmp_path / "sessions", "standup-monday")
    env = {"LIVETRANSLATE_URL": "127.0.0.1:1", "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions")}
    out = CliRunner().invoke(cli.main, ["share", "standup-mondya"], env=env)
    assert out.exit_code == 2 and "no session named 'standup-mondya'" in out.output
    assert "did you mean 'standup-monday'?" in out.output
    out = CliRunner().invoke(cli.main, ["share", "standup-monday"], env=env)
    assert out.exit_code == 0 and "session=standup-monday" in out.stdout
    # neither a server nor a local store to ask: it says so instead of handing out a link
    env["LIVETRANSLATE_DATA_DIR"] = str(tmp_path / "nothing-here")
    out = CliRunner().invoke(cli.main, ["share", "standup-monday"], env=env)
    assert out.exit_code == 1 and "cannot tell whether the session exists" in out.output
    # an invitation before the meeting: asked for, not checked
    out = CliRunner().invoke(cli.main, ["share", "next-week", "--ahead"], env=env)
    assert out.exit_code == 0 and "session=next-week" in out.stdout


def test_sessions_are_listed_with_start_duration_lines_and_languages():
    from livetranslate.cli.options import session_hint
    from livetranslate.cli.sessions import format_duration, session_row

    info = {
        "name": "weekly",
        "state": "ended",
        "started_at": 1_000_000.0,
        "ended_at": 1_003_909.0,
        "counts": {"transcript": 42, "translation": 42},
        "source_language": "de",
        "target_language": "en",
        "languages": ["en", "fr"],
        "glossary": [{"term": "Acme"}],
    }
    row = session_row(info, 10, now=2_000_000.0)
    assert row.split()[0:2] == ["weekly", "ended"] and "1:05:09" in row and " 42 " in row
    assert "de->en (+fr)" in row and "glossary: 1 terms" in row
    live = session_row({**info, "state": "live", "ended_at": None}, 10, now=1_000_075.0)
    assert "1:15" in live  # running for as long as it has been live
    assert [format_duration(s) for s in (0, 45, 723, 3909, -5)] == ["0:00", "0:45", "12:03", "1:05:09", "0:00"]
    names = ["weekly", "weekly-ops", "standup"]
    assert session_hint("no session named 'weekyl'", names).endswith("did you mean 'weekly' or 'weekly-ops'?")
    assert session_hint("no session named 'zzz'", names).endswith("`livetranslate sessions` lists the stored sessions")
    assert session_hint("server full", names) == "server full"


def test_the_dashboard_command_keeps_one_secret_for_logins_and_links(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli_dashboard.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    monkeypatch.setenv(share.KEY_FILE_ENV, str(tmp_path / "dashboard.key"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(share.COOKIE_KEY_ENV, raising=False)
    users = tmp_path / "users.yaml"
    D.add_user(users, "alice", "pw-123456")
    for _ in range(2):  # a restart keeps it: logins and links survive
        assert CliRunner().invoke(cli.main, ["dashboard", "--credentials", str(users)]).exit_code == 0
    (argv, first), (_, second) = calls
    assert first[share.COOKIE_KEY_ENV] == second[share.COOKIE_KEY_ENV] == share.dashboard_secret()
    assert first[share.COOKIE_KEY_ENV] not in " ".join(argv)
    assert "--client.toolbarMode minimal" in " ".join(argv)  # no "Deploy" button


# --- the lines ---------------------------------------------------------------------------------
def test_a_page_reads_its_language_and_the_spoken_words_beside_it():
    assert in_language(ev(T, "Hallo", 0, "de"), "de") and in_language(ev(P, "Hal", 0, "de"), "de")
    assert not in_language(ev(TR, "Hello", 0, "en"), "de") and in_language(ev(TR, "Hello", 0, "en"), "en")
    assert not in_language(ev(T, "Hallo", 0, "de"), "en") and in_language(Event(END), "fr")
    assert not in_language(Event(EventKind.ERROR, "x", language="en"), "en")
    assert in_language(ev(C, "Hi", 0, "en"), "en") and not in_language(ev(C, "Hi", 0, "en"), "de")
    # the page in English takes the German transcripts too (the bilingual view), never French
    assert for_page(ev(T, "Hallo", 0, "de"), "en") and for_page(ev(C, "Hallo!", 0, "de"), "en")
    assert not for_page(ev(TR, "Bonjour", 0, "fr"), "en") and not for_page(ev(EN, "Salut", 0, "fr", first=0), "en")

    class Client:
        def watch(self, session, idle_timeout_s, language=None):
            assert session == "s" and language == "en"  # the server is asked for the page's language
            yield from [ev(P, "Hal", 0, "de"), ev(T, "Hallo", 0, "de"), ev(TR, "Salut", 0, "fr")]
            yield from [ev(TR, "Hello", 0, "en"), Event(END)]

    assert [e.text for e in caption_events(Client(), "s", "en")] == ["Hal", "Hallo", "Hello", ""]


def test_the_newest_line_is_last_and_the_oldest_go_beyond_what_is_kept():
    assert CaptionLines().max_lines == MAX_KEPT >= 1000  # a meeting's worth to scroll back to
    lines = CaptionLines(max_lines=3)
    for i in range(5):
        assert lines.add(ev(T, f"Satz {i}.", i, "de"))
    assert [ln.text for ln in lines.lines] == ["Satz 2.", "Satz 3.", "Satz 4."] and lines.dropped == 2
    # a translation arriving later of a segment on screen keeps the order
    lines = CaptionLines()
    lines.add(ev(TR, "two", 2, "en"))
    lines.add(ev(TR, "one", 1, "en"))
    assert [ln.text for ln in lines.lines] == ["one", "two"] and lines.dropped == 0


def test_the_interim_text_is_replaced_as_it_grows_and_goes_when_its_sentence_is_final():
    lines = CaptionLines()
    assert lines.add(ev(P, "Guten", 0, "de")) and lines.interim.text == "Guten"
    assert lines.add(ev(P, "Guten Morgen", 0, "de")) and lines.interim.text == "Guten Morgen"
    assert not lines.add(ev(P, "Guten Morgen", 0, "de"))  # nothing new
    assert lines.add(ev(T, "Guten Morgen allerseits.", 0, "de"))
    assert lines.interim is None and [ln.text for ln in lines.lines] == ["Guten Morgen allerseits."]
    assert not lines.add(ev(P, "Guten Morgen all", 0, "de"))  # late: its sentence is final
    assert lines.interim is None
    lines.add(ev(P, "Wie", 1, "de"))
    assert lines.interim.text == "Wie" and [ln.text for ln in lines.lines] == ["Guten Morgen allerseits."]


def test_the_translation_in_context_replaces_its_sentences_only_when_it_adds_something():
    lines = CaptionLines()
    for i, text in enumerate(["It is.", "Raining.", "Today."]):
        lines.add(ev(TR, text, i, "en"))
    # one sentence, the same words: nothing added, nothing changes
    assert not lines.add(ev(EN, "it is", 0, "en", first=0))
    assert not lines.add(ev(EN, "", 1, "en", first=0))  # empty
    assert not lines.add(ev(EN, "x", 1, "en", first=0, error="enhanced translation failed"))
    assert [ln.text for ln in lines.lines] == ["It is.", "Raining.", "Today."]
    # several sentences: one line in their place, with the quiet mark readers have explained
    assert lines.add(ev(EN, "It is raining.", 1, "en", first=0))
    assert [(ln.text, ln.mark) for ln in lines.lines] == [("It is raining.", "improved"), ("Today.", "")]
    assert MARKS["improved"] == (readable.IMPROVED_NAME, readable.IMPROVED_EXPLAINED)
    # one sentence said otherwise: it replaces that sentence
    assert lines.add(ev(EN, "Today, too.", 2, "en", first=2))
    assert [ln.text for ln in lines.lines] == ["It is raining.", "Today, too."]
    # a late sentence translation does not undo it
    assert lines.add(ev(TR, "Raining!", 1, "en")) and [ln.text for ln in lines.lines] == [
        "It is raining.",
        "Today, too.",
    ]
    # of sentences no longer kept: nothing to replace
    lines = CaptionLines(max_lines=2)
    for i in range(4):
        lines.add(ev(TR, f"s{i}", i, "en"))
    assert not lines.add(ev(EN, "s0 and s1", 1, "en", first=0))
    assert [ln.text for ln in lines.lines] == ["s2", "s3"]
    # a window that overlaps a line in context: the sentences it does not cover come back
    lines = CaptionLines()
    for i in range(4):
        lines.add(ev(TR, f"s{i}.", i, "en"))
    lines.add(ev(EN, "s0 with s1.", 1, "en", first=0))
    lines.add(ev(EN, "s1 with s2.", 2, "en", first=1))
    assert [(ln.key, ln.text) for ln in lines.lines] == [("0-0", "s0."), ("1-2", "s1 with s2."), ("3-3", "s3.")]


def test_a_correction_outranks_the_translation_in_context_and_the_latest_one_wins():
    lines = CaptionLines("en")
    for i, (de, en) in enumerate([("Wir haben zu viele Leute.", "We have too many people."), ("Danke.", "Thanks.")]):
        lines.add(ev(T, de, i, "de"))
        lines.add(ev(TR, en, i, "en"))
    lines.add(ev(EN, "We have too many people, thanks.", 1, "en", first=0))
    assert [ln.mark for ln in lines.lines] == ["improved"]
    # the organiser corrects sentence 0: in German (the words above), in English (the line);
    # the line in context cannot hold the correction: it goes back to its sentences
    assert lines.add(ev(C, "Wir haben zu wenige Leute.", 0, "de"))
    assert lines.lines[0].source == "Wir haben zu wenige Leute. Danke."
    assert lines.add(ev(C, "We have too few people.", 0, "en"))
    assert [(ln.text, ln.mark, ln.source) for ln in lines.lines] == [
        ("We have too few people.", "corrected", "Wir haben zu wenige Leute."),
        ("Thanks.", "", "Danke."),
    ]
    # what comes after never undoes it: a translation in context over it, a late translation
    assert not lines.add(ev(EN, "Too many people here, thanks.", 1, "en", first=0))
    lines.add(ev(TR, "We have too many people.", 0, "en"))
    lines.add(ev(T, "Wir haben zu viele Leute.", 0, "de"))
    assert lines.lines[0].text == "We have too few people." and lines.lines[0].source == "Wir haben zu wenige Leute."
    # the latest correction wins; a correction in another language is not this page's
    assert lines.add(ev(C, "We have far too few people.", 0, "en"))
    assert not lines.add(ev(C, "Nous avons trop peu de gens.", 0, "fr"))
    assert [ln.text for ln in lines.lines] == ["We have far too few people.", "Thanks."]
    # a correction to nothing takes the line away
    assert lines.add(ev(C, "", 1, "en")) and [ln.text for ln in lines.lines] == ["We have far too few people."]


def test_the_bilingual_view_pairs_each_translation_with_the_spoken_words():
    lines = CaptionLines("en")
    assert lines.add(ev(P, "Guten", 0, "de")) and lines.pending_source() == "Guten"
    assert lines.interim is None  # the page's own interim text is the interim translation
    lines.add(ev(T, "Guten Morgen.", 0, "de"))
    assert lines.spoken == "de" and lines.pending_source() == "Guten Morgen."  # waiting for its translation
    lines.add(ev(EventKind.PARTIAL_TRANSLATION, "Good mor", 0, "en"))
    assert lines.interim.text == "Good mor"
    lines.add(ev(TR, "Good morning.", 0, "en"))
    assert [(ln.text, ln.source) for ln in lines.lines] == [("Good morning.", "Guten Morgen.")]
    assert lines.pending_source() == "" and lines.interim is None
    lines.add(ev(T, "Wie geht's?", 1, "de"))
    lines.add(ev(TR, "How are you?", 1, "en"))
    lines.add(ev(EN, "Good morning, how are you?", 1, "en", first=0))
    assert [(ln.text, ln.source) for ln in lines.lines] == [("Good morning, how are you?", "Guten Morgen. Wie geht's?")]
    # the spoken language's own page: no words twice
    spoken = CaptionLines("de")
    spoken.add(ev(T, "Guten Morgen.", 0, "de"))
    assert [(ln.text, ln.source) for ln in spoken.lines] == [("Guten Morgen.", "")] and spoken.pending_source() == ""


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([T, TR, EN, C]), st.integers(0, 12), st.integers(0, 3), st.sampled_from(["en", "de", "fr"])
        ),
        max_size=60,
    ),
    st.sampled_from([3, MAX_KEPT]),
)
def test_whatever_comes_in_whatever_order_the_lines_stay_in_order_and_corrections_win(script, kept):
    lines = CaptionLines("en", max_lines=kept)
    lines.add(ev(T, "Start.", 0, "de"))
    for i, (kind, seg, back, lang) in enumerate(script):
        text = "" if kind == C and back == 0 else f"{kind.value} {seg} {i}"
        lines.add(ev(kind, text, seg, "de" if kind == T else lang, first=max(0, seg - back)))
    ls = lines.lines
    assert all(a.segment_id < b.first_segment_id for a, b in zip(ls, ls[1:]))  # in order, no segment twice
    assert all(ln.text for ln in ls) and len(ls) <= kept
    for ln in ls:  # a corrected segment reads as corrected, nothing else
        assert ln.corrected or not any(s in lines._corrected for s in range(ln.first_segment_id, ln.segment_id + 1))


def test_a_failed_translation_shows_nothing_and_clears_nothing_else():
    lines = CaptionLines()
    lines.add(ev(TR, "one", 0, "en"))
    assert lines.add(ev(TR, "", 1, "en", error="translation failed: timeout"))
    assert [ln.text for ln in lines.lines] == ["one"]


def test_a_line_made_by_the_small_model_carries_a_quiet_explained_mark_until_replaced():
    lines = CaptionLines()
    lines.add(
        Event(
            TR,
            "We have too many people.",
            0,
            0.0,
            1.0,
            language="en",
            note="made by the small model: the translations were 5 s behind the speech",
        )
    )
    lines.add(ev(TR, "Thanks.", 1, "en"))
    assert [(ln.text, ln.mark) for ln in lines.lines] == [("We have too many people.", "draft"), ("Thanks.", "")]
    rows = PageFeed().payload(Snapshot(lines=tuple(lines.lines)))["upsert"]
    assert rows[0][3:6] == ["We have too many people.", "", "draft"] and rows[1][5] == ""
    # the large model's text in context replaces it, and the mark with it
    assert lines.add(ev(EN, "We have too few people.", 0, "en", first=0))
    assert [ln.mark for ln in lines.lines] == ["improved", ""]


# --- what a page is sent -----------------------------------------------------------------------
def test_a_page_is_sent_only_what_changed_and_everything_when_it_asks():
    feed, lines = PageFeed(), CaptionLines()
    for i in range(3):
        lines.add(ev(TR, f"s{i}.", i, "en"))
    snap = Snapshot(session="s", lang="en", state="live", lines=tuple(lines.lines))
    first = feed.payload(snap)
    assert first["full"] and first["base"] == 0 and first["version"] == 1
    assert [row[0] for row in first["upsert"]] == ["0-0", "1-1", "2-2"] and first["remove"] == []
    json.dumps(first)  # plain JSON, as the component takes it
    # nothing new: nothing to draw (the same small arguments each time)
    same = feed.payload(snap)
    assert same["upsert"] == same["remove"] == [] and same["base"] == same["version"] == 1 and not same["full"]
    assert feed.payload(snap) == same
    # a line in context: its sentences go, it comes, applied to version 1
    lines.add(ev(EN, "s0 and s1.", 1, "en", first=0))
    lines.add(ev(TR, "s3.", 3, "en"))
    delta = feed.payload(dataclasses.replace(snap, lines=tuple(lines.lines), interim="and"))
    assert (delta["base"], delta["version"], delta["full"]) == (1, 2, False)
    assert [row[0] for row in delta["upsert"]] == ["0-1", "3-3"] and delta["remove"] == ["0-0", "1-1"]
    assert delta["interim"] == "and"
    # the page missed a change (or was made anew): it asks, and gets everything once
    again = feed.payload(dataclasses.replace(snap, lines=tuple(lines.lines)), resync="r1")
    assert again["full"] and len(again["upsert"]) == 3 and again["epoch"] != first["epoch"]
    assert not feed.payload(dataclasses.replace(snap, lines=tuple(lines.lines)), resync="r1")["full"]
    # another session (the newest live one changed): everything anew
    other = feed.payload(Snapshot(session="t", lang="en", lines=(Line("x", 0, 0),)))
    assert other["full"] and [row[0] for row in other["upsert"]] == ["0-0"]


def test_the_page_gets_every_text_as_it_was_said_and_names_its_marks():
    lines = CaptionLines()
    long_line = "word " * 2000
    lines.add(ev(TR, "older " + HOSTILE, 0, "en"))
    lines.add(ev(TR, long_line, 1, "en"))
    args = PageFeed().payload(
        Snapshot(session="s<b>\n\x1b[31m", lang="en", state="live", lines=tuple(lines.lines), interim=HOSTILE)
    )
    # the text as it was said: the component sets it as text (textContent), never as markup
    assert args["upsert"][0][3] == "older " + HOSTILE and args["interim"] == HOSTILE
    assert args["upsert"][1][3] == long_line.strip() and len(args["upsert"][1][3]) > 9000
    assert args["status"] == "● LIVE · s<b>\ufffd\ufffd[31m · en"  # control characters shown, not obeyed
    assert args["marks"] == MARKS and set(MARKS) == {"corrected", "improved", "draft"}
    assert MARKS["corrected"] == (readable.CORRECTED_NAME, readable.CORRECTED_EXPLAINED)
    assert MARKS["draft"] == (readable.DRAFT_NAME, readable.DRAFT_EXPLAINED)
    assert "Waiting" in PageFeed().payload(Snapshot(state="waiting", message="Waiting for a live session…"))["message"]


def test_text_sizes_and_session_names_from_a_link_get_a_clear_answer():
    low, high = SIZES
    assert text_size(None) == (None, "") and text_size("") == (None, "") and text_size("150") == (150, "")
    for bad, kept in (("9999", high), ("-5", low), ("1e400", None), ("nan", None), ("big<script>", None)):
        size, note = text_size(bad)
        assert size == kept and note, bad
    assert "outside 50–300 %: 300 % is used" in text_size("9999")[1]
    assert "<script>" in text_size("big<script>")[1]  # said as text: the component sets it as text
    assert text_size("a\nb")[1].count("\ufffd") == 1
    assert session_problem("standup") == "" and session_problem("Team Sync & Co/1") == ""
    for bad in ("", "a\nb", "bell\x07", "x" * 201):
        assert "printable" in session_problem(bad)
    assert "transparent" in page_css("transparent") and "#000" in page_css("dark")
    assert page_css("</style><script>") == page_css("dark")  # an unknown style is the dark one
    assert 'iframe[title$="livetranslate_captions"]' in page_css("dark")


def test_the_page_is_plain_files_that_set_every_text_as_text_and_ship_with_the_package():
    files = {p.name: p.read_text() for p in COMPONENT_DIR.iterdir()}
    assert {"index.html", "captions.js", "captions.css"} <= set(files)
    script = files["captions.js"]
    for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert markup not in script, markup
    assert "textContent" in script and "streamlit:componentReady" in script and "localStorage" in script
    assert 'src="captions.js"' in files["index.html"] and 'href="captions.css"' in files["index.html"]
    import tomllib

    package_data = tomllib.loads((COMPONENT_DIR.parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert {"captions_page/*.html", "captions_page/*.js", "captions_page/*.css"} <= set(
        package_data["livetranslate.present"]
    )


# --- the dashboard's table and health ------------------------------------------------------------
def test_the_session_table_shows_the_translation_in_context_only_when_it_adds_something():
    events = [ev(T, "Es ist.", 0, "de"), ev(TR, "It is.", 0, "en"), ev(EN, "It is", 0, "en", first=0)]
    rows = D.session_rows(events)
    assert rows == [{"segment": 0, "time": "00:00.0", "transcript": "Es ist.", "translation": "It is."}]
    events += [ev(T, "Regnet.", 1, "de"), ev(TR, "Raining.", 1, "en"), ev(EN, "It is raining.", 1, "en", first=0)]
    rows = D.session_rows(events)
    assert [r[readable.COMBINED_NAME] for r in rows] == ["", "(#0–1) It is raining."]


def test_the_session_table_has_a_speaker_column_only_for_labelled_sessions():
    events = [Event(T, "Es ist.", 0, speaker="S1"), Event(T, "Ja.", 1, speaker="S2"), Event(T, "Hm.", 2)]
    assert [(r["speaker"], r["transcript"]) for r in D.session_rows(events)] == [
        ("S1", "Es ist."),
        ("S2", "Ja."),
        ("", "Hm."),
    ]
    assert list(D.session_rows(events)[0])[:4] == ["segment", "time", "speaker", "transcript"]
    assert "speaker" not in D.session_rows([Event(T, "Es ist.", 0)])[0]


def test_delays_are_what_readers_wait_in_seconds():
    events = [Event(T, "x", i, latency_ms=ms) for i, ms in enumerate([800, 1000, 1200, 3000])]
    events += [Event(TR, "y", i, latency_ms=ms) for i, ms in enumerate([2000, 2500])]
    events.append(Event(TR, "", 5, latency_ms=99_000, error="translation failed"))
    d = D.delays(events)
    assert d["speech to caption"] == {"median s": 1.2, "p95 s": 3.0, "sentences": 4}
    assert d["speech to translation"]["sentences"] == 2 and D.delays([]) == {}


def test_models_without_a_state_are_not_reported_as_problems():
    models = {"pipeline": "READY", "yes_probability": "?", "llm": "UNAVAILABLE", "whisper": "LOADING"}
    assert D.model_problems(models) == ["llm: unavailable", "whisper: loading"]
    assert D.model_problems({"pipeline": "READY"}) == []


# --- the captions page behind a login (AppTest; a stand-in port, no server) --------------------
@pytest.fixture
def captions_app(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest
    from test_dashboard_logic import APP

    users = tmp_path / "users.yaml"
    D.add_user(users, "alice", "right-password")
    monkeypatch.setenv(D.CREDENTIALS_ENV, str(users))
    monkeypatch.setenv(D.COOKIE_KEY_ENV, "the-dashboard-secret")
    monkeypatch.delenv(D.NO_LOGIN_ENV, raising=False)
    monkeypatch.setenv("LIVETRANSLATE_URL", "127.0.0.1:9")  # nothing listens: the page must not need it

    def make(**params):
        at = AppTest.from_file(str(APP), default_timeout=30)
        for k, v in params.items():
            at.query_params[k] = v
        return at.run()

    return make


def captions_of(at) -> list[dict]:
    """The arguments of the captions component on the page (none: no captions shown)."""
    shown = [e.proto for e in at.get("component_instance")]  # (the login's cookie manager is one too)
    return [json.loads(p.json_args) for p in shown if p.component_name.endswith(".livetranslate_captions")]


def test_a_captions_link_with_a_wrong_token_shows_a_clear_message_and_nothing_else(captions_app):
    good = share.share_token("standup", "the-dashboard-secret")
    for session, token in (("standup", "0" * 32), ("other", good), ("standup", ""), ("", good)):
        at = captions_app(view="captions", session=session, token=token)
        assert not at.exception
        assert [e.value for e in at.error] == [
            "This captions link is not valid (its token does not match). "
            "Ask the speaker for a new one: livetranslate share SESSION"
        ]
        assert not captions_of(at) and not at.text_input and not at.sidebar.children
    # no token at all: a login, as for the dashboard
    at = captions_app(view="captions", session="standup")
    assert [t.label for t in at.text_input] == ["User name", "Password"] and not captions_of(at)
    assert "share link" in at.info[0].value
    # a session name no session can have (control characters): said so, before anything else
    at = captions_app(view="captions", session="stand\nup\x1b[2J", token=good)
    assert not at.exception and not captions_of(at) and not at.text_input
    assert [e.value for e in at.error] == [
        "This captions link names no session the server could have: a session name is 1 to 200 printable characters."
    ]


def test_a_captions_link_with_its_token_shows_the_captions_without_a_login(captions_app):
    token = share.share_token("standup", "the-dashboard-secret")
    at = captions_app(view="captions", session="standup", lang="en", token=token)
    assert not at.exception and not at.error and not at.text_input and not at.radio and not at.sidebar.children
    [args] = captions_of(at)
    assert args["full"] and "standup" in args["status"] and args["lang"] == "en" and args["style"] == "dark"
    assert args["size"] is None and args["size_note"] == ""
    # the link's text size and style, checked: a size out of range is brought in, and said so
    at = captions_app(view="captions", session="standup", lang="en", token=token, size="9999", style="transparent")
    [args] = captions_of(at)
    assert args["size"] == SIZES[1] and "outside" in args["size_note"] and args["style"] == "transparent"
    at = captions_app(view="captions", session="standup", token=token, size="<b>big</b>", style="<script>")
    [args] = captions_of(at)
    assert args["size"] is None and "<b>big</b>" in args["size_note"] and args["style"] == "dark"


# --- the followers behind the page (a scripted server through the connect seam) -----------------
class ScriptedServer:
    """Sessions listed newest first; each viewer's stream gets the session's history, then
    what is said while it watches."""

    def __init__(self):
        self.infos, self.history, self.viewers, self.watches = [], {}, {}, []
        self.lock = threading.Lock()

    def start(self, name):
        self.infos.insert(0, {"name": name, "state": "live", "target_language": "en"})
        self.history[name], self.viewers[name] = [], []

    def say(self, name, *events):
        with self.lock:
            for e in events:
                self.history[name].append(e)
                for feed in self.viewers[name]:
                    feed.put(e)

    def end(self, name):
        next(i for i in self.infos if i["name"] == name)["state"] = "ended"
        self.say(name, Event(END))

    def connect(self):
        import queue

        server = self

        class Client:
            def __init__(self):
                self.client, self.feed = self, queue.Queue()

            def sessions(self, action):
                return [dict(i) for i in server.infos]

            def watch(self, session, idle_timeout_s, language=None):
                with server.lock:
                    server.watches.append(session)
                    for e in server.history[session]:
                        self.feed.put(e)
                    server.viewers[session].append(self.feed)
                while True:
                    e = self.feed.get()
                    if isinstance(e, Exception):
                        raise e
                    yield e
                    if e.kind == END:
                        return

            def stop_stream(self, cancel_requests):
                from livetranslate.client import ClientError

                self.feed.put(ClientError("cancelled"))

            def close(self):
                pass

        return Client()


def until(condition, timeout_s=10.0):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def fast_poll(monkeypatch):
    from livetranslate.dashboard import followers as captions_live

    monkeypatch.setattr(captions_live, "POLL_S", 0.05)


def test_a_follower_waits_for_its_session_then_shows_it_live_and_ended(fast_poll):
    from livetranslate.dashboard.followers import Followers

    server = ScriptedServer()
    followers = Followers(server.connect)
    try:
        follower = followers.get("standup", None)
        assert until(lambda: follower.snapshot().state == "waiting")
        assert "standup" in follower.snapshot().message
        server.start("standup")
        server.say("standup", ev(T, "Hallo.", 0, "de"), ev(TR, "Hello.", 0, "en"), ev(P, "Wie", 1, "de"))
        assert until(lambda: [ln.text for ln in follower.snapshot().lines] == ["Hello."])
        snap = follower.snapshot()
        assert snap.state == "live" and snap.lang == "en" and snap.interim == ""  # the session's target language
        assert snap.lines[0].source == "Hallo." and snap.interim_source == "Wie" and snap.spoken == "de"
        assert followers.get("standup", None) is follower  # one connection for every page
        server.end("standup")
        assert until(lambda: follower.snapshot().state == "ended")
        assert [ln.text for ln in follower.snapshot().lines] == ["Hello."]
    finally:
        followers.close()
    assert until(lambda: not follower._thread.is_alive())


def test_the_newest_live_session_is_followed_and_a_new_one_takes_over(fast_poll):
    from livetranslate.dashboard.followers import Followers

    server = ScriptedServer()
    followers = Followers(server.connect)
    try:
        newest = followers.get(None, "de")
        assert until(lambda: newest.snapshot().state == "waiting")
        server.start("first")
        server.say("first", ev(T, "Erstens.", 0, "de"), ev(P, "Zwei", 1, "de"))
        assert until(lambda: newest.snapshot().session == "first" and newest.snapshot().interim == "Zwei")
        server.start("second")
        server.say("second", ev(T, "Zweitens.", 0, "de"))
        assert until(lambda: [ln.text for ln in newest.snapshot().lines] == ["Zweitens."])
        assert newest.snapshot().session == "second"
    finally:
        followers.close()


def test_a_follower_nobody_reads_is_stopped_and_its_watch_cancelled(fast_poll):
    import time

    from livetranslate.dashboard.followers import Followers

    server = ScriptedServer()
    server.start("s")
    followers = Followers(server.connect, idle_s=0.2)
    old = followers.get("s", "de")
    assert until(lambda: server.watches == ["s"])
    time.sleep(0.3)
    fresh = followers.get("s", "de")  # the old one went unread: stopped, a new one made
    assert fresh is not old and old.stopped
    assert until(lambda: not old._thread.is_alive(), 5)
    followers.close()
    assert until(lambda: not fresh._thread.is_alive(), 5)
