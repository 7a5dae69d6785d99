#!/bin/sh
# A node that Puppet configures: Debian's puppet-agent, run by dockstack's
# registration (`puppet agent -t`, inside this container) once the container
# is registered; nothing else runs here. Configured from its environment:
#
#   PUPPET_SERVER  the master's name, written as `server` in puppet.conf, so
#                  that `puppet agent -t` needs no --server (default: none;
#                  Puppet's own default is `puppet`)
#
# The agent's certname is the container's FQDN (`hostname -f`: dockstack
# gives a container its name and domain), the name the registration writes
# in site.pp and cleans on the master.
#
# Given a command, the image runs it instead. This script waits as PID 1
# and ends on Docker's SIGTERM.
set -eu

if [ -n "${PUPPET_SERVER:-}" ]; then
  case "$PUPPET_SERVER" in
  *[!A-Za-z0-9.-]* | -*)
    echo "entrypoint: PUPPET_SERVER is not a host name: $PUPPET_SERVER" >&2
    exit 1
    ;;
  esac
  printf '[main]\nserver = %s\n' "$PUPPET_SERVER" >/etc/puppet/puppet.conf
fi
[ "$#" -gt 0 ] && exec "$@"
trap 'exit 0' TERM INT
sleep infinity &
wait $!
