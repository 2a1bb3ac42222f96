#!/usr/bin/env bash
# A real Postfix on 127.0.0.1 for the real-server tests (tests/test_postfix.py,
# tests/test_postfix_sending.py).
#
#   ci/postfix.sh          install (if missing), configure and start it; the only
#                          line on stdout is FASTREPLY_POSTFIX=127.0.0.1:PORT
#   ci/postfix.sh --stop   stop it
#   ci/postfix.sh --install  only install the package (if missing) and check that
#                          smtp-sink and smtp-source are there (ci/main.sh's e2e bench)
#
#   line="$(bash ci/postfix.sh)"      # as .ci/run does: under set -e a failure stops
#   export "$line"                    # the run (not so with `eval "$(...)"` or `&&`)
#
# What it sets up:
#   - Debian's postfix package, installed with apt if it is not installed (debconf
#     answer "No configuration": the package's own default instance stays unconfigured
#     and is never started by this script).  The package also brings Postfix's test
#     programs smtp-sink and smtp-source (in /usr/sbin), which `fastreply bench --e2e`
#     uses; the script checks they are there.
#   - A separate Postfix instance of its own, config in /etc/postfix-fastreply, queue in
#     /var/spool/postfix-fastreply: an existing mail setup in /etc/postfix is never read
#     or changed.  No port 25, IPv4 loopback only.  Four listeners, by convention at
#     PORT to PORT+3 (PORT is $FASTREPLY_POSTFIX_PORT, default 10025; the port
#     printed on stdout is PORT, the others are derived from it):
#       PORT     the main one: PIPELINING, CHUNKING, SIZE, DSN, SMTPUTF8 ... announced
#       PORT+1   the same server without PIPELINING and without CHUNKING
#       PORT+2   the same server offering STARTTLS (a self-signed certificate made
#                with openssl, kept in /etc/postfix-fastreply/tls; TLS is optional)
#       PORT+3   the same server dropping connections: after the second error of a
#                session (a refused recipient, say) it answers 421 and hangs up
#                (smtpd_hard_error_limit = 2), and after 2 idle seconds too
#                (smtpd_timeout = 2s): the tests of a pool that must replace them
#   - A local user fastreply-test (system account, no login, no home).  Domains
#     fastreply.test and localhost are local; unknown local users get 550 at RCPT;
#     fastreply-test+anything@fastreply.test is the same user (recipient_delimiter +);
#     nobody may relay (127.0.0.1 is not in mynetworks): RCPT to any other domain gets
#     "554 Relay access denied".  VRFY is on.  message_size_limit is 10240000.
#   - Addresses that are refused, each at the stage it names (sender refusals come at
#     MAIL: smtpd_delay_reject = no).  Any other sender is accepted.
#       MAIL FROM:<refuse-perm@sender.test>       553 5.7.1 at MAIL
#       MAIL FROM:<refuse-temp@sender.test>       451 4.7.1 at MAIL
#       MAIL FROM:<close@sender.test>             421 4.7.0 at MAIL, then disconnects
#       RCPT TO:<refuse-temp@fastreply.test>      450 4.2.0 at RCPT
#       RCPT TO:<close@fastreply.test>            421 4.7.0 at RCPT, then disconnects
#       MAIL FROM:<datacmd-perm@sender.test>      554 5.7.1 to the DATA command
#       MAIL FROM:<datacmd-temp@sender.test>      451 4.7.1 to the DATA command
#       MAIL FROM:<datacmd-close@sender.test>     421 4.7.0 to the DATA command, disconnects
#       MAIL FROM:<data-perm@sender.test>         554 5.7.1 at the end of data
#       MAIL FROM:<data-temp@sender.test>         451 4.7.1 at the end of data
#       MAIL FROM:<data-close@sender.test>        421 4.7.0 at the end of data, disconnects
#       a header line "X-Fastreply-Reject: yes"   550 5.7.1 at the end of data (header_checks)
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
    --install) ACTION=install ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (use no argument to start, --stop to stop, --install to install)" ;;
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
[ "$PORT" -ge 1 ] && [ "$PORT" -le 65532 ] || die "FASTREPLY_POSTFIX_PORT must be 1-65532 (PORT+3 is used too)"
# The other listeners, by convention (tests/test_postfix_sending.py derives them too).
NOPIPE_PORT=$((PORT + 1))
TLS_PORT=$((PORT + 2))
DROP_PORT=$((PORT + 3))
PORTS="$PORT $NOPIPE_PORT $TLS_PORT $DROP_PORT"
TLS_DIR="$CONF/tls"

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
# Postfix's test programs, for `fastreply bench --e2e` (Debian ships them in the
# postfix package; other packagings may not).
for tool in smtp-sink smtp-source; do
    found="$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v "$tool" || true)"
    if [ -n "$found" ]; then
        say "$tool: $found"
    else
        say "warning: $tool is missing (the postfix package here does not ship it);" \
            "fastreply bench --e2e will skip what needs it"
    fi
