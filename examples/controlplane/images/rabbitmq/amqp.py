#!/usr/bin/env python3
"""The example's AMQP client (Debian's python3-pika), in the rabbitmq image.

  amqp.py publish HOST QUEUE BODY   one persistent message, confirmed by the broker
  amqp.py get HOST QUEUE            takes one message and prints its body (exit 1: none)
  amqp.py load HOST QUEUE DIR       publishes a confirmed message every
                                    AMQP_INTERVAL seconds (0.1) until killed; one
                                    line a message in DIR/writes: "N START_NS END_NS ok|fail",
                                    the errors in DIR/errors

The queues are durable quorum queues (a copy on each member), declared by
whoever comes first. AMQP_USER and AMQP_PASSWORD are the credentials
(default guest/guest).
"""

import os
import sys
import time

import pika


def connect(host):
    credentials = pika.PlainCredentials(
        os.environ.get("AMQP_USER", "guest"), os.environ.get("AMQP_PASSWORD", "guest")
    )
    params = pika.ConnectionParameters(
        host=host,
        credentials=credentials,
        connection_attempts=1,
        socket_timeout=3,
        blocked_connection_timeout=5,
        heartbeat=10,
    )
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue=QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    return connection, channel


def publish(channel, body):
    # With confirms on, basic_publish returns once the broker has taken it
    # (the quorum queue's majority has it) and raises otherwise.
    channel.basic_publish(
        exchange="",
        routing_key=QUEUE,
        body=body.encode(),
        properties=pika.BasicProperties(delivery_mode=2),
        mandatory=True,
    )


def load(host, directory):
    interval = float(os.environ.get("AMQP_INTERVAL", "0.1"))
    out = open(os.path.join(directory, "writes"), "a", buffering=1)
    errors = open(os.path.join(directory, "errors"), "a", buffering=1)
    connection = None
    n = 0
    while True:
        start = time.time_ns()
        n += 1
        result = "fail"
        # A message counts as failed when three tries within 5 s could not
        # have it confirmed; a connection the broker closed (a member
        # draining for its stop) is made again at once, as clients do.
        for _ in range(3):
            try:
                if connection is None or connection.is_closed:
                    connection, channel = connect(host)
                publish(channel, f"load {n}")
                result = "ok"
                break
            except Exception as e:  # every failure counts, whatever its kind
                errors.write(f"{time.time_ns()} {n} {type(e).__name__}: {e}".replace("\n", " ") + "\n")
                try:
                    if connection is not None and connection.is_open:
                        connection.close()
                except Exception:
                    pass
                connection = None
                if time.time_ns() - start > 5e9:
                    break
        out.write(f"{n} {start} {time.time_ns()} {result}\n")
        time.sleep(max(0.0, interval - (time.time_ns() - start) / 1e9))


def main():
    global QUEUE
    if len(sys.argv) < 4 or sys.argv[1] not in ("publish", "get", "load"):
        sys.exit(__doc__)
    command, host, QUEUE = sys.argv[1:4]
    if command == "load":
        load(host, sys.argv[4])
    connection, channel = connect(host)
    if command == "publish":
        publish(channel, sys.argv[4])
        print("published")
    else:
        method, _properties, body = channel.basic_get(queue=QUEUE, auto_ack=True)
        if method is None:
            print(f"no message in {QUEUE}", file=sys.stderr)
            sys.exit(1)
        print(body.decode())
    connection.close()


QUEUE = ""
if __name__ == "__main__":
    main()
