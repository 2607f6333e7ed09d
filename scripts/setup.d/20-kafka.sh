#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) for the streaming tests and local use, from Maven Central.
#
# Kafka's broker is an ordinary set of jars on Maven Central, so Maven resolves them (with
# their transitive dependencies and checksums) into $AUDITVEIL_TOOLS/kafka-<version>/libs and
# `java -cp 'libs/*' kafka.Kafka server.properties` runs it: no tarball download from a
# mirror, nothing fetched at run time. The script also installs a small launcher,
# $AUDITVEIL_TOOLS/bin/auditveil-kafka, that formats a data directory and starts a broker on
# loopback (see docs/streaming.md).
#
# Idempotent: a second run sees the stamp and returns at once.
set -euo pipefail
AUDITVEIL_TOOLS="${AUDITVEIL_TOOLS:-/opt/auditveil/tools}"
KAFKA_VERSION="${AUDITVEIL_KAFKA_VERSION:-3.9.1}"
SLF4J_VERSION="1.7.36"
HOME_DIR="$AUDITVEIL_TOOLS/kafka-$KAFKA_VERSION"
STAMP="$HOME_DIR/.complete-v1"
say() { printf '[setup:kafka] %s\n' "$*" >&2; }

if [[ ! -f "$STAMP" ]]; then
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        say "installing Java and Maven (Debian packages default-jre-headless, maven)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends default-jre-headless maven >/dev/null
    fi
    say "resolving Apache Kafka $KAFKA_VERSION from Maven Central"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.auditveil</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    rm -rf "$HOME_DIR.partial"
    mkdir -p "$HOME_DIR.partial/libs"
    if ! (cd "$work" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$HOME_DIR.partial/libs") >"$work/mvn.log" 2>&1; then
        cat "$work/mvn.log" >&2
        say "Maven could not resolve Apache Kafka $KAFKA_VERSION"
        exit 1
    fi
    cat >"$HOME_DIR.partial/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    rm -rf "$HOME_DIR"
    mv "$HOME_DIR.partial" "$HOME_DIR"
    touch "$STAMP"
fi

# The launcher (rewritten every run: cheap, and follows the version above).
mkdir -p "$AUDITVEIL_TOOLS/bin"
LAUNCHER="$AUDITVEIL_TOOLS/bin/auditveil-kafka"
cat >"$LAUNCHER.tmp" <<EOF
#!/usr/bin/env bash
# Start a single-node Apache Kafka $KAFKA_VERSION (KRaft) on loopback, in the foreground.
#   auditveil-kafka DATA_DIR [PORT]      (PORT default 9092; the controller uses PORT+1)
# The data directory is formatted on first use and kept, so a restart keeps topics and offsets.
set -euo pipefail
data="\${1:?usage: auditveil-kafka DATA_DIR [PORT]}"
port="\${2:-9092}"
home="$HOME_DIR"
mkdir -p "\$data"
data="\$(cd "\$data" && pwd)"
cat >"\$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:\$((port + 1))
listeners=PLAINTEXT://127.0.0.1:\$port,CONTROLLER://127.0.0.1:\$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:\$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=\$data/log
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
cp="\$home/libs/*"
log4j="-Dlog4j.configuration=file:\$home/log4j.properties"
if [[ ! -f "\$data/log/meta.properties" ]]; then
    java "\$log4j" -cp "\$cp" kafka.tools.StorageTool format -t "\$(java "\$log4j" -cp "\$cp" kafka.tools.StorageTool random-uuid)" \\
        -c "\$data/server.properties" >/dev/null
fi
exec java -Xms128m -Xmx\${KAFKA_HEAP:-512m} "\$log4j" -cp "\$cp" kafka.Kafka "\$data/server.properties"
EOF
chmod 755 "$LAUNCHER.tmp"
mv "$LAUNCHER.tmp" "$LAUNCHER"
