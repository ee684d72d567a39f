import json

from events import parse_events


def test_two_events():
    payload = json.dumps({"events": [{"type": "push", "data": {"id": 1}}, {"type": "tag", "data": {"id": 2}}]})
    assert parse_events(payload) == [("push", 1), ("tag", 2)]


def test_ping_has_no_data():
    payload = json.dumps({"events": [{"type": "ping"}]})
    assert parse_events(payload) == [("ping", None)]


def test_empty_payload():
    assert parse_events("{}") == []
