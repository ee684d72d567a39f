import json


def parse_events(payload):
    """Webhook payload -> list of (type, id) tuples."""
    data = json.loads(payload)
    return [(e["type"], e["data"]["id"]) for e in data["events"]]
