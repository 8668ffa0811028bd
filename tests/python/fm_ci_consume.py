"""Consume Fedora CI messages the way a Fedora CI consumer would, and check their bodies.

Binds a fresh exclusive queue to amq.topic with "org.centos.prod.ci.#", prints
"ready", then decodes each delivery with fedora_messaging.message.get_message
(the library's own decoding). The messages' headers name the class
ci_messages.CIMessageV1 (PyPI ci-messages), which fedora-messaging finds by its
entry point and which validates the body against
SCHEMA_DIR/<last three parts of the topic>.json, as on a Fedora machine with
the schemas installed; a body it refuses is printed with the reason in
"decode_error". The body is also checked here with a draft-07 validator that
checks formats too. One JSON line per message, with the class that decoded it
and the list of schema errors (empty when the body is valid).

Stops after COUNT messages. If nothing arrives for TIMEOUT_SECONDS (default
120) it exits non-zero, except with COUNT 0, which means "print whatever
arrives until the timeout, then exit 0".

Usage: fm_ci_consume.py AMQP_URL SCHEMA_DIR COUNT [TIMEOUT_SECONDS]
"""
import json
import os
import sys

import ci_messages.config
import pika
from fedora_messaging.exceptions import ValidationError
from fedora_messaging.message import get_message
from jsonschema import Draft7Validator

if len(sys.argv) not in (4, 5):
    sys.exit(__doc__.strip().splitlines()[-1])
url, schema_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 120.0
if count < 0 or timeout <= 0:
    sys.exit("COUNT must be 0 or more and TIMEOUT_SECONDS more than 0")

# Where CIMessageV1 reads its schemas (otherwise /usr/share/message-schemas/ci).
ci_messages.config.CONFIG.set("main", "schemapath", os.path.abspath(schema_dir))
validators = {}


def schema_errors(topic, body):
    suffix = ".".join(topic.split(".")[-3:])
    if suffix not in validators:
        path = os.path.join(schema_dir, suffix + ".json")
        try:
            with open(path) as f:
                schema = json.load(f)
        except FileNotFoundError:
            validators[suffix] = None
        else:
            Draft7Validator.check_schema(schema)
            validators[suffix] = Draft7Validator(
                schema, format_checker=Draft7Validator.FORMAT_CHECKER
            )
    validator = validators[suffix]
    if validator is None:
        return [f"no schema file {suffix}.json in {schema_dir}"]
    errors = sorted(validator.iter_errors(body), key=lambda e: (e.json_path, e.message))
    return [f"{e.json_path}: {e.message}" for e in errors]


connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
queue = channel.queue_declare("", exclusive=True).method.queue
channel.queue_bind(queue, "amq.topic", "org.centos.prod.ci.#")
print("ready", flush=True)
received = 0
for method, properties, body in channel.consume(queue, inactivity_timeout=timeout):
    if method is None:
        if count == 0:
            break
        connection.close()
        sys.exit(
            f"timed out: no message for {timeout:g} s after {received} of {count} messages"
        )
    line = {
        "id": properties.message_id,
        "topic": method.routing_key,
        "headers": properties.headers,
        "delivery_mode": properties.delivery_mode,
        "content_type": properties.content_type,
    }
    try:
        msg = get_message(method.routing_key, properties, body)
    except ValidationError as error:
        line["body"] = json.loads(body)
        line["decode_error"] = str(error)
    else:
        line.update(
            id=msg.id,
            topic=msg.topic,
            headers=msg._headers,
            body=msg.body,
            summary=msg.summary,
        )
        line["class"] = f"{type(msg).__module__}.{type(msg).__name__}"
    line["schema_errors"] = schema_errors(line["topic"], line["body"])
    print(json.dumps(line), flush=True)
    channel.basic_ack(method.delivery_tag)
    received += 1
    if received == count:
        break
connection.close()
