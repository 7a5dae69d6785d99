#!/bin/sh
# dnsmasq as the cluster's DNS, configured from its environment:
#
#   DNS_DOMAIN     the local domain: answered from the hosts file alone
#                  (unknown names are NXDOMAIN, never forwarded)
#   DNS_HOSTSFILE  the hosts file dockstack's registration writes
#                  (default /etc/dnsmasq.d/dockstack.dns); re-read on SIGHUP
#   DNS_UPSTREAM   resolvers for every other name, comma or space separated;
#                  none: nothing else is answered
#
# Arguments are appended to dnsmasq's. dnsmasq replaces this script (exec)
# and stops on Docker's SIGTERM.
set -eu

hostsfile=${DNS_HOSTSFILE:-/etc/dnsmasq.d/dockstack.dns}
mkdir -p "$(dirname "$hostsfile")"
[ -e "$hostsfile" ] || : >"$hostsfile"

set -- --keep-in-foreground --log-facility=- --user=root --no-hosts \
  --addn-hosts="$hostsfile" --no-resolv "$@"
if [ -n "${DNS_DOMAIN:-}" ]; then
  set -- --local="/$DNS_DOMAIN/" --domain="$DNS_DOMAIN" --expand-hosts "$@"
fi
for server in $(echo "${DNS_UPSTREAM:-}" | tr ',' ' '); do
  set -- --server="$server" "$@"
done
exec dnsmasq "$@"
