#!/usr/bin/env bash
# Builds the local control plane's binaries from pinned Go module releases into a cache
# outside the repository, keyed by version, so that later runs reuse them.
#
#   build-binaries.sh     build whatever is missing; print one line per binary: NAME PATH
#
# Why a wrapper module: k8s.io/kubernetes (and etcd's root module) replace their staging
# modules with local paths, so `go install mod@version` refuses them. Each wrapper requires
# the release and replaces every staging module with its published release instead.
set -euo pipefail

K8S_VERSION="${MODELPLANE_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${MODELPLANE_ETCD_VERSION:-v3.6.5}"
KWOK_VERSION="${MODELPLANE_KWOK_VERSION:-v0.8.0}"
# MinIO publishes no semver tags; this pseudo-version is its last commit on the module proxy.
MINIO_VERSION="${MODELPLANE_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

CACHE="${MODELPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelplane}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
START=$(date +%s)

say() { printf '[build %4ds] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed. Install Go >= 1.25 (https://go.dev/dl or 'apt-get install golang-1.25') and run again."
command -v curl >/dev/null || die "curl is not installed: apt-get install -y curl"
GOVER=$(go env GOVERSION | sed 's/^go//')
case "$GOVER" in 1.2[5-9]*|1.[3-9]*) ;; *) die "Go $GOVER is too old: kubernetes $K8S_VERSION needs Go >= 1.25";; esac
PROXY="$(go env GOPROXY | cut -d, -f1)"
[ "$PROXY" = direct ] || [ "$PROXY" = off ] && PROXY=https://proxy.golang.org

export CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$BIN" "$WORK"

# have NAME VERSION: true when the cached binary exists.
have() { [ -x "$BIN/$1-$2" ]; }

# wrapper DIR MODULE VERSION [REPLACE...]: a module that requires MODULE@VERSION.
wrapper() {
  local dir=$1 mod=$2 ver=$3; shift 3
  rm -rf "$dir"; mkdir -p "$dir"
  { echo "module modelplane.local/build"; echo; echo "go 1.25"; echo
    echo "require $mod $ver"
    for r in "$@"; do echo "replace $r"; done; } > "$dir/go.mod"
}

# run_go NAME: go with progress lines every 30 s, so a long build is visibly alive.
run_go() {
  local name=$1; shift
  local log="$WORK/$name.log"
  ( "$@" ) >"$log" 2>&1 &
  local pid=$! t0; t0=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (( ($(date +%s) - t0) % 30 < 5 )); then say "$name: still building ($(( $(date +%s) - t0 ))s)"; fi
  done
  if ! wait "$pid"; then
    tail -n 30 "$log" >&2
    die "building $name failed (log: $log). If the module proxy is unreachable, set GOPROXY to a reachable proxy."
  fi
}

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=0
  for b in "${want[@]}"; do have "$b" "$K8S_VERSION" || missing=1; done
  (( missing )) || return 0
  say "kubernetes $K8S_VERSION: reading the staging modules from its go.mod"
  local gomod minor reps=() dir="$WORK/kubernetes-$K8S_VERSION"
  gomod=$(curl -fsS "$PROXY/k8s.io/kubernetes/@v/$K8S_VERSION.mod") || die "cannot fetch k8s.io/kubernetes@$K8S_VERSION from $PROXY"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local staging="v0.${K8S_VERSION#v1.}"
  while read -r m; do reps+=("$m => $m $staging"); done < <(
    echo "$gomod" | awk '/^replace \(/{f=1;next} f&&/^\)/{f=0} f&&/staging/{print $1}')
  (( ${#reps[@]} > 20 )) || die "found only ${#reps[@]} staging modules in k8s.io/kubernetes@$K8S_VERSION"
  wrapper "$dir" k8s.io/kubernetes "$K8S_VERSION" "${reps[@]}"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ld+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for b in "${want[@]}"; do
    have "$b" "$K8S_VERSION" && continue
    say "kubernetes $K8S_VERSION: building $b"
    run_go "$b" bash -c "cd '$dir' && go build -trimpath -ldflags '$ld' -o '$BIN/$b-$K8S_VERSION.tmp' k8s.io/kubernetes/cmd/$b"
    mv "$BIN/$b-$K8S_VERSION.tmp" "$BIN/$b-$K8S_VERSION"
    say "kubernetes $K8S_VERSION: $b done"
  done
}

build_etcd() {
  have etcd "$ETCD_VERSION" && return 0
  local dir="$WORK/etcd-$ETCD_VERSION"
  say "etcd $ETCD_VERSION: building"
  # The etcd server's main package lives in its root module, which replaces its siblings
  # with local paths; a three-line main calling etcdmain is the same program.
  wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$dir/main.go"
  run_go etcd bash -c "cd '$dir' && go build -trimpath -ldflags '-s -w' -o '$BIN/etcd-$ETCD_VERSION.tmp' ."
  mv "$BIN/etcd-$ETCD_VERSION.tmp" "$BIN/etcd-$ETCD_VERSION"
  say "etcd $ETCD_VERSION: done"
}

build_plain() { # NAME MODULE VERSION PACKAGE
  local name=$1 mod=$2 ver=$3 pkg=$4 dir="$WORK/$1-$3"
  have "$name" "$ver" && return 0
  say "$name $ver: building"
  wrapper "$dir" "$mod" "$ver"
  run_go "$name" bash -c "cd '$dir' && go build -trimpath -ldflags '-s -w' -o '$BIN/$name-$ver.tmp' $pkg"
  mv "$BIN/$name-$ver.tmp" "$BIN/$name-$ver"
  say "$name $ver: done"
}

build_kubernetes
build_etcd
build_plain kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
build_plain minio github.com/minio/minio "$MINIO_VERSION" github.com/minio/minio
say "all binaries ready in $BIN"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do echo "$b $BIN/$b-$K8S_VERSION"; done
echo "etcd $BIN/etcd-$ETCD_VERSION"
echo "kwok $BIN/kwok-$KWOK_VERSION"
echo "minio $BIN/minio-$MINIO_VERSION"
