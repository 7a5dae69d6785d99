#!/bin/bash
# Debian's Puppet server (puppetserver 7, with its CA) as the registration's
# Puppet master, configured from its environment:
#
#   JAVA_ARGS               the JVM's options (default -Xms256m -Xmx512m
#                           -XX:TieredStopAtLevel=1 -XX:+UseSerialGC: a
#                           small heap, for a lab (Debian's default is 1 GB),
#                           and the start made cheaper on a few busy CPUs:
#                           the C1 compiler alone and no GC threads took
#                           the start from about 97 to 62 CPU seconds)
#   PUPPET_AUTOSIGN         true (default): every certificate request is
#                           signed at once, so a new container's first
#                           `puppet agent -t` gets its catalog; false: an
#                           operator signs (`puppetserver ca sign`). Any node
#                           that reaches port 8140 gets a certificate and its
#                           catalog: a lab's setting, never a production one.
#   PUPPET_DNS_ALT_NAMES    more names of the server's certificate, comma
#                           separated (default puppet); its FQDN is always one
#   PUPPET_JRUBY_INSTANCES  JRuby interpreters compiling catalogs (default 1)
#
# The server's certname is the container's FQDN (`hostname -f`: dockstack
# gives a container its name and domain), and `server` in puppet.conf is the
# same, so `puppetserver ca clean --certname NODE` run inside it (the
# registration's certclean) reaches this server's CA.
#
# The code is Debian's /etc/puppet/code: the production environment,
# /etc/puppet/code/environments/production, is a volume from the host that
# holds manifests/site.pp and data/common.yaml, the files dockstack's
# registration edits: Hiera's global layer, /etc/puppet/hiera.yaml, is
# written here to read the environment's data/common.yaml (Debian's reads
# nothing, and an environment without a hiera.yaml has no data layer).
# environment_timeout is 0: every catalog sees the files
# as they are. The CA (/etc/puppet/puppetserver/ca) and the server's own
# certificate (/var/lib/puppet/ssl) are made on the first start; volumes on
# them keep them across a recreate.
#
# java replaces this script (exec) as the puppet user: Docker's SIGTERM is a
# clean stop of the server.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }

certname=$(hostname -f | tr '[:upper:]' '[:lower:]')
case "$certname" in
*.*) ;;
*)
  log "the container has no domain (hostname -f says $certname): give it one (domain:)"
  exit 1
  ;;
esac
case "${PUPPET_AUTOSIGN:-true}" in
true | false) ;;
*)
  log "PUPPET_AUTOSIGN must be true or false, not ${PUPPET_AUTOSIGN}"
  exit 1
  ;;
esac
instances=${PUPPET_JRUBY_INSTANCES:-1}
if ! [[ "$instances" =~ ^[1-9][0-9]?$ ]]; then
  log "PUPPET_JRUBY_INSTANCES must be a number from 1 to 99, not $instances"
  exit 1
fi

cat >/etc/puppet/puppet.conf <<CONF
# Written by the image's entrypoint at every start (see its top).
[main]
certname = $certname
server = $certname
[server]
autosign = ${PUPPET_AUTOSIGN:-true}
dns_alt_names = ${PUPPET_DNS_ALT_NAMES:-puppet}
environment_timeout = 0
CONF

sed -i -E "s|^( *)#? *max-active-instances:.*|\1max-active-instances: $instances|" \
  /etc/puppet/puppetserver/conf.d/puppetserver.conf

cat >/etc/puppet/hiera.yaml <<'HIERA'
# Written by the image's entrypoint at every start (see its top).
version: 5
defaults:
  datadir: /etc/puppet/code/environments/%{::environment}/data
  data_hash: yaml_data
hierarchy:
  - name: common (registered_services, written by dockstack's registration)
    path: common.yaml
HIERA

production=/etc/puppet/code/environments/production
mkdir -p "$production/manifests" "$production/data" /etc/puppet/puppetserver/ca \
  /var/lib/puppet/ssl /var/lib/puppetserver /var/log/puppetserver /run/puppetserver
chown -R puppet:puppet /etc/puppet/puppetserver/ca /var/lib/puppet /var/lib/puppetserver \
  /var/log/puppetserver /run/puppetserver

log "puppetserver as $certname (autosign ${PUPPET_AUTOSIGN:-true}, ${JAVA_ARGS:=-Xms256m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC})"
# What systemd's unit runs (Debian's /lib/systemd/system/puppetserver.service).
# shellcheck disable=SC2086
exec setpriv --reuid=puppet --regid=puppet --init-groups \
  /usr/bin/java $JAVA_ARGS -Dlogappender=STDOUT \
  -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger \
  -Djruby.lib=/usr/share/jruby/lib \
  -XX:+CrashOnOutOfMemoryError \
  -XX:ErrorFile=/var/log/puppetserver/puppetserver_err_pid%p.log \
  -jar /usr/share/puppetserver/puppetserver.jar \
  --config /etc/puppet/puppetserver/conf.d \
  --bootstrap-config /etc/puppet/puppetserver/services.d
