#!/usr/bin/env python3
"""Build datagrepper-v2-page.json, a small datagrepper `/v2/search` answer.

The shape follows datagrepper's `raw()` view, which serves both `/raw` and
`/v2/search`: the page is `{"raw_messages", "total", "pages", "count",
"arguments"}`, and on `/v2/` each entry of `raw_messages` is datanommer's
`Message.as_fedora_message_dict()`: `{"body", "headers", "id", "queue",
"topic"}` with `queue` null, no `priority`, and a `sent-at` header added from
the database timestamp when the message had none (fedmsg-era messages).

The entries are real messages from tests/data/bus/; the legacy fedmsg one is
converted the way datanommer stores and serves it. Run from anywhere:

    python3 events/tests/data/make_datagrepper_page.py
"""
import datetime
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
BUS = HERE.parents[2] / "tests" / "data" / "bus"


def as_fedora_message_dict(doc):
    if "msg" in doc:  # legacy fedmsg, as datanommer serves it
        headers = dict(doc.get("headers") or {})
        when = datetime.datetime.fromtimestamp(doc["timestamp"], datetime.timezone.utc)
        headers.setdefault("sent-at", when.isoformat())
        return dict(body=doc["msg"], headers=headers, id=doc["msg_id"], queue=None, topic=doc["topic"])
    return dict(body=doc["body"], headers=doc["headers"], id=doc["id"], queue=None, topic=doc["topic"])


def main():
    names = [
        "buildsys.tag.json",
        "pagure.git.receive-pr.json",
        "bodhi.update.status.testing.koji-build-group.build.complete.json",
        "legacy-fedmsg-git.receive.json",
    ]
    messages = [as_fedora_message_dict(json.loads((BUS / n).read_text(encoding="utf-8"))) for n in names]
    page = dict(
        raw_messages=messages,
        total=42,
        pages=11,
        count=len(messages),
        arguments=dict(
            start=1718800000.0,
            delta=600000.0,
            end=1719400000.0,
            users=[],
            packages=[],
            categories=[],
            topics=[],
            contains=[],
            not_users=[],
            not_packages=[],
            not_categories=[],
            not_topics=[],
            page=1,
            rows_per_page=4,
            order="desc",
            meta=[],
        ),
    )
    (HERE / "datagrepper-v2-page.json").write_text(json.dumps(page, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
