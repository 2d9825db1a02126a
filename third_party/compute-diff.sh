#!/usr/bin/env bash
# Prints polo's patches to github.com/gomlx/compute as one unified diff: the in-repo copy
# (third_party/compute, used through a `replace` in go.mod) against the pristine module of the
# pinned version from the Go module cache. third_party/compute.patch is this script's output.
#
# Usage: third_party/compute-diff.sh > third_party/compute.patch
set -euo pipefail
cd "$(dirname "$0")/.."
version=v0.1.2
pristine=$(GOFLAGS=-mod=mod go mod download -json "github.com/gomlx/compute@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$pristine" "$tmp/a"
ln -s "$PWD/third_party/compute" "$tmp/b"
cd "$tmp"
# The pristine copy's .agents folder is not vendored; diff exits 1 when there are differences.
diff -ruN --exclude=.agents a/ b/ || [ $? -eq 1 ]
