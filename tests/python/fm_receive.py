"""Receive messages the way a fedora-messaging consumer parses them.

Binds a fresh queue to amq.topic with "#", prints "ready", then for each of
COUNT deliveries runs fedora_messaging.message.get_message (the library's own
decoding and schema validation) and prints the result as one JSON line.

Usage: fm_receive.py AMQP_URL COUNT
"""
import json
import sys

import pika
from fedora_messaging.message import get_message

url, count = sys.argv[1], int(sys.argv[2])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
queue = channel.queue_declare("", exclusive=True).method.queue
channel.queue_bind(queue, "amq.topic", "#")
print("ready", flush=True)
received = 0
for method, properties, body in channel.consume(queue, inactivity_timeout=60):
    if method is None:
        sys.exit("timed out waiting for messages")
    msg = get_message(method.routing_key, properties, body)
    print(json.dumps({
        "id": msg.id,
        "topic": msg.topic,
        "headers": msg._headers,
        "body": msg.body,
        "content_type": properties.content_type,
        "content_encoding": properties.content_encoding,
        "delivery_mode": properties.delivery_mode,
    }), flush=True)
    channel.basic_ack(method.delivery_tag)
    received += 1
    if received == count:
        break
connection.close()
