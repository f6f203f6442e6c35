#!/usr/bin/env bash
# scripts/test-setup.sh — install and start the real mail peers the tests use.
#
# Usage (as root, or through sudo):
#   scripts/test-setup.sh          install what is missing, start what is stopped
#   scripts/test-setup.sh stop     stop the peers this script started
#
# What it provides, all on loopback, all under $PEER_DIR (default
# /var/lib/mailout-peers), nothing in /etc touched:
#   - Postfix, a dedicated instance (postfix -c $PEER_DIR/postfix/etc):
#       127.0.0.1:2587  submission: STARTTLS required, AUTH only after TLS,
#                       relaying only for authenticated clients
#       127.0.0.1:2465  submissions: implicit TLS (wrapper mode), AUTH required
#       127.0.0.1:2525  plain SMTP, no TLS, no AUTH: relaying denied
#                       (554 5.7.1 Relay access denied); accepts mail only
#                       for the local domain mailout.test
#     Every accepted message, whatever the recipient domain, is delivered by
#     Postfix's virtual(8) agent into one Maildir, one file per recipient,
#     with the envelope recipient in the prepended Delivered-To: header:
#       $PEER_DIR/mail/inbox/new/<file>
#   - Dovecot: the SASL back end of Postfix (PLAIN, LOGIN, CRAM-MD5), test
#     account mailout / peer-secret; and the bounce mailbox, account
#     bounces / bounce-secret, a Maildir that Postfix fills with the mail of
#     bounces.mailout.test (a campaign's VERP return path), served on
#       127.0.0.1:2143  IMAP, STARTTLS      127.0.0.1:2993  IMAPS
#       127.0.0.1:2110  POP3, STLS          127.0.0.1:2995  POP3S
#     Postfix also accepts, without AUTH, the direct-route test domains below:
#     it is their MX.
#   - Real delivery failures, so that Postfix sends real DSNs (RFC 3464) to a
#     campaign's return path, for the bounce tests:
#       unknown@reject.mailout.test  relayed to 127.0.0.1:2526, a Postfix
#                                    smtpd that answers 550 5.1.1 at RCPT
#       *@nullmx.mailout.test        5.1.10 null MX (RFC 7505)
#       *@nowhere.mailout.test       5.4.4 host or domain name not found
#     Postfix resolves names with the system's resolver, not the dnsmasq
#     below, so the last two failures come from its transport table (the
#     error(8) agent, with the words its smtp(8) client uses; submission
#     accepts them first, smtpd_reject_unlisted_recipient=no); the DSNs
#     are Postfix's own all the same.
#   - dnsmasq, a DNS server on 127.0.0.1:$DNS_PORT (UDP and TCP), answering
#     only for mailout.test and below (never forwarding anything), for the
#     direct route's interop tests (mailout send --route direct --dns
#     127.0.0.1:5354 --allow-loopback-mx --mx-port 2525):
#       mailout.test, direct.mailout.test  MX 10 mx1.mailout.test
#       fallback.mailout.test              MX 5 mx0.mailout.test (127.0.0.2:
#                                          nothing listens), MX 10 mx1
#       implicit.mailout.test              no MX, A 127.0.0.1 (implicit MX)
#       nullmx.mailout.test                MX 0 . (RFC 7505 null MX)
#       nowhere.mailout.test               NXDOMAIN
#       mx1.mailout.test                   A 127.0.0.1 (the Postfix peer)
#   - smtp-sink and smtp-source (from the postfix package), swaks.
#   - PostgreSQL, Debian's default cluster (started with pg_ctlcluster, no
#     systemd), on 127.0.0.1:5432: role mailout / pg-secret (CREATEDB) and
#     database mailout_test, for the PostgreSQL store and the fleet tests.
#     MAILOUT_PEER_PG_URL is its URL. A second cluster, "restartable" on
#     127.0.0.1:5433 with the same role and database, is for the one test
#     that restarts the server (MAILOUT_PEER_PG_RESTART_URL, and
#     MAILOUT_PEER_PG_RESTART_CLUSTER "VERSION/restartable" for pg_ctlcluster).
#   - nftables and iproute2 (nft, ip netns) for tests of blocked ports.
#   - Chromium (Debian's chromium, run headless by internal/browsertest
#     through the DevTools protocol: no chromium-driver needed) and axe-core
#     (version pinned in AXE_VERSION below) from the npm registry, installed
#     with npm into $PEER_DIR/axe, for the browser tests' accessibility
#     checks. Neither is shipped with mailout; the repository holds no
#     node_modules.
# Endpoints and credentials are written to $PEER_DIR/env (KEY=value lines),
# which scripts/test.sh sources and internal/peertest reads.
#
# Idempotent: when the packages are installed and the peers run with the
# current configuration, it only checks and exits (well under a second).
# No systemd needed: the daemons are started directly.
set -euo pipefail

