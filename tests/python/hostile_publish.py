"""Publish one message with hostile AMQP headers, the way any pika client can.

    hostile_publish.py AMQP_URL ROUTING_KEY MESSAGE_ID SHAPE SIZE BODY_FILE

SHAPE is what the headers look like (besides the usual fedora-messaging ones):
  tables   a header nesting SIZE field tables: {"deep": {"": {"": ...}}}
  arrays   a header nesting SIZE field arrays: {"deep": [[[...]]]}
  mixed    SIZE levels alternating tables and arrays
  wide     SIZE flat headers
  names    SIZE headers with 255-byte names (the longest AMQP short string)
  value    one header whose value is a string of SIZE bytes
  none     no headers at all
SIZE may be "max": the deepest or largest that fits in one 128 KiB frame.

Used by worker/tests/hostile.rs. pika encodes tables recursively, so the
recursion limit and the thread's stack are raised for the deep shapes.
"""

import sys
import threading

import pika

FRAME = 131072
# Room for the other properties and the usual headers in the header frame.
SPARE = 2048


def usual():
    return {
        "fedora_messaging_schema": "base.message",
        "fedora_messaging_severity": 20,
        "sent-at": "2026-12-07T10:00:00+00:00",
    }


def nest(shape, depth):
    # Built inside out, without recursion.
    value = "bottom"
    for level in range(depth):
        if shape == "tables" or (shape == "mixed" and level % 2 == 0):
            value = {"": value}
        else:
            value = [value]
    return value


def max_depth(shape):
    # A table level costs 6 bytes (empty name, type, length); an array level 5.
    per_level = {"tables": 6, "arrays": 5, "mixed": 5.5}[shape]
    return int((FRAME - SPARE) / per_level)


def headers_for(shape, size):
    if shape == "none":
        return None
    headers = usual()
    if shape in ("tables", "arrays", "mixed"):
        depth = max_depth(shape) if size == "max" else int(size)
        headers["deep"] = nest(shape, depth)
    elif shape == "wide":
        count = (FRAME - SPARE) // 24 if size == "max" else int(size)
        for i in range(count):
            headers[f"h{i:07d}"] = i
    elif shape == "names":
        count = (FRAME - SPARE) // 270 if size == "max" else int(size)
        for i in range(count):
            headers[f"{i:07d}".ljust(255, "n")] = True
    elif shape == "value":
        length = FRAME - SPARE if size == "max" else int(size)
        headers["huge"] = "v" * length
    else:
        raise SystemExit(f"unknown shape {shape}")
    return headers


def main():
    url, routing_key, message_id, shape, size, body_file = sys.argv[1:7]
    with open(body_file, "rb") as f:
        body = f.read()
    headers = headers_for(shape, size)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(
        exchange="amq.topic",
        routing_key=routing_key,
        body=body,
        properties=pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            message_id=message_id,
            headers=headers,
        ),
    )
    connection.close()
    print("published", flush=True)


if __name__ == "__main__":
    sys.setrecursionlimit(1_000_000)
    threading.stack_size(512 * 1024 * 1024)
    result = {}

    def run():
        try:
            main()
        except BaseException as error:  # reported below, with the exit code
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        print(f"error: {result['error']!r}", file=sys.stderr, flush=True)
        sys.exit(1)
