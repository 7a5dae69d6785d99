#!/bin/sh
# wsrep_sst_method "rsync_ist": MariaDB's rsync state transfer, with a quick
# donor side when the joiner only needs an incremental one (IST).
#
# A donor is Donor/Desynced from the joiner's request until its SST script
# says "done", even when Galera tells it no state dump is needed (--bypass)
# and sends the missing write-sets itself. Debian's wsrep_sst_rsync spends
# that time parsing the server's configuration through several
# my_print_defaults runs before it sends the joiner one small file; the donor
# left the Synced members for 1.6 to 2.3 s of every member's replacement.
# This side of a bypass does only what the joiner's wsrep_sst_rsync waits
# for: the "rsync_sst_complete" file with the donor's state and the bypass
# tag, sent to the joiner's rsync module. Everything else (every joiner, a
# full transfer, TLS settings this path does not know) is the stock script.
set -eu

stock=/usr/bin/wsrep_sst_rsync
role="" addr="" gtid="" domain="" bypass=0 other=0
for arg in "$@"; do
  case "${prev:-}" in
  --role) role=$arg ;;
  --address) addr=$arg ;;
  --gtid) gtid=$arg ;;
  --gtid-domain-id) domain=$arg ;;
  esac
  prev=$arg
  case "$arg" in
  --bypass) bypass=1 ;;
  # A secret or a TLS tunnel would need the stock script's handling.
  --remote-password* | --ssl* | --tls*) other=1 ;;
  esac
done

if [ "$role" != donor ] || [ "$bypass" != 1 ] || [ "$other" != 0 ] ||
  [ -z "$addr" ] || [ -z "$gtid" ] ||
  grep -qsE '^[[:space:]]*(ssl|tkey|tcert|encrypt)' /etc/mysql/mariadb.conf.d/*.cnf; then
  exec "$stock" "$@"
fi

state="$gtid${domain:+ $domain}"
echo "WSREP_SST: [INFO] Bypassing state dump: IST from $gtid to $addr (rsync_ist)" >&2
# The server goes on applying write-sets as soon as it reads this.
echo continue
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s\nbypass\n' "$state" >"$dir/rsync_sst_complete"
rsync --archive --quiet --checksum "$dir/rsync_sst_complete" "rsync://$addr" >&2
echo "done $state"
