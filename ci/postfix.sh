#!/usr/bin/env bash
# A real Postfix on 127.0.0.1 for the real-server tests (tests/test_postfix.py).
#
#   ci/postfix.sh          install (if missing), configure and start it; the last
#                          line on stdout is FASTREPLY_POSTFIX=127.0.0.1:PORT
#   ci/postfix.sh --stop   stop it
#
#   line="$(bash ci/postfix.sh)"      # as .ci/run does: under set -e a failure stops
#   export "$line"                    # the run (not so with `eval "$(...)"` or `&&`)
#
# What it sets up:
#   - Debian's postfix package, installed with apt if it is not installed (debconf
#     answer "No configuration": the package's own default instance stays unconfigured
#     and is never started by this script).
#   - A separate Postfix instance of its own, config in /etc/postfix-fastreply, queue in
#     /var/spool/postfix-fastreply: an existing mail setup in /etc/postfix is never read
#     or changed.  Its only listener is 127.0.0.1:$FASTREPLY_POSTFIX_PORT (default 10025),
#     no port 25, IPv4 loopback only.
#   - A local user fastreply-test (system account, no login, no home).  Domains
#     fastreply.test and localhost are local; unknown local users get 550 at RCPT;
#     nobody may relay (127.0.0.1 is not in mynetworks): RCPT to any other domain gets
#     "Relay access denied".  VRFY is on, PIPELINING is announced (Postfix's default).
#   - Mail to the user is delivered to /var/mail/fastreply-test (emptied on every run);
#     the log goes to /var/log/postfix-fastreply.log (no syslog needed).
#
# Idempotent: run it again and it checks the install, rewrites the configuration
# (only files whose content changed) and starts the instance, or restarts it if its
# configuration changed; a stale pid file (a run killed without --stop) is fine.
# Needs root (re-runs itself with `sudo -n` if that works).  It never removes a package: if installing postfix would remove one (another
# MTA such as exim4 or opensmtpd is installed), it says so and exits 1.  When it
# installs postfix itself it records that in /var/lib/fastreply-ci/postfix-installed.
set -euo pipefail

PORT="${FASTREPLY_POSTFIX_PORT:-10025}"
HOST=127.0.0.1
CONF=/etc/postfix-fastreply
QUEUE=/var/spool/postfix-fastreply
DATA=/var/lib/postfix-fastreply
LOG=/var/log/postfix-fastreply.log
USER_NAME=fastreply-test
DOMAIN=fastreply.test
MARK=/var/lib/fastreply-ci

say() { echo "postfix.sh: $*" >&2; }
die() { echo "postfix.sh: error: $*" >&2; exit 1; }

ACTION=start
case "${1:-}" in
    "") ;;
    --stop) ACTION=stop ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (use no argument to start, --stop to stop)" ;;
esac

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env FASTREPLY_POSTFIX_PORT="$PORT" bash "$0" "$@"
    fi
    die "must run as root (installs a package, adds a user, starts Postfix) and" \
        "'sudo -n' is not available; run it as root: sudo bash $0 $*"
fi

running() { [ -f "$CONF/main.cf" ] && postfix -c "$CONF" status >/dev/null 2>&1; }

if [ "$ACTION" = stop ]; then
    if command -v postfix >/dev/null 2>&1 && running; then
        postfix -c "$CONF" stop >&2
        say "stopped"
    else
        say "not running"
    fi
    exit 0
fi

case "$PORT" in
    ''|*[!0-9]*) die "FASTREPLY_POSTFIX_PORT must be a port number, not '$PORT'" ;;
esac

START=$SECONDS

# -- 1. the package ------------------------------------------------------------
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
if ! installed postfix; then
    command -v apt-get >/dev/null || die "postfix is not installed and there is no apt-get"
    say "installing Debian's postfix"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # Never remove anything: an installed MTA (exim4, opensmtpd, sendmail, ...)
    # conflicts with postfix, and apt would silently remove it.
    removed="$(apt-get install -s --no-install-recommends postfix | sed -n 's/^Remv \([^ ]*\).*/\1/p')"
    if [ -n "$removed" ]; then
        die "installing postfix would remove: $(echo "$removed" | tr '\n' ' ')(another MTA is installed)." \
            "This script does not remove packages it did not install; remove them yourself" \
            "or run the Postfix tests on another machine."
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get install -y -q --no-install-recommends postfix >&2 \
        || die "apt-get install postfix failed (see above)"
    mkdir -p "$MARK"
    echo "postfix installed by ci/postfix.sh on $(date -u +%FT%TZ)" > "$MARK/postfix-installed"
    say "postfix installed ($((SECONDS - START))s)"
