#!/usr/bin/env bash
# Usage: ensure-tool.sh COMMAND [DEBIAN_PACKAGE]
# Make sure COMMAND is on PATH: install its Debian package with apt-get when running as root,
# otherwise say what to install.
set -euo pipefail
command_name=$1
package=${2:-$1}
# Debian keeps PostgreSQL's server programs (initdb, postgres) off PATH, in a versioned directory.
for dir in /usr/lib/postgresql/*/bin; do
    [ -d "$dir" ] && PATH="$PATH:$dir"
done
if command -v "$command_name" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "$command_name not found: installing Debian's $package package" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    command -v "$command_name" >/dev/null 2>&1 && exit 0
fi
cat >&2 <<MSG
$command_name is needed and is not installed.
  Debian/Ubuntu:  sudo apt-get install $package
  macOS:          brew install $package
Then run the make target again. (Run as root on Debian, make installs it by itself.)
MSG
exit 1
