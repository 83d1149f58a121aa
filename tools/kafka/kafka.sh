#!/usr/bin/env bash
# aetherbus - Apache-2.0
#
# tools/kafka/kafka.sh: a real single-node Apache Kafka (KRaft, combined
# controller+broker on free 127.0.0.1 ports) for the test suite and the
# benchmarks; never part of a product image. Owns resolving the broker jars
# (pom.xml beside this file, cached outside the source tree), formatting and
# starting one broker in a state directory, and stopping it by PID. Topics
# are not made here: the broker runs with auto.create.topics.enable=false
# and aetherbus-admin creates them, as in production.
#
#   kafka.sh fetch             resolve the jars into the cache, print its path
#   kafka.sh start STATE_DIR   start a fresh broker, print BROKERS=host:port,
#                              write STATE_DIR/bootstrap and STATE_DIR/pid
#   kafka.sh stop STATE_DIR    stop it (SIGTERM, then SIGKILL), remove state
#   kafka.sh stop --keep STATE_DIR
#                              stop it but keep its config, ports and data
#   kafka.sh start --resume STATE_DIR
#                              start the broker kept by stop --keep again:
#                              same ports, cluster id and topics (tests that
#                              stop and restart a broker)
#
# Environment:
#   AB_KAFKA_VERSION     org.apache.kafka:kafka_2.13 version (default: the
#                        kafka.version of pom.xml, 3.9.1)
#   AB_KAFKA_CACHE       jar cache root
#                        (default ${XDG_CACHE_HOME:-$HOME/.cache}/aetherbus)
#   AB_KAFKA_HEAP        JVM heap (default 512m)
#   AB_KAFKA_START_TIMEOUT  seconds to wait for metadata (default 120)
#   AB_KAFKA_KEEP_STATE  1: stop keeps STATE_DIR (logs) instead of removing it
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/pom.xml
# the version lives in pom.xml (one place; scripts/test.sh reads it too)
POM_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1)
VERSION=${AB_KAFKA_VERSION:-$POM_VERSION}
CACHE_ROOT=${AB_KAFKA_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/aetherbus}
KDIR=$CACHE_ROOT/kafka-$VERSION
LIBS=$KDIR/libs
STAMP=$LIBS/.aetherbus-complete
HEAP=${AB_KAFKA_HEAP:-512m}
START_TIMEOUT=${AB_KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=30
MARKER=.aetherbus-kafka

say() { echo "kafka.sh: $*" >&2; }
die() {
        say "$*"
        exit 1
}

[ -n "$VERSION" ] || die "no <kafka.version> in $POM"

usage() {
        local code=$1
        shift
        if [ $# -gt 0 ]; then
                say "$*"
        fi
        cat >&2 <<EOF
Usage: kafka.sh fetch
       kafka.sh start [--resume] STATE_DIR
       kafka.sh stop [--keep] STATE_DIR

  fetch   resolve Apache Kafka $VERSION (kafka_2.13) with Maven into
          $LIBS (once; reused while the stamp matches pom.xml)
  start   stop any broker left in STATE_DIR, format fresh KRaft storage there,
          start one controller+broker on free 127.0.0.1 ports, wait until it
          answers metadata; prints BROKERS=127.0.0.1:PORT and writes
          STATE_DIR/bootstrap and STATE_DIR/pid. Exits non-zero with the tail
          of the broker log when it cannot start.
          --resume: start the broker that stop --keep left in STATE_DIR
          again, on the same ports with the same data (no new storage).
  stop    SIGTERM the broker by PID (SIGKILL after ${STOP_TIMEOUT}s), remove STATE_DIR
          --keep: keep STATE_DIR (config, ports, data) for start --resume.
EOF
        exit "$code"
}

need() {
        command -v "$1" >/dev/null 2>&1 || die "$1 not found (scripts/deps.sh installs it)"
}

java_bin() {
        if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
                echo "$JAVA_HOME/bin/java"
        else
                need java
                command -v java
        fi
}

# What the cache was made from: a change of version or pom.xml refetches.
stamp_text() {
        echo "kafka_2.13 $VERSION pom $(sha256sum "$POM" | cut -d' ' -f1)"
}

# Resolves the jars into $LIBS unless the stamp says they are there: a
# cached run does no Maven call at all. Serialised by a lock so parallel
# runs never see a half-copied directory.
fetch() {
        local tmp want

        want=$(stamp_text)
        if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
                return 0
        fi
        mkdir -p "$KDIR"
        exec 9>"$KDIR/.lock"
        flock 9
        if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
                exec 9>&-
                return 0
        fi
        need mvn
        say "resolving org.apache.kafka:kafka_2.13:$VERSION with Maven into $LIBS"
        tmp=$(mktemp -d "$KDIR/libs.tmp.XXXXXX")
        if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$VERSION" \
                dependency:copy-dependencies -DoutputDirectory="$tmp" \
                >"$tmp.log" 2>&1; then
                sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
                rm -rf "$tmp" "$tmp.log"
                exec 9>&-
                die "Maven could not resolve kafka_2.13:$VERSION (see above)"
        fi
        rm -f "$tmp.log"
        if ! ls "$tmp"/kafka_2.13-"$VERSION".jar >/dev/null 2>&1; then
                rm -rf "$tmp"
                exec 9>&-
                die "Maven ran but kafka_2.13-$VERSION.jar is not in its output"
        fi
        echo "$want" >"$tmp/.aetherbus-complete"
        rm -rf "$LIBS"
        mv "$tmp" "$LIBS"
        exec 9>&-
}

# Two free TCP ports on 127.0.0.1, held together while picked so they differ.
free_ports() {
        need python3
        python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# A KRaft cluster id: 16 random bytes, base64url without padding, not
# starting with '-' (it is a command-line argument).
cluster_id() {
        local id

        while :; do
                id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
                case $id in
                -*) ;;
                *)
                        echo "$id"
                        return 0
                        ;;
                esac
        done
}

write_config() {
        local state=$1 port=$2 cport=$3

        cat >"$state/server.properties" <<EOF
# written by tools/kafka/kafka.sh: single-node KRaft for tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/data

# like most production clusters: aetherbus-admin makes the topics
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0

# small: two cores shared with the tests
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.retention.check.interval.ms=300000
EOF
        cat >"$state/log4j.properties" <<EOF
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
}

# JVM flags into JVM_OPTS: bounded heap, serial GC and few compiler threads
# so the broker does not take the two cores the tests run on.
jvm_opts() {
        local state=$1

        JVM_OPTS=(-Xms128m "-Xmx$HEAP" -XX:+UseSerialGC -XX:CICompilerCount=2
                -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
                -Djava.net.preferIPv4Stack=true
                "-Dlog4j.configuration=file:$state/log4j.properties")
}

# The PID in STATE_DIR/pid when it is still our broker for this STATE_DIR
# (guards against a recycled PID).
running_pid() {
        local state=$1 pid

        [ -f "$state/pid" ] || return 1
        pid=$(cat "$state/pid")
        case $pid in
        '' | *[!0-9]*) return 1 ;;
        esac
        [ -r "/proc/$pid/cmdline" ] || return 1
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$state/server.properties" || return 1
        echo "$pid"
}

