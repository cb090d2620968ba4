#!/usr/bin/env bash
# Proves the README's "Two commands" on a machine where nothing was installed by hand: builds a
# minimal Debian 12 (bookworm) root with `mmdebstrap --variant=minbase`, puts a clean `git clone`
# of this checkout's HEAD (or --commit) at /work/main in it and a copy of ../shared at
# /work/shared (mounted read-only), then runs in a chroot, exactly as the README writes them,
#
#     cd /work/main && tools/run.sh && tools/test.sh
#
# Every package the project needs must come from tools/install_deps.sh: the root gets nothing else.
#
# Usage (as root, on a Debian/Ubuntu host with mmdebstrap and git):
#   tools/fresh_machine_check.sh [--root DIR] [--commit REV] [--shared DIR] [--log FILE]
#                                [--keep] [--include PKG,...] [--mirror URL] [--security-mirror URL]
#
#   --root DIR      where to build the root; must be absent or empty
#                   (default /var/tmp/deepinside-fresh-YYYYmmdd-HHMMSS)
#   --commit REV    commit of this checkout to clone (default HEAD; uncommitted changes are not used)
#   --shared DIR    shared folder to copy to /work/shared (default ../shared beside the checkout)
#   --log FILE      full output of both commands (default /var/tmp/deepinside-fresh-YYYYmmdd-HHMMSS.log)
#   --keep          keep the root afterwards (default: unmount and delete it)
#   --include PKGS  extra packages for the bare root, comma separated (default none; http mirrors
#                   need no ca-certificates). Never put the project's dependencies here.
#   --mirror URL    Debian mirror (default http://deb.debian.org/debian)
#   --security-mirror URL  (default http://deb.debian.org/debian-security)
#
# Prints the duration of each command, the CPU model and the result; exits 0 only if both commands
# succeeded. It takes a long time (package download, two builds, the full test suite): run it with
#   nohup nice -n 10 tools/fresh_machine_check.sh > /var/tmp/fresh.out 2>&1 &
#
# Safety: /proc, /sys, /dev, /dev/pts, /dev/shm are bind-mounted privately (nothing propagates back
# to the host), a trap on EXIT/INT/TERM/HUP ends the processes still running inside the root,
# unmounts everything under it, and the root is only deleted when nothing is mounted under it.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

stamp=$(date +%Y%m%d-%H%M%S)
checkout=$(cd "$(dirname "$0")/.." && pwd)
root="/var/tmp/deepinside-fresh-$stamp"
log="/var/tmp/deepinside-fresh-$stamp.log"
commit=HEAD
shared="$checkout/../shared"
keep=0
include=""
mirror="http://deb.debian.org/debian"
security="http://deb.debian.org/debian-security"

while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --commit) commit=$2; shift 2 ;;
    --shared) shared=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --include) include=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --security-mirror) security=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fresh_machine_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "fresh_machine_check: $*" >&2; exit 1; }
say() { echo "fresh_machine_check: $*"; echo "== $(date '+%F %T') $*" >> "$log"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, mount, chroot)"
for tool in mmdebstrap git chroot mount umount findmnt; do
  command -v "$tool" > /dev/null || die "$tool is not installed on the host"
done