fi
command -v postfix >/dev/null || die "the postfix package is installed but the postfix command is missing"
VERSION="$(postconf -d -h mail_version)"
say "Postfix $VERSION"
case "$VERSION" in
    2.*|3.[0-5].*) COMPAT=2 ;;
    *) COMPAT=3.6 ;;
esac

# -- 2. the local user ---------------------------------------------------------
if ! getent passwd "$USER_NAME" >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --comment "fastreply Postfix tests" "$USER_NAME"
    say "user $USER_NAME created"
fi

# -- 3. the instance's configuration -------------------------------------------
mkdir -p "$CONF" "$DATA" "$QUEUE"
# Postfix waits until a configuration file is over a second old before it reads
# it: each file is replaced only when its content changes, so a rerun is quick.
CHANGED=
install_if_changed() {  # install_if_changed NEW FINAL
    if cmp -s "$1" "$2"; then rm -f "$1"; else mv "$1" "$2"; CHANGED=1; fi
}
# master.cf: Debian's services, with no chroot (nothing is copied into one), the
# public smtp service on port 25 off, and smtpd on HOST:PORT instead.
MASTER_DIST=/usr/share/postfix/master.cf.dist
[ -f "$MASTER_DIST" ] || die "no $MASTER_DIST to make master.cf from"
{
    echo "# Written by fastreply's ci/postfix.sh from $MASTER_DIST; test instance only."
    awk '/^[^#[:space:]]/ {
             if ($1 == "smtp" && $2 == "inet") { print "#" $0; next }
             $5 = "n"
         }
         { print }' "$MASTER_DIST"
    echo "$HOST:$PORT inet n - n - - smtpd"
} > "$CONF/master.cf.new"
install_if_changed "$CONF/master.cf.new" "$CONF/master.cf"
# main.cf: written whole, so nothing an earlier run set lingers.
cat > "$CONF/main.cf.new" <<EOF
# Written by fastreply's ci/postfix.sh; test instance only.
compatibility_level = $COMPAT
config_directory = $CONF
queue_directory = $QUEUE
data_directory = $DATA
maillog_file = $LOG
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination = \$mydomain, \$myhostname, localhost, localhost.localdomain
inet_interfaces = $HOST
inet_protocols = ipv4
# No client may relay, 127.0.0.1 included (192.0.2.1 is TEST-NET-1: nobody).
mynetworks = 192.0.2.1/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# Unknown local users: 550 at RCPT.
alias_maps =
alias_database =
local_recipient_maps = proxy:unix:passwd.byname \$alias_maps
disable_vrfy_command = no
smtpd_discard_ehlo_keywords =
smtpd_error_sleep_time = 0s
relayhost =
default_transport = error:this test instance sends no mail out
biff = no
EOF
install_if_changed "$CONF/main.cf.new" "$CONF/main.cf"
# Keep the log under 5 MB (one old copy) and the test user's mailbox empty:
# nobody reads what the tests deliver.
if [ -f "$LOG" ] && [ "$(stat -c %s "$LOG")" -gt 5000000 ]; then mv -f "$LOG" "$LOG.1"; fi
touch "$LOG"
if [ -f "/var/mail/$USER_NAME" ]; then : > "/var/mail/$USER_NAME"; fi
chown postfix: "$DATA"  # mail_owner (main.cf keeps the default)
# Create the queue directories and fix their owners and modes.
if ! postfix -c "$CONF" check >&2; then
    tail -n 20 "$LOG" >&2 || true
    die "postfix check failed for $CONF (log: $LOG)"
fi

# -- 4. start (or restart) and wait for the greeting ----------------------------
if running && [ -n "$CHANGED" ]; then
    # A restart, not a reload: the port may have changed, and is checked below.
    postfix -c "$CONF" stop >&2
    say "configuration changed: restarting"
fi
if running; then
    say "already running"
else
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "$HOST:$PORT is already taken by another program; choose another" \
            "port with FASTREPLY_POSTFIX_PORT"
    fi
    postfix -c "$CONF" start >&2 || die "postfix start failed (log: $LOG)"
fi
greeting=""
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
    if { exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null; then
        IFS= read -r -t 5 greeting <&3 2>/dev/null || true
        printf 'QUIT\r\n' >&3 2>/dev/null || true
        exec 3<&- 3>&-
        case "$greeting" in 220*) break ;; esac
    fi
    sleep 0.1
done
case "$greeting" in
    220*) ;;
    *) tail -n 20 "$LOG" >&2 || true
       die "no 220 greeting from $HOST:$PORT within 30s (got '${greeting%$'\r'}'; log: $LOG)" ;;
esac
say "ready in $((SECONDS - START))s: ${greeting%$'\r'}"
echo "FASTREPLY_POSTFIX=$HOST:$PORT"
