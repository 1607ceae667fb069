#!/usr/bin/env bash
# Builds the pinned binaries GenVid's local stack needs (kube-apiserver,
# kube-controller-manager, etcd, helm, prometheus, promtool) from the Go
# module proxy, with the Go toolchain on PATH.
#
# Usage:
#   hack/build-binaries.sh              build whatever is missing, print timings
#   hack/build-binaries.sh --print-env  print KUBE_APISERVER=... etc. (no build)
#   hack/build-binaries.sh prometheus   build only prometheus and promtool
#
# Versions come from hack/versions.env. Each binary lands in
#   $GENVID_CACHE/bin/<name>-<version>/<name>   (GENVID_CACHE defaults to ~/.cache/genvid)
# and is rebuilt only when that file is missing, so clones on the same machine
# share it and a version bump builds a new one beside the old.
#
# Each module is built inside a throwaway wrapper module under
# $GENVID_CACHE/src/<name>-<version>: `go install pkg@version` refuses modules
# whose go.mod has replace directives (k8s.io/kubernetes replaces its
# k8s.io/* staging modules with ./staging/src/..., etcd's server module
# replaces its sibling modules with ../...). The wrapper re-states those
# replaces with real published versions read from the module's own go.mod.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/versions.env
source "$ROOT/hack/versions.env"

CACHE=${GENVID_CACHE:-${HOME:?HOME is not set}/.cache/genvid}
case $CACHE in
  /*) ;;
  *) CACHE=$PWD/$CACHE ;;
esac
BIN_DIR=$CACHE/bin
SRC_DIR=$CACHE/src

bin_path() { # NAME VERSION
  printf '%s/%s-%s/%s\n' "$BIN_DIR" "$1" "$2" "$1"
}

KUBE_APISERVER=$(bin_path kube-apiserver "$KUBERNETES_VERSION")
KUBE_CONTROLLER_MANAGER=$(bin_path kube-controller-manager "$KUBERNETES_VERSION")
ETCD=$(bin_path etcd "$ETCD_VERSION")
HELM=$(bin_path helm "$HELM_VERSION")
PROMETHEUS=$(bin_path prometheus "$PROMETHEUS_VERSION")
PROMTOOL=$(bin_path promtool "$PROMETHEUS_VERSION")

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

case ${1:-} in
  --print-env)
    printf 'KUBE_APISERVER=%q\n' "$KUBE_APISERVER"
    printf 'KUBE_CONTROLLER_MANAGER=%q\n' "$KUBE_CONTROLLER_MANAGER"
    printf 'ETCD=%q\n' "$ETCD"
    printf 'HELM=%q\n' "$HELM"
    printf 'PROMETHEUS=%q\n' "$PROMETHEUS"
    printf 'PROMTOOL=%q\n' "$PROMTOOL"
    exit 0
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  "" | prometheus) ;;
  *)
    echo "unknown argument: $1" >&2
    usage >&2
    exit 2
    ;;
esac

log() { printf '%s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if ! command -v go >/dev/null 2>&1; then
  die "'go' was not found on PATH. Install Go >= ${GO_MIN_VERSION} to build the local" \
    "control plane (kube-apiserver, kube-controller-manager, etcd, helm), or point" \
    "KUBECONFIG at an existing cluster instead."
fi

# A go.work elsewhere must not leak into the wrapper modules.
export GOWORK=off
export CGO_ENABLED=0

GO_VERSION=$(go env GOVERSION) # e.g. go1.26.8 (after any GOTOOLCHAIN switch)
version_ge() {                 # A B: is dotted version A >= B?
  [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$2" ]]
}
gv=${GO_VERSION#go}
gv=${gv%%[!0-9.]*} # drop suffixes like "rc1" or " X:..."
if ! version_ge "$gv" "$GO_MIN_VERSION"; then
  die "found $GO_VERSION, but Go >= ${GO_MIN_VERSION} is needed. Install a newer Go," \
    "set GOTOOLCHAIN=go${GO_MIN_VERSION}.0 (or newer) so go can fetch one, or point" \
    "KUBECONFIG at an existing cluster instead."
fi

mkdir -p "$BIN_DIR" "$SRC_DIR"

# Serialise concurrent runs (two test scripts starting at once) on one cache.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-binaries.lock"
  flock 9
  # Holding the lock, any temp binary left is from a killed run.
  find "$BIN_DIR" -name '.*.tmp.*' -type f -delete
fi

TMP_FILES=()
cleanup() {
  local f
  for f in "${TMP_FILES[@]}"; do
    rm -f -- "$f"
  done
}
trap cleanup EXIT

# Fields of `go mod download -json MODULE@VERSION` (GoMod, Info, Dir, ...).
mod_field() { # MODULE@VERSION FIELD
  local out
  out=$(cd "$SRC_DIR" && go mod download -json "$1") || die "go mod download $1 failed: $out"
  json_field "$2" <<<"$out"
}
# go's indented JSON has one "Key": "value" per line.
json_field() { # FIELD  (reads JSON on stdin)
  sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\{0,1\}\$/\\1/p" | head -n1
}

# Flattens a go.mod into records, one per line:
#   go VERSION | godebug KEY=VALUE | require PATH VERSION |
#   replace OLD OLDVER|- NEW NEWVER|-
parse_gomod() { # FILE
  awk '
    { sub(/\/\/.*/, "") }
    NF == 0 { next }
    block == "" && ($1 == "require" || $1 == "replace" || $1 == "godebug") && $2 == "(" { block = $1; next }
    block != "" && $1 == ")" { block = ""; next }
    {
      n = 0
      if (block != "") { kw = block; for (i = 1; i <= NF; i++) f[++n] = $i }
      else { kw = $1; for (i = 2; i <= NF; i++) f[++n] = $i }
      if (kw == "go" && n >= 1) print "go", f[1]
      else if (kw == "godebug") { s = ""; for (i = 1; i <= n; i++) s = s f[i]; print "godebug", s }
      else if (kw == "require" && n >= 2) print "require", f[1], f[2]
      else if (kw == "replace") {
        for (a = 1; a <= n && f[a] != "=>"; a++) ;
        old = f[1]; oldv = (a == 3 ? f[2] : "-")
        new = f[a + 1]; newv = (a + 2 <= n ? f[a + 2] : "-")
        print "replace", old, oldv, new, newv
      }
    }
  ' "$1"
}

