#!/bin/sh
# Healthy only when this member is Synced with its cluster and ready for
# queries: a joiner, a donor (Donor/Desynced) or a member outside the primary
# component is not. Run inside the container (root over the socket).
set -eu
status=$(mariadb --protocol=socket -uroot -N -B --connect-timeout=3 -e \
  "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_ready')")
state=$(echo "$status" | awk '$1 == "wsrep_local_state_comment" { print $2 }')
ready=$(echo "$status" | awk '$1 == "wsrep_ready" { print $2 }')
if [ "$state" = Synced ] && [ "$ready" = ON ]; then
  exit 0
fi
echo "wsrep_local_state_comment=${state:-?} wsrep_ready=${ready:-?}"
exit 1