PEER_DIR=${MAILOUT_PEER_DIR:-/var/lib/mailout-peers}
SUBMISSION_PORT=2587
REJECT_PORT=2526
IMAP_PORT=2143
IMAPS_PORT=2993
POP3_PORT=2110
POP3S_PORT=2995
BOUNCE_USER=bounces
BOUNCE_PASS=bounce-secret # test-only credential, never used outside loopback
SMTPS_PORT=2465
PLAIN_PORT=2525
PEER_USER=mailout
PEER_PASS=peer-secret # test-only credential, never used outside loopback
LOCAL_DOMAIN=mailout.test
# 5354, not 5353: 5353 is multicast DNS (avahi) on many desktops.
DNS_PORT=5354
# PostgreSQL: Debian's default cluster on 127.0.0.1:5432, a role and a
# database for the tests (each test works in a schema of its own).
PG_USER=mailout
PG_PASS=pg-secret # test-only credential, never used outside loopback
PG_DB=mailout_test
# A second cluster, only for the test that restarts PostgreSQL mid-campaign:
# restarting the shared one would cut off the tests of other packages that
# run at the same time.
PG_RESTART_CLUSTER=restartable
PG_RESTART_PORT=5433
export PATH=$PATH:/usr/sbin:/sbin

# Pinned: a new axe-core release may add rules, and a browser test should
# not start failing without a change of ours.
AXE_VERSION=4.14.1

PACKAGES=(postfix sasl2-bin libsasl2-modules dnsmasq-base nftables iproute2 dovecot-core
	dovecot-imapd dovecot-pop3d swaks openssl ca-certificates gcc libc6-dev
	chromium fonts-dejavu-core postgresql)

