#!/bin/sh
# Healthy when the RabbitMQ application runs on this member and no resource
# alarm (memory, disk) of its own blocks publishers. Each check is a CLI run,
# an Erlang VM of its own (a second or two of CPU; far more on a loaded
# host, hence the example's long timeout), run as root with root's copy of
# the cookie rather than through Debian's su wrapper.
set -eu
export HOME=/root
/usr/lib/rabbitmq/bin/rabbitmq-diagnostics -q check_running
/usr/lib/rabbitmq/bin/rabbitmq-diagnostics -q check_local_alarms