# Writes DIR/go.mod for a wrapper module that requires MODULE@VERSION and
# lists PKGS as tool packages, then runs go mod tidy. Replace directives of
# MODULE's go.mod are carried over: module => module version ones verbatim;
# local-path ones (./..., ../...) are pointed at the published version MODULE
# requires, or at LOCAL_VERSION when it requires a placeholder (v0.0.0) or
# nothing at all (Kubernetes' staging modules); with no LOCAL_VERSION, such
# an unrequired replace (e.g. etcd's ./FORBIDDEN_DEPENDENCY) is dropped.
# Its godebug lines are copied too, since only the main module's count.
make_wrapper() { # DIR MODULE VERSION LOCAL_VERSION PKG...
  local dir=$1 module=$2 version=$3 local_version=$4
  shift 4
  local gomod records go_directive kw a b c d v p replaces=() godebugs=()
  local -A required=()

  gomod=$(mod_field "$module@$version" GoMod)
  [[ -n $gomod && -f $gomod ]] || die "could not locate go.mod of $module@$version"
  records=$(parse_gomod "$gomod")
  go_directive=$(awk '$1 == "go" { print $2; exit }' <<<"$records")

  while read -r kw a b _; do
    [[ $kw == require ]] && required[$a]=$b
  done <<<"$records"

  while read -r kw a b c d; do
    case $kw in
      godebug) godebugs+=("$a") ;;
      replace)
        case $c in
          ./* | ../* | /*)
            v=${required[$a]:-}
            if [[ -z $v || $v == v0.0.0 ]]; then
              if [[ -n $local_version ]]; then
                v=$local_version
              elif [[ -z $v ]]; then
                continue # replaced but not required: nothing to pin
              else
                die "$module@$version requires $a v0.0.0 from a local path; no version to map it to"
              fi
            fi
            replaces+=("$a => $a $v")
            ;;
          *)
            if [[ $b == - ]]; then replaces+=("$a => $c $d"); else replaces+=("$a $b => $c $d"); fi
            ;;
        esac
        ;;
    esac
  done <<<"$records"

  mkdir -p "$dir"
  {
    echo "// Generated by GenVid hack/build-binaries.sh; throwaway wrapper to build $module@$version."
    echo "module genvid.local/build/$(basename "$dir")"
    echo
    echo "go ${go_directive:-$GO_MIN_VERSION}"
    for p in "${godebugs[@]}"; do echo "godebug $p"; done
    echo
    echo "require $module $version"
    if ((${#replaces[@]})); then
      echo
      echo "replace ("
      for p in "${replaces[@]}"; do printf '\t%s\n' "$p"; done
      echo ")"
    fi
    echo
    echo "tool ("
    for p in "$@"; do printf '\t%s\n' "$p"; done
    echo ")"
  } >"$dir/go.mod"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
}

# Builds PKG in wrapper DIR into DEST (via a temp file + mv), then checks
# that it runs: DEST VERSION_ARGS... are given after "--". BUILD_TAGS, when
# set, is passed to go build as -tags.
build_into() { # DIR PKG DEST LDFLAGS -- VERSION_CMD_ARGS...
  local dir=$1 pkg=$2 dest=$3 ldflags=$4
  shift 5
  local tmp
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp "$(dirname "$dest")/.$(basename "$dest").tmp.XXXXXX")
  TMP_FILES+=("$tmp")
  (cd "$dir" && go build -trimpath -tags "${BUILD_TAGS:-}" -ldflags "-s -w $ldflags" -o "$tmp" "$pkg") ||
    die "go build $pkg failed (wrapper module: $dir)"
  chmod 0755 "$tmp"
  "$tmp" "$@" >/dev/null 2>&1 || die "freshly built $pkg does not run: $tmp $*"
  mv -f -- "$tmp" "$dest"
}

TOTAL_START=$SECONDS

# ---------------------------------------------------------------- Kubernetes
KUBE_WRAPPER=$SRC_DIR/kubernetes-$KUBERNETES_VERSION
kube_ready=
kube_wrapper() {
  [[ -n $kube_ready ]] && return 0
  local minor_patch=${KUBERNETES_VERSION#v1.}
  # Staging modules are published as k8s.io/<name> v0.<minor>.<patch>.
  make_wrapper "$KUBE_WRAPPER" k8s.io/kubernetes "$KUBERNETES_VERSION" "v0.$minor_patch" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  kube_ready=1
}
kube_ldflags() {
  local major minor info build_date pkg flags=()
  major=${KUBERNETES_VERSION#v}
  major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}
  minor=${minor%%.*}
  # Release time of the module version (from the proxy's .info file):
  # reproducible, unlike "now".
  info=$(mod_field "k8s.io/kubernetes@$KUBERNETES_VERSION" Info)
  build_date=$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$info")
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=(
      "-X $pkg.gitVersion=$KUBERNETES_VERSION"
      "-X $pkg.gitMajor=$major"
      "-X $pkg.gitMinor=$minor"
      "-X $pkg.gitTreeState=clean"
      "-X $pkg.gitCommit=" # the proxy does not say; default is "$Format:%H$"
      "-X $pkg.buildDate=${build_date:-1970-01-01T00:00:00Z}"
    )
  done
  echo "${flags[*]}"
}

build_kube() { # NAME DEST
  local name=$1 dest=$2 start=$SECONDS ldflags
  if [[ -x $dest ]]; then
    echo "cached $name $KUBERNETES_VERSION"
    return
  fi
  kube_wrapper
  ldflags=$(kube_ldflags)
  build_into "$KUBE_WRAPPER" "k8s.io/kubernetes/cmd/$name" "$dest" "$ldflags" -- --version
  echo "built $name $KUBERNETES_VERSION in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------- etcd
build_etcd() {
  local dest=$ETCD start=$SECONDS dir=$SRC_DIR/etcd-$ETCD_VERSION
  if [[ -x $dest ]]; then
    echo "cached etcd $ETCD_VERSION"
    return
  fi
  # The etcd server binary is the main package at the root of go.etcd.io/etcd/server/v3.
  make_wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "" go.etcd.io/etcd/server/v3
  build_into "$dir" go.etcd.io/etcd/server/v3 "$dest" "" -- --version
  echo "built etcd $ETCD_VERSION in $((SECONDS - start))s"
}

# ---------------------------------------------------------------------- helm
build_helm() {
  local dest=$HELM start=$SECONDS dir=$SRC_DIR/helm-$HELM_VERSION gomod cg kmaj kmin v ldflags
  if [[ -x $dest ]]; then
    echo "cached helm $HELM_VERSION"
    return
  fi
  make_wrapper "$dir" helm.sh/helm/v3 "$HELM_VERSION" "" helm.sh/helm/v3/cmd/helm
  v=helm.sh/helm/v3/internal/version
  ldflags="-X $v.version=$HELM_VERSION -X $v.gitTreeState=clean"
  # Like helm's Makefile: default .Capabilities.KubeVersion follows the
  # client-go it was built with (v0.37.x -> 1.37) instead of the 1.20 fallback.
  gomod=$(mod_field "helm.sh/helm/v3@$HELM_VERSION" GoMod)
  cg=$(parse_gomod "$gomod" | awk '$1 == "require" && $2 == "k8s.io/client-go" { print $3; exit }')
  if [[ $cg =~ ^v0\.([0-9]+)\. ]]; then
    kmaj=1
    kmin=${BASH_REMATCH[1]}
    for v in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ldflags+=" -X $v.k8sVersionMajor=$kmaj -X $v.k8sVersionMinor=$kmin"
    done
  fi
  build_into "$dir" helm.sh/helm/v3/cmd/helm "$dest" "$ldflags" -- version
  echo "built helm $HELM_VERSION in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- prometheus
# The module's versions are v0.3MM.P for Prometheus 3.MM.P. Built without the
# `builtinassets` tag, so the web UI is not embedded (the HTTP API, all the
# stack and the tests use, is complete without it), and with `remove_all_sd`,
# which leaves only static, file and HTTP service discovery: the local stack
# scrapes fixed loopback targets, and the cloud SDKs would triple the build.
prometheus_ldflags() {
  local v=github.com/prometheus/common/version release
  release=$(<"$(mod_field "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" Dir)/VERSION")
  echo "-X $v.Version=$release -X $v.Branch=HEAD -X $v.BuildUser=genvid -X $v.BuildDate=19700101-00:00:00"
}
build_prometheus() {
  local name dest start dir=$SRC_DIR/prometheus-$PROMETHEUS_VERSION ready=
  for name in prometheus promtool; do
    dest=$(bin_path "$name" "$PROMETHEUS_VERSION")
    start=$SECONDS
    if [[ -x $dest ]]; then
      echo "cached $name $PROMETHEUS_VERSION"
      continue
    fi
    if [[ -z $ready ]]; then
      make_wrapper "$dir" github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "" \
        github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
      ready=1
    fi
    BUILD_TAGS=netgo,remove_all_sd build_into "$dir" "github.com/prometheus/prometheus/cmd/$name" \
      "$dest" "$(prometheus_ldflags)" -- --version
    echo "built $name $PROMETHEUS_VERSION in $((SECONDS - start))s"
  done
}

if [[ ${1:-} != prometheus ]]; then
  build_kube kube-apiserver "$KUBE_APISERVER"
  build_kube kube-controller-manager "$KUBE_CONTROLLER_MANAGER"
  build_etcd
  build_helm
fi
build_prometheus

echo "total $((SECONDS - TOTAL_START))s ($GO_VERSION, cache $CACHE)"
