#!/bin/sh
# Installs the Debian packages the test suite drives for real: Postfix, miltertest, GnuPG, Sequoia sq, rnp, OpenSSL,
# knot, unbound, swaks, and an unpacked (never installed) sendmail-bin, which conflicts with Postfix as a package.
# Idempotent: does nothing when everything is present. Needs root; prints why and exits 1 otherwise.
set -eu

SMROOT=${MUSE_SENDMAIL_ROOT:-/opt/muse-sendmail}
PKGS="postfix m4 sendmail-cf liblockfile1 libwrap0 libdb5.3 libldap-2.5-0 libnsl2 libsasl2-2 libssl3
miltertest gnupg openssl sq rnp swaks bind9-dnsutils knot knot-dnsutils unbound opendkim opendkim-tools opendmarc python3-dkim python3 iproute2"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -z "$missing" ] && [ -x "$SMROOT/usr/libexec/sendmail/sendmail" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-debian: missing packages:$missing; run as root to install them" >&2
  exit 1
fi

# Package scripts must not start daemons (no init system here; tests start their own instances).
if [ ! -x /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "man-db man-db/auto-update boolean false" | debconf-set-selections

if [ -n "$missing" ]; then
  echo "install-debian: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x "$SMROOT/usr/libexec/sendmail/sendmail" ]; then
  d=$(mktemp -d)
  chmod 755 "$d"
  chown _apt "$d" 2>/dev/null || true
  (cd "$d" && apt-get download -qq sendmail-bin)
  mkdir -p "$SMROOT"
  dpkg -x "$d"/sendmail-bin_*.deb "$SMROOT"
  rm -rf "$d"
fi