log() { printf 'test-setup: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

if [[ ${EUID} -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo --preserve-env=MAILOUT_PEER_DIR bash "$0" "$@"
	fi
	die "must run as root (it installs Debian packages and starts daemons)"
fi

PF_ETC=$PEER_DIR/postfix/etc
PF_SPOOL=$PEER_DIR/postfix/spool
PF_DATA=$PEER_DIR/postfix/data
PF_LOG=$PEER_DIR/postfix/maillog
DC_DIR=$PEER_DIR/dovecot
DC_CONF=$DC_DIR/dovecot.conf
DC_RUN=$DC_DIR/run
TLS_DIR=$PEER_DIR/tls
MAIL_DIR=$PEER_DIR/mail
INBOX=$MAIL_DIR/inbox
BOUNCE_BOX=$MAIL_DIR/$BOUNCE_USER
ENV_FILE=$PEER_DIR/env
LOCK_FILE=$PEER_DIR/lock
DNS_DIR=$PEER_DIR/dnsmasq
DNS_CONF=$DNS_DIR/dnsmasq.conf
DNS_PID=$DNS_DIR/dnsmasq.pid

# ---------------------------------------------------------------- stop
dovecot_pid() {
	local pid
	[[ -r $DC_RUN/master.pid ]] || return 1
	pid=$(<"$DC_RUN/master.pid")
	# A pid file left by a previous boot may name an unrelated process.
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
	echo "$pid"
}

dnsmasq_pid() {
	local pid
	[[ -r $DNS_PID ]] || return 1
	pid=$(<"$DNS_PID")
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == dnsmasq ]] || return 1
	echo "$pid"
}

postfix_running() {
	[[ -r $PF_ETC/main.cf ]] && postfix -c "$PF_ETC" status >/dev/null 2>&1
}

if [[ ${1:-} == stop ]]; then
	if postfix_running; then
		postfix -c "$PF_ETC" stop >/dev/null 2>&1 || true
	fi
	if pid=$(dovecot_pid); then
		kill "$pid" || true
	fi
	if pid=$(dnsmasq_pid); then
		kill "$pid" || true
	fi
	for v in $(ls /etc/postgresql 2>/dev/null); do
		for c in $(ls "/etc/postgresql/$v"); do
			pg_ctlcluster --skip-systemctl-redirect "$v" "$c" stop -m fast >/dev/null 2>&1 || true
		done
	done
	# Both shut down asynchronously: wait (up to 20 s) until they are gone.
	for ((i = 0; i < 200; i++)); do
		postfix_running || dovecot_pid >/dev/null || dnsmasq_pid >/dev/null || break
		sleep 0.1
	done
	if postfix_running || dovecot_pid >/dev/null || dnsmasq_pid >/dev/null; then
		die "the peers did not stop within 20 s"
	fi
	log "peers stopped"
	exit 0
elif [[ $# -gt 0 ]]; then
	die "unknown argument: $1 (usage: $0 [stop])"
fi

# ---------------------------------------------------------------- packages
missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done
# npm installs axe-core below. Machines with Node.js from elsewhere have it
# already (and Debian's npm package would conflict with theirs).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Leave /etc/postfix unconfigured: this script runs its own instance.
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	echo "postfix postfix/mailname string $LOCAL_DOMAIN" | debconf-set-selections
	# Keep the packages' own daemons (system dovecot, postfix) from being
	# started by their maintainer scripts: nothing runs but what we start.
	# See invoke-rc.d(8): exit code 101 of policy-rc.d means "action forbidden".
	policy=/usr/sbin/policy-rc.d
	created_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created_policy=1
	fi
	apt_rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } </dev/null || apt_rc=$?
	if [[ -n $created_policy ]]; then
		rm -f "$policy"
	fi
	((apt_rc == 0)) || die "apt-get failed (exit $apt_rc)"
fi
for cmd in postfix postconf smtp-sink smtp-source dovecot openssl dnsmasq nft ip chromium npm pg_ctlcluster psql; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found after install"
done

# ---------------------------------------------------------------- axe-core
# Into its own prefix, outside any source tree; reinstalled only when the
# version there is not the pinned one.
AXE_DIR=$PEER_DIR/axe
AXE_JS=$AXE_DIR/node_modules/axe-core/axe.min.js
axe_version() {
	local pkg=$AXE_DIR/node_modules/axe-core/package.json
	[[ -r $pkg && -s $AXE_JS ]] || return 1
	sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$pkg"
}
if [[ $(axe_version || true) != "$AXE_VERSION" ]]; then
	log "installing axe-core $AXE_VERSION with npm into $AXE_DIR"
	install -d -m 755 -o root -g root "$AXE_DIR"
	npm install --prefix "$AXE_DIR" --no-audit --no-fund --no-save --no-package-lock \
		--loglevel=error "axe-core@$AXE_VERSION" </dev/null >&2 ||
		die "npm install axe-core@$AXE_VERSION failed"
	[[ $(axe_version || true) == "$AXE_VERSION" ]] || die "axe-core $AXE_VERSION not found in $AXE_DIR after npm install"
fi

# ---------------------------------------------------------------- files
# write_if_changed FILE MODE TAG: stdin becomes FILE when its content
# differs; then TAG (postfix, dovecot) is marked for a reload.
pf_changed=
dc_changed=
dns_changed=
write_if_changed() {
	local file=$1 mode=$2 tag=$3 tmp
	tmp=$(mktemp "$file.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
		rm -f "$tmp"
		return 0
	fi
	mv -f "$tmp" "$file"
	case $tag in
	postfix) pf_changed=1 ;;
	dovecot) dc_changed=1 ;;
	dnsmasq) dns_changed=1 ;;
	esac
}

# Postfix checks that the queue directory's parents are root-owned and not
# group/world-writable.
install -d -m 755 -o root -g root "$PEER_DIR" "$PEER_DIR/postfix" "$PF_ETC" "$TLS_DIR" "$DC_DIR"
install -d -m 755 -o root -g root "$PF_SPOOL"
install -d -m 755 -o root -g root "$DC_RUN" "$DNS_DIR"
[[ -e $LOCK_FILE ]] || install -m 666 /dev/null "$LOCK_FILE"

# Mail is delivered as the user who ran the script through sudo, so that a
# developer's tests (not root) can read and clean it; as nobody otherwise
# (CI runs everything as root). virtual(8) refuses uids below 100.
mail_uid=65534
mail_gid=65534
if [[ ${SUDO_UID:-0} =~ ^[0-9]+$ && ${SUDO_UID:-0} -ge 1000 && ${SUDO_GID:-0} =~ ^[0-9]+$ ]]; then
	mail_uid=$SUDO_UID
	mail_gid=$SUDO_GID
