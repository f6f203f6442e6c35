#!/usr/bin/env bash
# scripts/test.sh — THE test command: format check, go.mod tidiness, vet,
# and every test with the race detector. .ci/run calls it with
# MAILOUT_REQUIRE_PEERS=1.
#
# As root it first runs scripts/test-setup.sh (idempotent; well under a
# second when everything is there), which installs and starts the real
# peers on loopback: one command does all of the tests' set-up on a fresh
# machine. MAILOUT_SKIP_SETUP=1 skips that step. Not root: the peers are
# used when running, and their tests skip otherwise.
#
# Usage: scripts/test.sh [packages...]   (default ./...)
#
# Tests that need a real peer (Postfix, ...) read its endpoints from the
# peers' env file, sourced here when present; they skip when the peer is
# missing unless MAILOUT_REQUIRE_PEERS=1 (set by .ci/run), where they fail.
# Benchmarks do not run, and fuzz targets run only their seed corpus
# (plain `go test` does both of these).
#
# Browser tests (internal/browsertest, headless Chromium) save their
# screenshots under $MAILOUT_ARTIFACTS/browser/<test>/: ./artifacts of the
# repository unless MAILOUT_ARTIFACTS names another directory. That
# browser/ folder is emptied first, so it holds this run's files only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Go from the official tarball lives outside the default PATH of root shells.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || {
	echo "test.sh: go not found in PATH (need the version in go.mod)" >&2
	exit 1
}

if [[ ${MAILOUT_SKIP_SETUP:-} != 1 ]]; then
	if [[ $(id -u) == 0 ]]; then
		bash scripts/test-setup.sh
	else
		echo "test.sh: not root: not installing the test peers (Postfix, dnsmasq, Chromium); their tests skip" >&2
	fi
fi

peers_env=${MAILOUT_PEERS_ENV:-/var/lib/mailout-peers/env}
if [[ -r $peers_env ]]; then
	set -a
	# shellcheck source=/dev/null
	. "$peers_env"
	set +a
	export MAILOUT_PEERS_ENV=$peers_env
fi

export MAILOUT_ARTIFACTS=${MAILOUT_ARTIFACTS:-$PWD/artifacts}
rm -rf "$MAILOUT_ARTIFACTS/browser"
mkdir -p "$MAILOUT_ARTIFACTS"

pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)

echo "== gofmt -l"
gofmt_bin=$(go env GOROOT)/bin/gofmt
# Every .go file of the packages, whatever its build tags, but not testdata.
files_tmpl='{{range .GoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .CgoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .TestGoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .IgnoredGoFiles}}{{$.Dir}}/{{.}}
{{end}}'
mapfile -t go_files < <(go list -e -f "$files_tmpl" "${pkgs[@]}" | sed '/^$/d')
unformatted=
if ((${#go_files[@]})); then
	unformatted=$("$gofmt_bin" -l "${go_files[@]}")
fi
if [[ -n $unformatted ]]; then
	echo "gofmt: these files need formatting (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go mod tidy -diff"
# go.mod and go.sum must be what go mod tidy makes of the code: no missing
# requirement, none left over.
if ! tidy_diff=$(go mod tidy -diff 2>&1); then
	echo "go mod tidy: go.mod or go.sum is not tidy (run go mod tidy and commit the result):" >&2
	echo "$tidy_diff" >&2
	exit 1
fi

echo "== go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

echo "== go test -race ${pkgs[*]}"
go test -race -count=1 -timeout 20m "${pkgs[@]}"
