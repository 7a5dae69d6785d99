#!/bin/sh
# Healthy when the RabbitMQ application runs on this member and no resource
# alarm (memory, disk) of its own blocks publishers. Each check is a CLI run
# (an Erlang VM of its own, about a second on a small host).
set -eu
rabbitmq-diagnostics -q check_running
rabbitmq-diagnostics -q check_local_alarms
