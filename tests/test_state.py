from livetranslate.stages.state import StreamTable


def test_streams_expire_after_ttl_and_activity_renews():
    now = [0.0]
    expired = []
    table = StreamTable(ttl_s=10, on_expire=lambda k, v: expired.append((k, v)), clock=lambda: now[0])
    table.put(1, "a")
    table.put(2, "b")
    now[0] = 8
    assert table.expire() == []
    assert table.get(1) == "a"  # activity at t=8
    now[0] = 12
    assert table.expire() == [2]
    assert expired == [(2, "b")] and table.get(2) is None
    now[0] = 18.5
    assert table.expire() == [1] and len(table) == 0


def test_put_returns_replaced_and_pop_removes():
    table = StreamTable(ttl_s=60)
    assert table.put(7, "x") is None
    assert table.put(7, "y") == "x"
    assert table.pop(7) == "y"
    assert table.pop(7) is None and table.get(7) is None
