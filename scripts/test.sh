#!/usr/bin/env bash
# scripts/test.sh — THE test command: format check, vet, and every test with
# the race detector. .ci/run calls it after scripts/test-setup.sh.
#
# Usage: scripts/test.sh [packages...]   (default ./...)
#
# Tests that need a real peer (Postfix, ...) read its endpoints from the
# peers' env file, sourced here when present; they skip when the peer is
# missing unless MAILOUT_REQUIRE_PEERS=1 (set by .ci/run), where they fail.
# Benchmarks do not run, and fuzz targets run only their seed corpus
# (plain `go test` does both of these).
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

peers_env=${MAILOUT_PEERS_ENV:-/var/lib/mailout-peers/env}
if [[ -r $peers_env ]]; then
	set -a
	# shellcheck source=/dev/null
	. "$peers_env"
	set +a
	export MAILOUT_PEERS_ENV=$peers_env
fi

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

echo "== go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

echo "== go test -race ${pkgs[*]}"
go test -race -count=1 -timeout 20m "${pkgs[@]}"
