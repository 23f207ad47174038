#!/bin/sh
# Installs, from Debian 12's archive, everything needed to build
# xoauth2-relay and run its tests and demo. Safe to run again: apt-get
# skips what is present. Postfix is installed with "No configuration" so
# that the package leaves /etc/postfix/main.cf alone and starts nothing;
# the tests run their own Postfix instances.
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

packages="
  g++ cmake make pkg-config clang-format clang-16 libclang-rt-16-dev
  libsasl2-dev libsasl2-2 libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev googletest libmilter-dev
  postfix python3 python3-aiosmtpd python3-cryptography openssl
  ca-certificates tinyproxy-bin
"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "postfix postfix/main_mailer_type select No configuration" |
  debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086  # the list is meant to split into words
apt-get install -y -q --no-install-recommends $missing