fi
install -d -m 755 -o "$mail_uid" -g "$mail_gid" "$MAIL_DIR"
# The Maildir itself, made here so that tests can read it before the first
# delivery (virtual(8) would create it 0700).
for d in "$INBOX" "$INBOX/new" "$INBOX/cur" "$INBOX/tmp" "$BOUNCE_BOX" "$BOUNCE_BOX/new" "$BOUNCE_BOX/cur" "$BOUNCE_BOX/tmp"; do
	install -d -m 755 -o "$mail_uid" -g "$mail_gid" "$d"
done

# Self-signed certificate for 127.0.0.1 and localhost (CA:TRUE so that it can
# be used directly as the trust root of a client's tls.Config).
if [[ ! -s $TLS_DIR/cert.pem || ! -s $TLS_DIR/key.pem ]]; then
	log "generating the TLS certificate"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
		-subj "/CN=localhost/O=mailout test peer" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
		-addext "extendedKeyUsage=serverAuth" \
		-keyout "$TLS_DIR/key.pem.new" -out "$TLS_DIR/cert.pem.new" 2>/dev/null
	chmod 600 "$TLS_DIR/key.pem.new"
	chmod 644 "$TLS_DIR/cert.pem.new"
	mv -f "$TLS_DIR/key.pem.new" "$TLS_DIR/key.pem"
	mv -f "$TLS_DIR/cert.pem.new" "$TLS_DIR/cert.pem"
	pf_changed=1
fi

# --- Dovecot: the auth service, listening on a socket inside Postfix's
# queue directory (smtpd_sasl_path is relative to it), and IMAP and POP3 on
# loopback for the bounce mailbox ($MAIL_DIR/<user>, Maildir).
write_if_changed "$DC_DIR/passwd" 640 dovecot <<EOF
$PEER_USER:{PLAIN}$PEER_PASS::::::
$BOUNCE_USER:{PLAIN}$BOUNCE_PASS::::::
EOF
chgrp dovecot "$DC_DIR/passwd"

write_if_changed "$DC_CONF" 644 dovecot <<EOF
# Generated by scripts/test-setup.sh: SASL back end for the test Postfix,
# and the bounce mailbox over IMAP and POP3.
protocols = imap pop3
listen = 127.0.0.1
base_dir = $DC_RUN
state_dir = $DC_DIR/state
log_path = $DC_DIR/dovecot.log
ssl = yes
ssl_cert = <$TLS_DIR/cert.pem
ssl_key = <$TLS_DIR/key.pem
mail_location = maildir:$MAIL_DIR/%n
pop3_uidl_format = %08Xu%08Xv
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
# No penalty delay after a failed AUTH: tests of "535" stay fast.
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC_DIR/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$MAIL_DIR
}
service auth {
  unix_listener $PF_SPOOL/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
}
EOF
install -d -m 750 -o root -g root "$DC_DIR/state"

# --- Postfix
write_if_changed "$PF_ETC/main.cf" 644 postfix <<EOF
# Generated by scripts/test-setup.sh: test relay for mailout's interop tests.
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory = $PF_DATA
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF_LOG
syslog_name = mailout-peer

myhostname = peer.$LOCAL_DOMAIN
mydomain = $LOCAL_DOMAIN
myorigin = \$myhostname
mydestination =
relay_domains =
mynetworks = 127.0.0.1/32
inet_interfaces = loopback-only
inet_protocols = ipv4
smtpd_peername_lookup = no
append_dot_mydomain = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
message_size_limit = 52428800

# Delivery: every message this relay accepts, whatever the recipient domain
# (default and relay transport), is stored by virtual(8) in one Maildir,
# $INBOX, one file per recipient, with the envelope recipient in the
# Delivered-To: header virtual(8) prepends. (virtual(8) does not allow
# regexp substitution in virtual_mailbox_maps, hence one Maildir for all.)
# The bounce mailbox's domain goes to its own Maildir.
virtual_mailbox_domains = $LOCAL_DOMAIN, direct.$LOCAL_DOMAIN,
	fallback.$LOCAL_DOMAIN, implicit.$LOCAL_DOMAIN, bounces.$LOCAL_DOMAIN