alive() {
        kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_pid() {
        local pid=$1 i

        kill -TERM "$pid" 2>/dev/null || return 0
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
                alive "$pid" || return 0
                sleep 0.1
        done
        say "broker $pid did not stop in ${STOP_TIMEOUT}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                alive "$pid" || return 0
                sleep 0.1
        done
        die "broker $pid survived SIGKILL"
}

fail_start() {
        local state=$1 pid=${2:-} why=$3

        say "cannot start Kafka $VERSION: $why"
        if [ -f "$state/kafka.log" ]; then
                if grep -qE '^\[[^]]*\] (ERROR|FATAL)|Exception' "$state/kafka.log"; then
                        say "errors in $state/kafka.log:"
                        grep -E '^\[[^]]*\] (ERROR|FATAL)|Exception' "$state/kafka.log" |
                                tail -n 15 | sed 's/^/  | /' >&2
                fi
                say "last lines of $state/kafka.log:"
                tail -n 25 "$state/kafka.log" | sed 's/^/  | /' >&2
        fi
        if [ -n "$pid" ]; then
                stop_pid "$pid" || true
        fi
        rm -f "$state/pid" "$state/bootstrap"
        exit 1
}

# One attempt on fresh ports. Sets RETRY=1 when a port was taken meanwhile
# (the caller retries with new ones); any other failure exits.
start_once() {
        local state=$1 java=$2 ports port cport cid

        ports=$(free_ports)
        read -r port cport <<<"$ports"
        rm -rf "$state/data"
        write_config "$state" "$port" "$cport"
        cid=$(cluster_id)
        jvm_opts "$state"

        if ! "$java" "${JVM_OPTS[@]}" -XX:TieredStopAtLevel=1 -cp "$LIBS/*" \
                kafka.tools.StorageTool format -t "$cid" \
                -c "$state/server.properties" >"$state/kafka.log" 2>&1; then
                fail_start "$state" "" "formatting KRaft storage failed"
        fi

        if ! launch "$state" "$java" "$port" "$cport"; then
                say "port $port or $cport was taken meanwhile; retrying"
                RETRY=1
        fi
}

# Runs the broker of STATE_DIR (its server.properties) and waits until it
# answers metadata on port; prints BROKERS=. Returns 1 when a port was
# taken; any other failure exits.
launch() {
        local state=$1 java=$2 port=$3 cport=$4 pid t0 from

        jvm_opts "$state"
        # only this run's lines count (a resumed broker's log has old ones)
        touch "$state/kafka.log"
        from=$(($(stat -c %s "$state/kafka.log") + 1))
        setsid "$java" "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka \
                "$state/server.properties" </dev/null >>"$state/kafka.log" 2>&1 &
        pid=$!
        echo "$pid" >"$state/pid"

        t0=$SECONDS
        while ((SECONDS - t0 < START_TIMEOUT)); do
                if ! alive "$pid"; then
                        if tail -c "+$from" "$state/kafka.log" | grep -q 'Address already in use'; then
                                rm -f "$state/pid"
                                return 1
                        fi
                        fail_start "$state" "" "the broker exited"
                fi
                # the log line is cheap to look for; then the real check
                if tail -c "+$from" "$state/kafka.log" | grep -q 'Kafka Server started' &&
                        kcat -b "127.0.0.1:$port" -L -m 5 >/dev/null 2>&1; then
                        echo "127.0.0.1:$port" >"$state/bootstrap"
                        say "Kafka $VERSION up at 127.0.0.1:$port (controller $cport, pid $pid, $((SECONDS - t0))s after launch)"
                        echo "BROKERS=127.0.0.1:$port"
                        return 0
                fi
                sleep 0.25
        done
        fail_start "$state" "$pid" "no metadata answer from 127.0.0.1:$port within ${START_TIMEOUT}s"
}

# The broker that stop --keep left in STATE_DIR, on its old ports and data.
resume() {
        local state=$1 java port cport

        need kcat
        java=$(java_bin)
        fetch
        [ -d "$state" ] || die "nothing to resume: $state does not exist"
        state=$(cd "$state" && pwd)
        if [ ! -f "$state/$MARKER" ] || [ ! -f "$state/server.properties" ] ||
                [ ! -d "$state/data" ]; then
                die "nothing to resume in $state: start it, then stop --keep"
        fi
        if running_pid "$state" >/dev/null; then
                die "a broker already runs in $state"
        fi
        port=$(sed -n 's|^listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$state/server.properties")
        cport=$(sed -n 's|^listeners=.*CONTROLLER://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$state/server.properties")
        if [ -z "$port" ] || [ -z "$cport" ]; then
                die "no listeners in $state/server.properties"
        fi
        echo "--- resumed by kafka.sh start --resume ---" >>"$state/kafka.log"
        if ! launch "$state" "$java" "$port" "$cport"; then
                fail_start "$state" "" "port $port or $cport is taken now: cannot resume on the same ports"
        fi
}

start() {
        local state=$1 java attempt

        need kcat
        java=$(java_bin)
        fetch
        mkdir -p "$state"
        state=$(cd "$state" && pwd)
        do_stop "$state" keep
        touch "$state/$MARKER"
        for attempt in 1 2 3; do
                RETRY=0
                start_once "$state" "$java"
                if [ "$RETRY" -eq 0 ]; then
                        return 0
                fi
        done
        fail_start "$state" "" "no free port pair after $attempt attempts"
}

# Stops the broker of STATE_DIR; removes STATE_DIR (only one this script
# made: it holds the marker) unless asked to keep it.
do_stop() {
        local state=$1 keep=${2:-} pid

        if pid=$(running_pid "$state"); then
                say "stopping broker pid $pid"
                stop_pid "$pid"
        fi
        rm -f "$state/pid" "$state/bootstrap"
        if [ -z "$keep" ] && [ "${AB_KAFKA_KEEP_STATE:-0}" != 1 ] &&
                [ -f "$state/$MARKER" ]; then
                rm -rf "$state"
        fi
}

stop() {
        local state=$1 keep=${2:-}

        if [ ! -d "$state" ]; then
                say "nothing to stop in $state"
                return 0
        fi
        state=$(cd "$state" && pwd)
        do_stop "$state" "$keep"
}

[ $# -ge 1 ] || usage 2 "missing mode"
mode=$1
shift
case $mode in
fetch)
        [ $# -eq 0 ] || usage 2 "fetch takes no argument"
        fetch
        echo "$LIBS"
        ;;
start)
        opt=
        if [ "${1:-}" = --resume ]; then
                opt=resume
                shift
        fi
        [ $# -eq 1 ] || usage 2 "start needs STATE_DIR"
        if [ -n "$opt" ]; then
                resume "$1"
        else
                start "$1"
        fi
        ;;
stop)
        opt=
        if [ "${1:-}" = --keep ]; then
                opt=keep
                shift
        fi
        [ $# -eq 1 ] || usage 2 "stop needs STATE_DIR"
        stop "$1" "$opt"
        ;;
-h | --help | help)
        usage 0
        ;;
*)
        usage 2 "unknown mode: $mode"
        ;;
esac
