"""The Python pipeline the ingest benchmark compares the service with.

The way Packit Service takes Fedora CI events off the bus: a fedora-messaging
consumer hands each message to Celery (`send_task` on a RabbitMQ broker) and
returns, which acknowledges it; a Celery worker then records the message in
PostgreSQL, deduplicated by message id (`INSERT ... ON CONFLICT DO NOTHING`,
one transaction per task, as a task does). Tasks are acknowledged late, so a
worker that dies does not lose one.

Run as a program, it starts the Celery worker (a child process, prefork, one
process per core unless --concurrency), waits until the worker records a
first row, then consumes COUNT messages from QUEUE (already declared and
filled) with fedora_messaging.api.consume and waits until every one of them
is in the table. The schema packages of the messages are not installed, so
fedora-messaging validates no body. It prints one JSON line:
{"messages": COUNT, "seconds": <consumer start to last row>, "consumed_seconds": <consumer start to the
COUNT-th message handed on>}. The worker's start is not timed.

Usage: celery_ingest.py AMQP_URL PG_URL QUEUE COUNT [--prefetch N] [--concurrency N]
(AMQP_URL with its vhost; the bindings of QUEUE are left as they are).
"""
import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time

import psycopg
from celery import Celery

TABLE = "python_inbox"
TASK = "ingest.record"
READY_ID = "celery-ingest-ready"

app = Celery("celery_ingest", broker=os.environ.get("CELERY_INGEST_BROKER", "memory://"))
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_connection = None


def _db():
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["CELERY_INGEST_PG"], autocommit=True)
    return _connection


@app.task(name=TASK)
def record(message_id, topic, headers, body):
    _db().execute(
        f"INSERT INTO {TABLE} (message_id, topic, headers, body) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO NOTHING",
        (message_id, topic, json.dumps(headers), json.dumps(body)),
    )


def count_rows(db):
    return db.execute(f"SELECT count(*) FROM {TABLE} WHERE message_id <> %s", (READY_ID,)).fetchone()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("amqp_url")
    parser.add_argument("pg_url")
    parser.add_argument("queue")
    parser.add_argument("count", type=int)
    parser.add_argument("--prefetch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    db = psycopg.connect(args.pg_url, autocommit=True)
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (message_id text PRIMARY KEY, topic text NOT NULL,"
        " headers jsonb NOT NULL, body jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
    )
    db.execute(f"TRUNCATE {TABLE}")

    env = dict(os.environ, CELERY_INGEST_BROKER=args.amqp_url, CELERY_INGEST_PG=args.pg_url)
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen(
        # -W: no warning that the worker runs as root (the benchmark machines run as root).
        [sys.executable, "-W", "ignore::UserWarning", "-m", "celery", "-A", "celery_ingest", "worker",
         f"--concurrency={args.concurrency}", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=here, env=env, stdin=subprocess.DEVNULL,
    )
    try:
        app.conf.broker_url = args.amqp_url
        # The worker is ready when it has recorded a first task.
        app.send_task(TASK, args=[READY_ID, "ready", {}, {}])
        deadline = time.monotonic() + 120
        while not db.execute(f"SELECT 1 FROM {TABLE} WHERE message_id = %s", (READY_ID,)).fetchone():
            if worker.poll() is not None:
                sys.exit(f"the Celery worker exited ({worker.returncode}) before it was ready")
            if time.monotonic() > deadline:
                sys.exit("the Celery worker did not record its first task within 120 s")
            time.sleep(0.05)

        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as conf:
            conf.write(
                f'amqp_url = "{args.amqp_url}"\n'
                "passive_declares = true\n"
                '[client_properties]\napp = "celery-ingest benchmark"\n'
                f"[qos]\nprefetch_size = 0\nprefetch_count = {args.prefetch}\n"
                f'[queues."{args.queue}"]\ndurable = true\nauto_delete = false\n'
                "exclusive = false\narguments = {}\n"
            )
        os.environ["FEDORA_MESSAGING_CONF"] = conf.name
        # The example messages' schema packages are not installed (so no body is validated,
        # which is less work than Fedora's consumers do), and the older captured messages carry
        # no schema header: the complaint fedora-messaging logs about each is left out.
        logging.getLogger("fedora_messaging.message").setLevel(logging.CRITICAL)
        # Imported after the configuration file is named: fedora-messaging reads it once.
        from fedora_messaging import api
        from fedora_messaging.exceptions import HaltConsumer

        handed = 0
        consumed_at = None
        started = time.monotonic()

        def callback(message):
            nonlocal handed, consumed_at
            app.send_task(
                TASK,
                args=[message.id, message.topic, message._headers, message.body],
            )
            handed += 1
            if handed == args.count:
                consumed_at = time.monotonic()
                raise HaltConsumer(exit_code=0, requeue=False)

        try:
            api.consume(callback, bindings=[], queues={args.queue: {
                "durable": True, "auto_delete": False, "exclusive": False, "arguments": {}}})
        except HaltConsumer as halt:
            if halt.exit_code != 0:
                raise
        os.unlink(conf.name)

        while (rows := count_rows(db)) < args.count:
            if worker.poll() is not None:
                sys.exit(f"the Celery worker exited ({worker.returncode}) with {rows} of {args.count} rows")
            if time.monotonic() - started > args.timeout:
                sys.exit(f"after {args.timeout:g} s the table holds {rows} of {args.count} messages")
            time.sleep(0.02)
        finished = time.monotonic()
        print(json.dumps({
            "messages": args.count,
            "seconds": finished - started,
            "consumed_seconds": (consumed_at or finished) - started,
        }), flush=True)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


if __name__ == "__main__":
    main()