done
VERSION="$(postconf -d -h mail_version)"
say "Postfix $VERSION"
case "$VERSION" in
    2.*|3.[0-5].*) COMPAT=2 ;;
    *) COMPAT=3.6 ;;
esac

if [ "$ACTION" = install ]; then
    exit 0
fi

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
# public smtp service on port 25 off, and smtpd on HOST:PORT instead, plus the
# same smtpd without PIPELINING and CHUNKING on PORT+1 and with STARTTLS on PORT+2.
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
    echo "$HOST:$NOPIPE_PORT inet n - n - - smtpd"
    echo "  -o smtpd_discard_ehlo_keywords=silent-discard,pipelining,chunking"
    echo "$HOST:$TLS_PORT inet n - n - - smtpd"
    echo "  -o smtpd_tls_security_level=may"
    echo "$HOST:$DROP_PORT inet n - n - - smtpd"
    echo "  -o smtpd_hard_error_limit=2"
    echo "  -o smtpd_soft_error_limit=1"
    echo "  -o smtpd_timeout=2s"
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
recipient_delimiter = +
disable_vrfy_command = no
smtpd_discard_ehlo_keywords =
smtpd_error_sleep_time = 0s
message_size_limit = 10240000
# The test user's mailbox is emptied at each start of this script; within a
# session the suites, the load runs and the free-threaded suite deliver to it
# (the default limit, 51 MB, was reached by a day of reruns: "mailbox full").
mailbox_size_limit = 1024000000
relayhost =
default_transport = error:this test instance sends no mail out
biff = no
# Refusals for the sending tests (the maps are written below; texthash: needs
# no postmap).  Sender restrictions are applied at MAIL, not delayed to RCPT.
smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access texthash:$CONF/sender_access
smtpd_recipient_restrictions = check_recipient_access texthash:$CONF/recipient_access
smtpd_data_restrictions = check_sender_access texthash:$CONF/data_access
smtpd_end_of_data_restrictions = check_sender_access texthash:$CONF/end_of_data_access
header_checks = regexp:$CONF/header_checks
# STARTTLS only where master.cf turns it on (PORT+2).
smtpd_tls_security_level =
smtpd_tls_cert_file = $TLS_DIR/cert.pem
smtpd_tls_key_file = $TLS_DIR/key.pem
EOF
install_if_changed "$CONF/main.cf.new" "$CONF/main.cf"
# The access maps: who is refused, where, with what (see the header of this script).
cat > "$CONF/sender_access.new" <<EOF
refuse-perm@sender.test 553 5.7.1 fastreply test: sender refused permanently
refuse-temp@sender.test 451 4.7.1 fastreply test: sender refused for now
close@sender.test 421 4.7.0 fastreply test: closing at MAIL
EOF
install_if_changed "$CONF/sender_access.new" "$CONF/sender_access"
cat > "$CONF/recipient_access.new" <<EOF
refuse-temp@$DOMAIN 450 4.2.0 fastreply test: recipient refused for now
close@$DOMAIN 421 4.7.0 fastreply test: closing at RCPT
EOF
install_if_changed "$CONF/recipient_access.new" "$CONF/recipient_access"
cat > "$CONF/data_access.new" <<EOF
datacmd-perm@sender.test 554 5.7.1 fastreply test: DATA refused permanently
datacmd-temp@sender.test 451 4.7.1 fastreply test: DATA refused for now
datacmd-close@sender.test 421 4.7.0 fastreply test: closing at DATA
EOF
install_if_changed "$CONF/data_access.new" "$CONF/data_access"
cat > "$CONF/end_of_data_access.new" <<EOF
data-perm@sender.test 554 5.7.1 fastreply test: message refused permanently
data-temp@sender.test 451 4.7.1 fastreply test: message refused for now
data-close@sender.test 421 4.7.0 fastreply test: closing at the end of data
EOF
install_if_changed "$CONF/end_of_data_access.new" "$CONF/end_of_data_access"
cat > "$CONF/header_checks.new" <<EOF
/^X-Fastreply-Reject: *yes/ REJECT fastreply test: content rejected
EOF
install_if_changed "$CONF/header_checks.new" "$CONF/header_checks"
# A self-signed certificate for the STARTTLS listener, made once (again when it
# is missing or expires within a week).
mkdir -p "$TLS_DIR"
if ! openssl x509 -in "$TLS_DIR/cert.pem" -noout -checkend 604800 >/dev/null 2>&1 \
        || [ ! -s "$TLS_DIR/key.pem" ]; then
    command -v openssl >/dev/null || die "openssl is needed to make the STARTTLS certificate"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mx.$DOMAIN" \
        -addext "subjectAltName=DNS:mx.$DOMAIN,DNS:localhost,IP:$HOST" \
        -keyout "$TLS_DIR/key.pem.new" -out "$TLS_DIR/cert.pem.new" >/dev/null 2>&1 \
        || die "openssl could not make the STARTTLS certificate"
    chmod 600 "$TLS_DIR/key.pem.new"
    chmod 644 "$TLS_DIR/cert.pem.new"
    mv "$TLS_DIR/key.pem.new" "$TLS_DIR/key.pem"
    mv "$TLS_DIR/cert.pem.new" "$TLS_DIR/cert.pem"
    CHANGED=1
    say "made a self-signed certificate in $TLS_DIR"
