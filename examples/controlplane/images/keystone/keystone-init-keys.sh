#!/bin/bash
# keystone-init-keys: makes the fernet and credential key repositories in
# KEYSTONE_KEYS_DIR (default /etc/keystone/keys), each only if it holds no
# key: run again, it changes nothing. Every member reads the same keys (a
# token one signs, another validates), so on several hosts the directory
# must be copied to each (the example's simulated hosts share one path).
set -euo pipefail
keys=${KEYSTONE_KEYS_DIR:-/etc/keystone/keys}
for repo in fernet credential; do
  dir=$keys/$repo
  mkdir -p "$dir"
  chown keystone:keystone "$dir"
  chmod 700 "$dir"
  if [ -e "$dir/0" ]; then
    echo "keystone-init-keys: $dir holds keys; kept"
    continue
  fi
  keystone-manage "${repo}_setup" --keystone-user keystone --keystone-group keystone
  echo "keystone-init-keys: $dir made: $(ls "$dir" | xargs)"
done
