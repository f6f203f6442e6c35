#!/usr/bin/env bash
# bench/run.sh — mailout's throughput against Postfix's smtp-sink, with
# Postfix's smtp-source as this machine's ceiling.
#
# Usage:
#   bench/run.sh                 100,000 messages per run, 1 KB and 20 KB,
#                                relay and direct routes, 3 runs, medians
#   bench/run.sh --quick         20,000 messages per run (for iterating)
#   bench/run.sh --million       one relay run of 1,000,000 1 KB messages:
#                                import rows/s and peak RSS of a big campaign
#   bench/run.sh --latency       slow receivers (1 s before each DATA reply):
#                                4,000 messages, 200 sessions, relay and direct
#                                (100 domains), against smtp-source and the ideal
#   bench/run.sh --latency-small the same with 400 messages over 20 sessions
#   bench/run.sh --fleet         a fleet on PostgreSQL ($MAILOUT_BENCH_PG, a
#                                postgres:// URL): 100,000 messages sent by 1, 2
#                                and 3 `mailout worker` processes, 200 sessions
#                                for the whole fleet, slow receivers (1 s before
#                                each DATA reply); the ideal is 200 msg/s
#                                whatever the number of workers
#   bench/run.sh --fleet-small   the same with 1,000 messages and 20 sessions
#   bench/run.sh [--quick] -- MAILBENCH-FLAGS   e.g. -- -runs 5 -routes relay
#
# Installs Postfix from Debian (for smtp-sink and smtp-source) only when
# smtp-sink is missing. Builds mailout and the harness into $BENCH_BIN
# (default /tmp/mailout-bench). Everything listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin:/sbin

args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) args+=(-n 20000) ;;
	--million) args+=(-n 1000000 -runs 1 -sizes 1024 -routes relay) ;;
	# A slow receiver (smtp-sink -w 1: one second before each reply to
	# DATA): 4,000 messages over 200 sessions; the direct route has 100
	# domains, each behind its own delayed receiver, 2 sessions per domain.
	--latency) args+=(-n 4000 -sessions 200 -delay 1 -sizes 1024 -runs 1 -domains 100 -sinks 100 -domain-connections 2) ;;
	--latency-small) args+=(-n 400 -sessions 20 -delay 1 -sizes 1024 -runs 1 -routes relay) ;;
	# Several workers on one PostgreSQL database: the profile's sessions
	# and rate are the fleet's, so throughput stays at sessions / delay.
	--fleet) args+=(-fleet 1,2,3 -n 100000 -sessions 200 -delay 1 -sizes 1024 -runs 1) ;;
	--fleet-small) args+=(-fleet 1,2,3 -n 1000 -sessions 20 -delay 1 -sizes 1024 -runs 1) ;;
	--) shift; args+=("$@"); break ;;
	*) args+=("$1") ;;
	esac
	shift
done

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
	echo "bench/run.sh: installing postfix for smtp-sink and smtp-source" >&2
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	# No mail system is configured: smtp-sink/smtp-source need none.
	echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postfix >/dev/null
	# The package may start a daemon on :25; the benchmark does not use it.
fi

BIN=${BENCH_BIN:-/tmp/mailout-bench}
mkdir -p "$BIN"
go build -o "$BIN/mailout" ./cmd/mailout
go build -o "$BIN/mailbench" ./bench/mailbench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(go version | cut -d' ' -f3)"
exec "$BIN/mailbench" -mailout "$BIN/mailout" "${args[@]}"
