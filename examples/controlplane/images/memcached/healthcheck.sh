#!/bin/bash
# Healthy when memcached answers `version` on its port.
set -eu
exec 3<>/dev/tcp/127.0.0.1/11211
printf 'version\r\n' >&3
read -r -t 2 reply <&3
case "$reply" in
VERSION*) exit 0 ;;
*) echo "memcached answered: ${reply:-nothing}"; exit 1 ;;
esac