virtual_mailbox_base = $MAIL_DIR
virtual_mailbox_maps = regexp:$PF_ETC/vmailbox.regexp, static:inbox/
# The failures that make Postfix send DSNs (see the top of this script).
transport_maps = texthash:$PF_ETC/transport
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid
virtual_minimum_uid = 100
virtual_mailbox_limit = 0
default_transport = virtual
relay_transport = virtual

# Who may relay: only SASL-authenticated clients (RFC 4954). Everyone else
# gets "554 5.7.1 <rcpt>: Relay access denied" for non-local domains.
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_tls_auth_only = yes
smtpd_tls_security_level = none
smtpd_tls_chain_files = $TLS_DIR/key.pem, $TLS_DIR/cert.pem
smtpd_tls_loglevel = 0
EOF

# A regexp table: virtual(8) does not look up "@domain" in a texthash one.
write_if_changed "$PF_ETC/vmailbox.regexp" 644 postfix <<EOF
/@bounces\.${LOCAL_DOMAIN//./\\.}\$/ $BOUNCE_USER/
EOF

write_if_changed "$PF_ETC/transport" 644 postfix <<EOF
reject.$LOCAL_DOMAIN smtp:[127.0.0.1]:$REJECT_PORT
nullmx.$LOCAL_DOMAIN error:5.1.10 Domain nullmx.$LOCAL_DOMAIN does not accept mail (nullMX)
nowhere.$LOCAL_DOMAIN error:5.4.4 Host or domain name not found. Name service error for name=nowhere.$LOCAL_DOMAIN type=MX: Host not found
EOF

write_if_changed "$PF_ETC/reject_access" 644 postfix <<EOF
unknown@reject.$LOCAL_DOMAIN 550 5.1.1 User unknown in virtual mailbox table
EOF

write_if_changed "$PF_ETC/master.cf" 644 postfix <<EOF
# Generated by scripts/test-setup.sh. No chroot: nothing to copy into the spool.
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=mailout-peer/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_reject_unlisted_recipient=no
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=mailout-peer/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:$PLAIN_PORT inet n - n - - smtpd
  -o syslog_name=mailout-peer/plain
  -o smtpd_tls_security_level=none
  -o smtpd_sasl_auth_enable=no
# The MX of reject.$LOCAL_DOMAIN: refuses its unknown user at RCPT, and
# everything else. Its own name, so that the relay's smtp(8) client does
# not take it for itself (mail loops back to myself).
127.0.0.1:$REJECT_PORT inet n - n - - smtpd
  -o syslog_name=mailout-peer/reject
  -o myhostname=mx.reject.$LOCAL_DOMAIN
  -o smtpd_tls_security_level=none
  -o smtpd_sasl_auth_enable=no
  -o smtpd_relay_restrictions=check_recipient_access,texthash:$PF_ETC/reject_access,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# --- dnsmasq: answers for $LOCAL_DOMAIN and below from these lines only.
# local=/.../ makes it answer there like an authoritative server: NXDOMAIN
# for unknown names, an empty NOERROR (no data) for other types of known
# names, never REFUSED or forwarded (there is no upstream: no-resolv).
write_if_changed "$DNS_CONF" 644 dnsmasq <<EOF
# Generated by scripts/test-setup.sh: DNS server for the direct route's tests.
port=$DNS_PORT
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
local=/$LOCAL_DOMAIN/
local-ttl=300
log-facility=$DNS_DIR/dnsmasq.log
mx-host=$LOCAL_DOMAIN,mx1.$LOCAL_DOMAIN,10
mx-host=direct.$LOCAL_DOMAIN,mx1.$LOCAL_DOMAIN,10
mx-host=fallback.$LOCAL_DOMAIN,mx0.$LOCAL_DOMAIN,5
mx-host=fallback.$LOCAL_DOMAIN,mx1.$LOCAL_DOMAIN,10
mx-host=nullmx.$LOCAL_DOMAIN,.,0
host-record=mx1.$LOCAL_DOMAIN,127.0.0.1
host-record=mx0.$LOCAL_DOMAIN,127.0.0.2
host-record=implicit.$LOCAL_DOMAIN,127.0.0.1
EOF

write_if_changed "$ENV_FILE" 644 none <<EOF
# Generated by scripts/test-setup.sh: real peers for mailout's tests.
MAILOUT_PEER_POSTFIX_SUBMISSION=127.0.0.1:$SUBMISSION_PORT
MAILOUT_PEER_POSTFIX_SMTPS=127.0.0.1:$SMTPS_PORT
MAILOUT_PEER_POSTFIX_PLAIN=127.0.0.1:$PLAIN_PORT
MAILOUT_PEER_POSTFIX_USER=$PEER_USER
MAILOUT_PEER_POSTFIX_PASS=$PEER_PASS
MAILOUT_PEER_POSTFIX_CA=$TLS_DIR/cert.pem
MAILOUT_PEER_POSTFIX_MAILDIR=$INBOX
MAILOUT_PEER_POSTFIX_LOCAL_DOMAIN=$LOCAL_DOMAIN
MAILOUT_PEER_LOCK=$LOCK_FILE
MAILOUT_PEER_SMTP_SINK=$(command -v smtp-sink)
MAILOUT_PEER_SMTP_SOURCE=$(command -v smtp-source)
MAILOUT_PEER_DNS=127.0.0.1:$DNS_PORT
MAILOUT_PEER_DNS_MX_HOST=mx1.$LOCAL_DOMAIN
MAILOUT_PEER_DNS_MX_DOMAINS=$LOCAL_DOMAIN,direct.$LOCAL_DOMAIN
MAILOUT_PEER_DNS_FALLBACK_DOMAIN=fallback.$LOCAL_DOMAIN
MAILOUT_PEER_DNS_IMPLICIT_DOMAIN=implicit.$LOCAL_DOMAIN
MAILOUT_PEER_DNS_NULLMX_DOMAIN=nullmx.$LOCAL_DOMAIN
MAILOUT_PEER_DNS_NXDOMAIN=nowhere.$LOCAL_DOMAIN
MAILOUT_PEER_BOUNCE_IMAP=127.0.0.1:$IMAP_PORT
MAILOUT_PEER_BOUNCE_IMAPS=127.0.0.1:$IMAPS_PORT
MAILOUT_PEER_BOUNCE_POP3=127.0.0.1:$POP3_PORT
MAILOUT_PEER_BOUNCE_POP3S=127.0.0.1:$POP3S_PORT
MAILOUT_PEER_BOUNCE_USER=$BOUNCE_USER
MAILOUT_PEER_BOUNCE_PASS=$BOUNCE_PASS
MAILOUT_PEER_BOUNCE_MAILDIR=$BOUNCE_BOX
MAILOUT_PEER_BOUNCE_DOMAIN=bounces.$LOCAL_DOMAIN
MAILOUT_PEER_BOUNCE_UNKNOWN=unknown@reject.$LOCAL_DOMAIN
MAILOUT_PEER_BOUNCE_NULLMX_DOMAIN=nullmx.$LOCAL_DOMAIN
MAILOUT_PEER_BOUNCE_NXDOMAIN=nowhere.$LOCAL_DOMAIN
MAILOUT_CHROMIUM=$(command -v chromium)
MAILOUT_PEER_PG_URL=postgres://$PG_USER:$PG_PASS@127.0.0.1:5432/$PG_DB?sslmode=disable
MAILOUT_PEER_PG_RESTART_URL=postgres://$PG_USER:$PG_PASS@127.0.0.1:$PG_RESTART_PORT/$PG_DB?sslmode=disable
MAILOUT_PEER_PG_RESTART_CLUSTER=$(ls /etc/postgresql | sort -V | tail -n 1)/$PG_RESTART_CLUSTER
MAILOUT_AXE=$AXE_JS
EOF

# ---------------------------------------------------------------- start
# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION COMMAND...: poll a condition for up to 20 s.
wait_for() {
	local what=$1 i
	shift
	for ((i = 0; i < 200; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	die "timed out waiting for $what"
}

if ! postfix_running; then
	# Creates the queue directories with their owners (post-install).
	postfix -c "$PF_ETC" check || die "postfix check failed; see $PF_LOG"
fi

if pid=$(dovecot_pid); then
	if [[ -n $dc_changed ]]; then
		log "reloading dovecot"
		kill -HUP "$pid" # dovecot(1): SIGHUP rereads the configuration
	fi
else
	log "starting dovecot"
	rm -f "$PF_SPOOL/private/auth"
	# Daemons must not keep our stdout/stderr open: a caller reading them
	# through a pipe (CI) would wait for EOF forever.
	dovecot -c "$DC_CONF" </dev/null >>"$DC_DIR/startup.log" 2>&1 ||
		die "dovecot failed to start; see $DC_DIR/startup.log and $DC_DIR/dovecot.log"
fi
wait_for "dovecot's auth socket" test -S "$PF_SPOOL/private/auth"
for port in $IMAP_PORT $IMAPS_PORT $POP3_PORT $POP3S_PORT; do
	wait_for "dovecot on 127.0.0.1:$port" port_open "$port"
done

if postfix_running; then
	if [[ -n $pf_changed ]]; then
		log "reloading postfix"
		postfix -c "$PF_ETC" reload </dev/null >>"$PEER_DIR/postfix/startup.log" 2>&1
	fi
else
	log "starting postfix"
	for port in $SUBMISSION_PORT $SMTPS_PORT $PLAIN_PORT $REJECT_PORT; do
		port_open "$port" && die "127.0.0.1:$port is taken by another program"
	done
	postfix -c "$PF_ETC" start </dev/null >>"$PEER_DIR/postfix/startup.log" 2>&1 ||
		die "postfix failed to start; see $PEER_DIR/postfix/startup.log and $PF_LOG"
fi
for port in $SUBMISSION_PORT $SMTPS_PORT $PLAIN_PORT $REJECT_PORT; do
	wait_for "postfix on 127.0.0.1:$port" port_open "$port"
done

# dnsmasq rereads only its hosts files on SIGHUP, not its configuration:
# a changed configuration means a restart.
if pid=$(dnsmasq_pid) && [[ -n $dns_changed ]]; then
	log "restarting dnsmasq"
	kill "$pid"
	wait_for "dnsmasq to stop" eval '! dnsmasq_pid >/dev/null'
fi
if ! dnsmasq_pid >/dev/null; then
	log "starting dnsmasq on 127.0.0.1:$DNS_PORT"
	port_open "$DNS_PORT" && die "127.0.0.1:$DNS_PORT is taken by another program"
	dnsmasq --conf-file="$DNS_CONF" --pid-file="$DNS_PID" </dev/null >>"$DNS_DIR/startup.log" 2>&1 ||
		die "dnsmasq failed to start; see $DNS_DIR/startup.log"
fi
wait_for "dnsmasq on 127.0.0.1:$DNS_PORT" port_open "$DNS_PORT"

# PostgreSQL: Debian creates the main cluster at install; the restartable
# one is made here once. Start each when it is down, then make the role and
# the database once in each.
PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
[[ -n $PG_VERSION ]] || die "no PostgreSQL cluster under /etc/postgresql"
if [[ ! -d /etc/postgresql/$PG_VERSION/$PG_RESTART_CLUSTER ]]; then
	log "creating PostgreSQL cluster $PG_VERSION/$PG_RESTART_CLUSTER on port $PG_RESTART_PORT"
	pg_createcluster --port "$PG_RESTART_PORT" --start-conf manual "$PG_VERSION" "$PG_RESTART_CLUSTER" </dev/null >/dev/null ||
		die "pg_createcluster $PG_VERSION $PG_RESTART_CLUSTER failed"
fi
pg_psql() { # pg_psql PORT ARGS...
	local port=$1
	shift
	(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -tA -p "$port" "$@") </dev/null
}
pg_up() { # pg_up CLUSTER PORT
	local cluster=$1 port=$2
	if ! pg_ctlcluster "$PG_VERSION" "$cluster" status >/dev/null 2>&1; then
		log "starting PostgreSQL $PG_VERSION/$cluster"
		pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$cluster" start </dev/null ||
			die "PostgreSQL failed to start; see /var/log/postgresql/postgresql-$PG_VERSION-$cluster.log"
	fi
	wait_for "PostgreSQL $cluster on 127.0.0.1:$port" port_open "$port"
	if [[ $(pg_psql "$port" -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'") != 1 ]]; then
		log "creating PostgreSQL role $PG_USER in $cluster"
		pg_psql "$port" -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASS'"
	fi
	if [[ $(pg_psql "$port" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") != 1 ]]; then
		log "creating PostgreSQL database $PG_DB in $cluster"
		pg_psql "$port" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
	fi
}
pg_up main 5432
pg_up "$PG_RESTART_CLUSTER" "$PG_RESTART_PORT"

log "peers ready; endpoints in $ENV_FILE"
