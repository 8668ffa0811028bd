"""Publish one message with the fedora-messaging library, N times, and print its id.

Usage: fm_publish.py CONFIG_TOML TOPIC TIMES
"""
import sys

from fedora_messaging import api, config, message

config.conf.load_config(sys.argv[1])
msg = message.Message(topic=sys.argv[2], body={"package": "optee_os", "source": "fedora-messaging"})
for _ in range(int(sys.argv[3])):
    api.publish(msg)
print(msg.id, flush=True)
