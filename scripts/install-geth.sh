#!/usr/bin/env bash
# Install go-ethereum v1.13.15 (the last release line that seals Clique proof-of-authority blocks)
# into .tools/bin with the Go toolchain. Nothing of geth is vendored or committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v1.13.15
bin=.tools/bin/geth
# No `| grep -q` or `| head` after geth under pipefail: the reader may exit before geth has
# written everything, geth dies of SIGPIPE and the pipeline fails although all went well.
# grep without -q and sed -n read their whole input.
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep "^Version: ${version#v}" >/dev/null; then
  exit 0
fi
command -v go >/dev/null || { echo "install-geth.sh: the Go toolchain is required" >&2; exit 1; }
mkdir -p .tools/bin
# Newer Go toolchains refuse geth 1.13's linkname tricks unless told otherwise.
GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod go install -ldflags=-checklinkname=0 \
  "github.com/ethereum/go-ethereum/cmd/geth@${version}"
"$bin" version | sed -n '1,2p'
