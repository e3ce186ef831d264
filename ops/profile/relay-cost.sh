#!/usr/bin/env bash
# What one package costs the relay: CPU time, context switches and system calls per accepted
# package, read with `perf stat` on the `truc serve` that `truc bench` starts, over 8 s of its
# full-speed phase (the relay's own /metrics counts the packages of that window).
#
#   bash ops/profile/relay-cost.sh [TRUC_BINARY] [extra `truc bench` arguments]
#
# Needs perf (Debian: linux-perf) with the syscalls tracepoints, curl and python3; run as root.
# Default binary: target/release/truc. Example: bash ops/profile/relay-cost.sh target/release/truc --units 30000
# With `--broker amqp` it also prints RabbitMQ's CPU per package (its `beam.smp`, from /proc) over
# the same window, and the bench client's, since on two cores the three share the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/truc}
shift || true
dir=$(mktemp -d "${TMPDIR:-/tmp}/truc-cost.XXXX")
trap 'rm -rf "$dir"' EXIT
"$bin" --lang en bench --json --queued 0 --fanout 0 --units 1000 --rate-packages 0 --packages 30000 \
  --dir "$dir" "$@" > "$dir/out.json" 2> "$dir/err" &
bench=$!
pid=""
for _ in $(seq 1 150); do
  pid=$(pgrep -f "serve --config $dir" | head -1 || true)
  [ -n "$pid" ] && break
  sleep 0.2
done
[ -n "$pid" ] || { echo "truc bench started no relay; see $dir/err" >&2; cat "$dir/err" >&2; exit 1; }
port=""
for _ in $(seq 1 100); do
  port=$(ss -ltnp | grep "pid=$pid," | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.2
done
accepted() { curl -sk "https://127.0.0.1:$port/metrics" | awk '/^truc_packages_accepted_total/ {print int($2)}'; }
# The throughput phase has begun once a few thousand packages are in.
for _ in $(seq 1 600); do
  a=$(accepted || true)
  [ -n "$a" ] && [ "$a" -gt 2000 ] && break
  sleep 0.5
done
before=$(accepted)
events=task-clock,context-switches
for s in recvfrom sendto read write epoll_wait futex pwrite64 fdatasync; do
  events+=",syscalls:sys_enter_$s"
done
# CPU ticks (user + system) of a process, from /proc/<pid>/stat (fields after the command name).
ticks() { [ -n "$1" ] && awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
beam=$(pgrep -x beam.smp | head -1 || true)
client=$bench
beam0=$(ticks "$beam"); client0=$(ticks "$client")
perf stat -x, -e "$events" -p "$pid" -- sleep 8 2> "$dir/perf"
after=$(accepted)
beam1=$(ticks "$beam"); client1=$(ticks "$client")
n=$((after - before))
echo "packages accepted in the 8 s window: $n"
awk -F, -v n="$n" '$1 ~ /^[0-9.]+$/ {printf "%-34s %9.3f %s per package\n", $3, $1 / n, $2}' "$dir/perf"
hz=$(getconf CLK_TCK)
awk -v n="$n" -v hz="$hz" -v c=$((client1 - client0)) 'BEGIN {printf "%-34s %9.3f ms per package\n", "bench client CPU", c * 1000 / hz / n}'
[ -n "$beam" ] && awk -v n="$n" -v hz="$hz" -v b=$((beam1 - beam0)) 'BEGIN {printf "%-34s %9.3f ms per package\n", "RabbitMQ (beam.smp) CPU", b * 1000 / hz / n}'
wait "$bench"
python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['throughput']; print(f\"bench: {t['packages_per_s']:.0f} packages/s, p50 {t['p50_ms']:.0f} ms, p99 {t['p99_ms']:.0f} ms\")" "$dir/out.json"
