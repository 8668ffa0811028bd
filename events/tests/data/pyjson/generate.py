#!/usr/bin/env python3
"""Regenerate the expected outputs that events/tests/pyjson.rs compares against.

The point of these fixtures is that they come from CPython itself, not from our
understanding of it: each `*.txt` file is exactly what `json.dumps(value)` with
default arguments prints, which is how fedora-messaging encodes a body for the
wire. Run this once after adding or changing a file in tests/data/bus/ or an
`*.input.json` file here:

    python3 events/tests/data/pyjson/generate.py

For every file in tests/data/bus/ it writes:
  <stem>.body.txt   json.dumps() of the message body ("body", or "msg" for a
                    legacy fedmsg file)
  <stem>.whole.txt  json.dumps() of the whole file as loaded
For every `<name>.input.json` here it writes `<name>.txt`, json.dumps() of it.

The files are written without a trailing newline; ensure_ascii makes them pure
ASCII.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
BUS = HERE.parents[3] / "tests" / "data" / "bus"


def write(path, value):
    path.write_text(json.dumps(value), encoding="ascii")


def main():
    for src in sorted(BUS.glob("*.json")):
        doc = json.loads(src.read_text(encoding="utf-8"))
        body = doc["body"] if "body" in doc else doc["msg"]
        write(HERE / f"{src.stem}.body.txt", body)
        write(HERE / f"{src.stem}.whole.txt", doc)
    for src in sorted(HERE.glob("*.input.json")):
        value = json.loads(src.read_text(encoding="utf-8"))
        write(HERE / (src.name[: -len(".input.json")] + ".txt"), value)


if __name__ == "__main__":
    main()