# The root must be a plain, absolute, non-system path that is absent or empty.
case "$root" in /*) ;; *) root="$PWD/$root" ;; esac
root=$(realpath -m "$root")
case "$root" in
  /|/bin|/boot|/dev|/etc|/home|/lib*|/opt|/proc|/root|/run|/sbin|/srv|/sys|/tmp|/usr|/usr/*|/var|/var/tmp|/work|/work/*)
    die "refusing to use $root as the root" ;;
esac
if [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
  die "$root exists and is not empty"
fi
shared=$(realpath -e "$shared") || die "shared folder not found"
[ -d "$shared/models" ] || die "$shared has no models/ folder"
rev=$(git -C "$checkout" rev-parse --verify "$commit^{commit}") || die "no commit $commit in $checkout"
mkdir -p "$(dirname "$log")"
: > "$log"
log=$(realpath "$log")

# --- cleanup -------------------------------------------------------------------------------------
child=""
mounts_under() {  # mount points at or below the root, deepest first
  findmnt -rn -o TARGET | awk -v r="$root" '$0 == r || index($0, r "/") == 1' | sort -r
}
procs_in_root() {  # processes whose root directory is the chroot
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
  done
  return 0
}
cleanup() {
  local rc=$? m pids i
  trap - EXIT INT TERM HUP
  set +e
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null
  fi
  for i in 1 2 3; do  # ask, then insist, that nothing keeps running inside the root
    pids=$(procs_in_root)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    if [ "$i" -lt 3 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
    sleep 2
  done
  for i in 1 2 3; do
    for m in $(mounts_under); do umount "$m" 2>/dev/null; done
    [ -z "$(mounts_under)" ] && break
    sleep 1
  done
  for m in $(mounts_under); do umount --lazy "$m" 2>/dev/null; done
  if [ -n "$(mounts_under)" ]; then
    echo "fresh_machine_check: still mounted under $root, NOT deleting it:" >&2
    mounts_under >&2
    [ "$rc" -ne 0 ] || rc=1
  elif [ "$keep" -eq 0 ] && [ -d "$root" ]; then
    rm -rf --one-file-system -- "$root"
    echo "fresh_machine_check: deleted $root"
  elif [ -d "$root" ]; then
    echo "fresh_machine_check: kept $root (enter it with: chroot $root /bin/bash)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs "$@" in the background and waits, so that a signal reaches the trap at once.
run_child() {
  "$@" & child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

fmt_duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# The CPU as /proc/cpuinfo names it, with what a virtual machine's terse name leaves out.
cpu=$(awk -F': *' '/^model name/ && !n {n = $2} /^cpu family/ && !f {f = $2} /^model\t/ && !m {m = $2}
                   /^flags/ && !fl {fl = " " $2 " "}
                   END {isa = fl ~ / avx512f / ? "AVX-512" : fl ~ / avx2 / ? "AVX2" : "no AVX2"
                        vm = fl ~ / hypervisor / ? ", virtual machine" : ""
                        printf "%s (family %s, model %s, %s%s)", n, f, m, isa, vm}' /proc/cpuinfo)
say "checkout $checkout at ${rev:0:12} ($(git -C "$checkout" log -1 --format=%s "$rev"))"
say "root $root, log $log, host $(nproc) cores, CPU ${cpu:-unknown}"

# --- the bare machine ----------------------------------------------------------------------------
mkdir -p "$root"
t0=$SECONDS
say "mmdebstrap --variant=minbase bookworm${include:+ (+ $include)}"
run_child mmdebstrap --variant=minbase --mode=root ${include:+--include="$include"} bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main" >> "$log" 2>&1 || die "mmdebstrap failed (see $log)"
say "root ready in $(fmt_duration $((SECONDS - t0))): $(cat "$root/etc/debian_version"), $(chroot "$root" dpkg-query -W -f='.\n' | wc -l) packages"

# --- the clone and the shared models -------------------------------------------------------------
mkdir -p "$root/work"
git clone --quiet --no-hardlinks --no-checkout "$checkout" "$root/work/main" >> "$log" 2>&1
git -C "$root/work/main" checkout --quiet --detach "$rev" >> "$log" 2>&1
if ! grep -qx 'tools/run.sh .*' "$root/work/main/README.md" || ! grep -qx 'tools/test.sh .*' "$root/work/main/README.md"; then
  say "WARNING: README.md no longer shows tools/run.sh and tools/test.sh as its two commands"
fi
mkdir -p "$root/work/shared"
cp -a "$shared/." "$root/work/shared/"
chmod -R a-w "$root/work/shared"
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# --- mounts (each made private at once, so nothing mounted below propagates to the host) ---------
bind() {
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mount --make-private "$2"
}
bind "$root/work/shared" "$root/work/shared"
mount -o remount,bind,ro "$root/work/shared"
bind /proc "$root/proc"
bind /sys "$root/sys"
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
bind /dev/shm "$root/dev/shm"

# --- the two commands ----------------------------------------------------------------------------
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "$1" >> "$log" 2>&1 < /dev/null
}
result=PASS
durations=()
for cmd in tools/run.sh tools/test.sh; do
  say "running: cd /work/main && $cmd"
  t0=$SECONDS
  rc=0
  run_child in_root "cd /work/main && $cmd" || rc=$?
  d=$((SECONDS - t0))
  durations+=("$cmd $(fmt_duration "$d") (exit $rc)")
  say "$cmd finished in $(fmt_duration "$d") with exit status $rc"
  if [ "$rc" -ne 0 ]; then result="FAIL ($cmd exited with $rc)"; break; fi
done

# How long install_deps.sh's apt-get install took, and how many packages it brought in.
apt_summary="unknown"
apt_line=$(awk '/^Start-Date:/ {s = $2 " " $3} /^Commandline:/ {c = $0}
                /^Install:/ {n = gsub(/\), /, "&") + 1}
                /^End-Date:/ {if (c ~ /--no-install-recommends/) print s "|" $2 " " $3 "|" n}' \
           "$root/var/log/apt/history.log" 2>/dev/null | tail -1)
if [ -n "$apt_line" ]; then
  IFS='|' read -r a_start a_end a_count <<< "$apt_line"
  a_secs=$(($(date -d "$a_end" +%s) - $(date -d "$a_start" +%s)))
  apt_summary="$a_count packages installed by install_deps.sh in $(fmt_duration "$a_secs") (part of tools/run.sh)"
fi

# A test that finds a tool, module or data set missing may skip instead of failing: keep the test
# logs beside the log (tools/test.sh's build/test-logs/ when it writes them, else ctest's
# LastTest.log of each build folder) and list every skip they report.
logs_dir="${log%.log}.test-logs"
mkdir -p "$logs_dir"
if [ -d "$root/work/main/build/test-logs" ]; then
  cp -a "$root/work/main/build/test-logs/." "$logs_dir/"
fi
for t in build build-sanitize; do
  f="$root/work/main/$t/Testing/Temporary/LastTest.log"
  [ -f "$f" ] && cp "$f" "$logs_dir/$t.LastTest.log"
done
skip_re='skipped:|: skipped|skipping|tests skipped|is skipped because'
skips=$(cat "$logs_dir"/* 2>/dev/null | grep -Ec "$skip_re" || true)
say "$skips skip messages in the test logs, kept in $logs_dir/"
grep -EH "$skip_re" "$logs_dir"/* 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s|^'"$logs_dir"'/||; s/^/    /' | sort | uniq -c |
  tee -a "$log" || true

summary() {
  echo
  echo "fresh_machine_check summary"
  echo "  commit:  $rev"
  echo "  date:    $(date '+%F %T %Z')"
  echo "  system:  Debian $(cat "$root/etc/debian_version") (minbase chroot), host kernel $(uname -r)"
  echo "  CPU:     ${cpu:-unknown}, $(nproc) cores"
  for d in "${durations[@]}"; do echo "  $d"; done
  echo "  apt:     $apt_summary"
  echo "  log:     $log (test logs: $logs_dir/)"
  echo "  result:  $result"
}
summary | tee -a "$log"
[ "$result" = PASS ]
