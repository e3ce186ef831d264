#!/usr/bin/env bash
# The whole test suite of Trục, exactly as CI runs it (`.ci/run` calls this script).
#
#   bash ops/test.sh
#
# 1. installs what the tests need when it is missing (Debian packages: xmlsec1 and xmllint
#    are the independent judges of our signatures and our XML; RabbitMQ for the broker tests),
# 2. starts RabbitMQ when nothing answers on 127.0.0.1:5672,
# 3. checks formatting and lints, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- 1. system packages -------------------------------------------------------------
need_pkgs=()
command -v xmlsec1 >/dev/null 2>&1 || need_pkgs+=(xmlsec1)
command -v xmllint >/dev/null 2>&1 || need_pkgs+=(libxml2-utils)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_pkgs+=(libssl-dev)
command -v rabbitmq-server >/dev/null 2>&1 || need_pkgs+=(rabbitmq-server)
# The portal's browser test drives Debian's headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || need_pkgs+=(chromium-driver)
# promtool (Debian package prometheus) judges /metrics and the alert rules.
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing: ${need_pkgs[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  # One index update, one install; recommends (exporters, fonts, extra tools) are not needed.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- 2. RabbitMQ ------------------------------------------------------------------------
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_up; then
  say "starting RabbitMQ"
  # A node whose app was stopped (rabbitmqctl stop_app) only needs start_app; a stopped node needs the server.
  timeout 60 rabbitmqctl start_app >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
  rabbit_up || { echo "RabbitMQ did not start on 127.0.0.1:5672; see /var/log/rabbitmq/" >&2; exit 1; }
fi
# The management API lets the broker's stats list every mailbox in one call (ops/rabbitmq/README.md);
# enabling an enabled plugin changes nothing.
timeout 60 rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 \
  || { echo "rabbitmq-plugins enable rabbitmq_management failed; run it as root or the rabbitmq user" >&2; exit 1; }
mgmt_up() { (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null; }
for _ in $(seq 1 30); do mgmt_up && break; sleep 1; done

# --- 3. checks and tests ----------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "cargo test"
cargo test --workspace --quiet
