#!/usr/bin/env bash
# Builds dist/mms-gateway_<version>_<arch>.deb from the compiled binary with dpkg-deb alone.
# usage: packaging/build-deb.sh BINARY DEB_ARCH OUTDIR
set -euo pipefail
binary=$1 arch=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")
changelog_version=$(sed -n '1s/^mms-gateway (\(.*\)) .*/\1/p' "$here/debian/changelog")
if [ "$version" != "$changelog_version" ]; then
  echo "packaging/debian/changelog is at $changelog_version but package.json at $version: add a changelog entry" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
umask 022
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/mms-gateway" \
  "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/usr/share/doc/mms-gateway" \
  "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides" "$root/usr/share/mms-gateway"

install -m 0755 "$binary" "$root/usr/bin/mms-gateway"

# The unit is packaging/mms-gateway.service with the package's paths and its static user instead of
# DynamicUser (the package creates the user, so /var/lib/mms-gateway is a plain directory).
edit() { # FILE SED-SCRIPT EXPECTED-TEXT: applies the edit and fails when it no longer matches anything
  sed -i "$2" "$1"
  grep -qF -- "$3" "$1" || { echo "packaging: '$2' did not apply to $(basename "$1")" >&2; exit 1; }
}
unit=$root/lib/systemd/system/mms-gateway.service
{
  echo "# Installed by the mms-gateway Debian package. Secrets: /etc/mms-gateway/env (mode 0600, KEY=value"
  echo "# lines), written as \${KEY} in /etc/mms-gateway/gateway.toml. Local changes: systemctl edit mms-gateway."
  sed '1,/^\[Unit\]/{/^#/d}' "$here/mms-gateway.service"
} > "$unit"
edit "$unit" 's|/usr/local/bin/mms-gateway|/usr/bin/mms-gateway|g' "ExecStart=/usr/bin/mms-gateway serve"
edit "$unit" 's|^DynamicUser=yes$|User=mms-gateway\nGroup=mms-gateway|' "User=mms-gateway"
edit "$unit" 's|^# A user that exists only while the service runs;|# The package'"'"'s system user;|' "# The package's system user;"
chmod 0644 "$unit"
if grep -qE '/usr/local|DynamicUser' "$unit"; then echo "packaging: unit still names /usr/local or DynamicUser" >&2; exit 1; fi

# The shipped configuration: every key commented with its default, the database in /var/lib, the
# sandbox carriers named so the operator sees where a real MMSC and SMSC go.
conf=$root/etc/mms-gateway/gateway.toml
{
  echo "# /etc/mms-gateway/gateway.toml: installed with sandbox carriers (nothing leaves this machine)."
  echo "# Add an [[accounts]] table, set [carriers.mms] and [carriers.sms] to your MMSC and SMSC, then"
  echo "#   mms-gateway probe --config /etc/mms-gateway/gateway.toml && systemctl start mms-gateway"
  echo "#"
  cat "$repo/config.example.toml"
} > "$conf"
edit "$conf" 's|^#path = "./data/gateway.db"$|path = "/var/lib/mms-gateway/gateway.db"|' 'path = "/var/lib/mms-gateway/gateway.db"'
edit "$conf" 's|^#kind = "sandbox"$|kind = "sandbox"|' 'kind = "sandbox"'
chmod 0644 "$conf"

install -m 0644 "$here/debian/sysusers.conf" "$root/usr/lib/sysusers.d/mms-gateway.conf"
install -m 0644 "$here/debian/tmpfiles.conf" "$root/usr/lib/tmpfiles.d/mms-gateway.conf"
# The dashboard and alert rules, to import into Grafana and Prometheus.
install -m 0644 "$here/grafana/mms-gateway.json" "$here/prometheus/alerts.yml" "$root/usr/share/mms-gateway/"
install -m 0644 "$here/debian/lintian-overrides" "$root/usr/share/lintian/overrides/mms-gateway"
install -m 0644 "$here/debian/copyright" "$root/usr/share/doc/mms-gateway/copyright"
gzip -9n < "$here/debian/changelog" > "$root/usr/share/doc/mms-gateway/changelog.gz"
gzip -9n < "$here/debian/mms-gateway.1" > "$root/usr/share/man/man1/mms-gateway.1.gz"
chmod 0644 "$root/usr/share/doc/mms-gateway/changelog.gz" "$root/usr/share/man/man1/mms-gateway.1.gz"

install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$root/DEBIAN/"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/debian/control" > "$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$outdir"
out=$outdir/mms-gateway_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$out" >/dev/null
echo "$out"