fi
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
    for port in $PORTS; do
        if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
            die "$HOST:$port is already taken by another program; choose another" \
                "port with FASTREPLY_POSTFIX_PORT (PORT to PORT+3 are used)"
        fi
    done
    postfix -c "$CONF" start >&2 || die "postfix start failed (log: $LOG)"
fi
# ehlo_of PORT: the greeting and the EHLO reply of HOST:PORT on one line, each
# reply line followed by "|" (status 1 when nothing answers).
ehlo_of() {
    local line out
    { exec 3<>"/dev/tcp/$HOST/$1"; } 2>/dev/null || return 1
    if ! IFS= read -r -t 5 line <&3; then exec 3<&- 3>&-; return 1; fi
    out="${line%$'\r'}|"
    case "$line" in
        220*) printf 'EHLO postfix-sh.fastreply.test\r\n' >&3 2>/dev/null || true
              while IFS= read -r -t 5 line <&3; do
                  out="$out${line%$'\r'}|"
                  case "$line" in 250-*) ;; *) break ;; esac
              done ;;
    esac
    printf 'QUIT\r\n' >&3 2>/dev/null || true
    exec 3<&- 3>&-
    printf '%s\n' "$out"
}
deadline=$((SECONDS + 30))
for port in $PORTS; do
    answer=""
    while [ "$SECONDS" -lt "$deadline" ]; do
        answer="$(ehlo_of "$port" || true)"
        case "$answer" in 220*"|250 "*) break ;; esac
        sleep 0.1
    done
    case "$answer" in
        220*"|250 "*) ;;
        *) tail -n 20 "$LOG" >&2 || true
           die "no 220 greeting and EHLO reply from $HOST:$port within 30s" \
               "(got '$answer'; log: $LOG)" ;;
    esac
    # Each listener offers what it is there for.
    case "$port:$answer" in
        "$PORT:"*"|250"[-\ ]"PIPELINING|"*"|250"[-\ ]"CHUNKING|"*) ;;
        "$PORT:"*) die "$HOST:$PORT does not announce PIPELINING and CHUNKING: $answer" ;;
        "$NOPIPE_PORT:"*PIPELINING*|"$NOPIPE_PORT:"*CHUNKING*)
            die "$HOST:$NOPIPE_PORT still announces PIPELINING or CHUNKING: $answer" ;;
        "$TLS_PORT:"*"|250"[-\ ]"STARTTLS|"*) ;;
        "$TLS_PORT:"*) die "$HOST:$TLS_PORT does not offer STARTTLS: $answer" ;;
    esac
done
say "ready in $((SECONDS - START))s: ${answer%%|*}"
say "listeners: $HOST:$PORT (main), $HOST:$NOPIPE_PORT (no PIPELINING, no CHUNKING)," \
    "$HOST:$TLS_PORT (STARTTLS), $HOST:$DROP_PORT (drops connections: 2 errors, 2 s idle)"
echo "FASTREPLY_POSTFIX=$HOST:$PORT"
