#!/usr/bin/env bash
# The local stack: a real Redis, a real MariaDB and a real Kafka-protocol broker (tansu) on loopback,
# each on its own port with its own data folder, so they never fight system servers.
#
#   stack.sh up [SERVICE...] | down | status | env | install [build|SERVICE...] | clean-tests
#   stack.sh start SERVICE | stop SERVICE      (SERVICE: redis, mysql, kafka; data is kept)
#   stack.sh start cluster | stop cluster      a Redis Cluster of three masters, each with a
#                                              replica (not part of `up`: the tests start
#                                              private ones)
#   stack.sh start sentinel | stop sentinel    a Redis master, its replica and three Sentinels
#                                              watching them as master `seckill` (not part of
#                                              `up`); `start` again brings back a node that
#                                              died, as a replica of whoever is master now
#
# `redis` is a master with a replica (the default buy confirmation waits for one replica); it
# also listens for TLS on its own port, and MariaDB accepts TLS, both with a certificate for
# localhost/127.0.0.1 signed by a CA generated here (tls/ca.crt in the state folder).
# `up` installs what its servers need (and the tools to build the binaries), nothing more;
# `install` installs everything the test command uses: Sentinel, Debian's prometheus package
# (promtool checks the alert rules), chromium (the console's browser test), schemathesis and
# kubernetes-validate (pinned, in virtualenvs) and the tansu broker. `install build` installs
# only the tools to build the binaries; `install SERVICE...` what those servers need too.
# Everything is overridable through the environment, which is how fault-injection tests start
# private servers of their own:
#   SECKILL_STACK_DIR   state folder (default: ~/.local/state/seckill/stack, outside any clone,
#                       so every clone on a machine shares one stack)
#   SECKILL_STACK_REDIS_PORT (16379)  SECKILL_STACK_MYSQL_PORT (13306)  SECKILL_STACK_KAFKA_PORT (19092)
#   SECKILL_STACK_REDIS_REPLICA_PORT (redis port + 1); SECKILL_STACK_REDIS_REPLICAS=0 for a
#                       master alone
#   SECKILL_STACK_REDIS_TLS_PORT (redis port + 10): the master's TLS port (0: none)
#   SECKILL_STACK_CLUSTER_PORT (17000): cluster nodes on it and the next five ports, their
#                       cluster bus on the six after
#   SECKILL_STACK_SENTINEL_PORTS ("26379 26380 26381"): the three Sentinels
#   SECKILL_STACK_SENTINEL_REDIS_PORTS ("16479 16480"): the master and the replica they watch
#
# `up` is idempotent: a server that already answers is left alone. `down` stops only what `up`
# or `start` started (the pid files in the state folder).
set -euo pipefail

STATE_DIR="${SECKILL_STACK_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/seckill/stack}"
REDIS_PORT="${SECKILL_STACK_REDIS_PORT:-16379}"
MYSQL_PORT="${SECKILL_STACK_MYSQL_PORT:-13306}"
KAFKA_PORT="${SECKILL_STACK_KAFKA_PORT:-19092}"
CLUSTER_PORT="${SECKILL_STACK_CLUSTER_PORT:-17000}"
REPLICA_PORT="${SECKILL_STACK_REDIS_REPLICA_PORT:-$((REDIS_PORT + 1))}"
REDIS_TLS_PORT="${SECKILL_STACK_REDIS_TLS_PORT:-$((REDIS_PORT + 10))}"
TLS_DIR="$STATE_DIR/tls"
VENV="$STATE_DIR/venv"
WANT_REPLICA="${SECKILL_STACK_REDIS_REPLICAS:-1}"
SENTINEL_PORTS="${SECKILL_STACK_SENTINEL_PORTS:-26379 26380 26381}"
SENTINEL_REDIS_PORTS="${SECKILL_STACK_SENTINEL_REDIS_PORTS:-16479 16480}"
SENTINEL_MASTER=seckill
MYSQL_USER=seckill
MYSQL_PASSWORD=seckill
TANSU_VERSION=0.6.0
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
TANSU="${SECKILL_TANSU_BIN:-$CARGO_BIN/tansu}"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# detach PIDFILE LOG CMD...: run a server in its own session with only stdin/stdout/stderr open,
# so it holds no pipe of whoever called this script (CI runners wait on those).
detach() {
  local pidfile=$1 logfile=$2; shift 2
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid "$@" </dev/null >>"$logfile" 2>&1
  ) &
  echo $! >"$pidfile"
}

wait_for() { # wait_for NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      [ -z "${WAIT_DIAG:-}" ] || "$WAIT_DIAG" >&2 || true
      die "$name did not answer within ${secs}s (logs under $STATE_DIR)"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------- install
need_apt=()
wants() { [ "$SCOPE" = all ] || [[ " $SCOPE " == *" $1 "* ]]; }
check_packages() { # what SCOPE needs: `all` (the test command's tools too) or services
  need_apt=()
  if wants redis; then
    command -v redis-server >/dev/null || need_apt+=(redis-server)
    command -v redis-cli >/dev/null || need_apt+=(redis-tools)
  fi
  if wants mysql; then
    command -v mariadbd >/dev/null || need_apt+=(mariadb-server)
    command -v mariadb >/dev/null || need_apt+=(mariadb-client)
  fi
  if [ "$SCOPE" = all ]; then
    command -v redis-sentinel >/dev/null || need_apt+=(redis-sentinel)
    command -v openssl >/dev/null || need_apt+=(openssl)
    command -v promtool >/dev/null || need_apt+=(prometheus)  # the alert rules' tests
    command -v chromium >/dev/null || need_apt+=(chromium)    # the console's browser test
    command -v python3 >/dev/null || need_apt+=(python3)
    python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
  fi
  # Building the binaries (librdkafka's C build, linked against the system's OpenSSL).
  command -v cc >/dev/null || need_apt+=(build-essential)
  command -v pkg-config >/dev/null || need_apt+=(pkg-config)
  [ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
}

install_for() { # install_for all | SERVICE...: what those need, and nothing else
  SCOPE="$*"
  check_packages
  if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing ${need_apt[*]} from Debian's packages"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
      die "missing ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}"
    fi
  fi
  if [ "$SCOPE" = all ]; then
    # Schemathesis (the API contract fuzz of the test command), pinned, in its own virtualenv.
    local req="$(dirname "$0")/requirements-schemathesis.txt"
    if [ ! -x "$VENV/bin/schemathesis" ] || ! cmp -s "$req" "$VENV/requirements.txt"; then
      log "installing schemathesis into $VENV (pinned in $req)"
      python3 -m venv "$VENV"
      "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
      cp "$req" "$VENV/requirements.txt"
    fi
    # kubernetes-validate (the manifests' schema check; it ships the schemas), pinned, its own venv.
    local kreq="$(dirname "$0")/requirements-kubernetes-validate.txt" kvenv="$STATE_DIR/venv-k8s"
    if [ ! -x "$kvenv/bin/kubernetes-validate" ] || ! cmp -s "$kreq" "$kvenv/requirements.txt"; then
      log "installing kubernetes-validate into $kvenv (pinned in $kreq)"
      python3 -m venv "$kvenv"
      "$kvenv/bin/pip" install --quiet --disable-pip-version-check -r "$kreq"
      cp "$kreq" "$kvenv/requirements.txt"
    fi
  fi
  if wants kafka && [ ! -x "$TANSU" ]; then
    command -v cargo >/dev/null || die "cargo is needed to build the tansu broker"
    log "building the tansu $TANSU_VERSION broker into $CARGO_BIN (once per machine, about 12 minutes)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql --quiet
  fi
}

# -------------------------------------------------------------------------------------------- tls
# A CA and a server certificate for localhost and 127.0.0.1, made once per state folder.
ensure_certs() {
  [ -f "$TLS_DIR/server.crt" ] && return
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=seckill stack CA' \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    chmod 600 ca.key server.key
  ) || die "could not generate TLS certificates in $TLS_DIR"
  log "generated a CA and a localhost certificate in $TLS_DIR"
}
tls_args() { # redis-server arguments for a TLS port next to the plain one
  [ "$REDIS_TLS_PORT" != 0 ] || return 0
  printf '%s\n' --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.crt" \
    --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-auth-clients no
}

# ------------------------------------------------------------------------------------------ redis
port_ping() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }
redis_ping() { port_ping "$REDIS_PORT"; }
# replica_online PORT: the master on PORT has a replica that finished its sync (a replica that
# answers PING may still be loading, and would not acknowledge a WAIT yet).
replica_online() { redis-cli -h 127.0.0.1 -p "$1" info replication 2>/dev/null | grep -q '^slave[0-9]*:.*state=online'; }

# redis_node DIR PORT [ARGS...]: one Redis server with the stack's settings. noeviction: stock
# keys must never be evicted; AOF everysec: at most a second of writes lost on a host crash,
# none on a process crash (the AOF is written before a reply goes out).
redis_node() {
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  detach "$dir/redis.pid" "$dir/redis.log" \
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --appendonly yes --appendfsync everysec --maxmemory 2gb --maxmemory-policy noeviction \
    --save '' --daemonize no --protected-mode no "$@"
  wait_for "redis:$port" 30 port_ping "$port"
}

stop_node() { # stop_node DIR PORT
  if pid_alive "$1/redis.pid"; then
    redis-cli -h 127.0.0.1 -p "$2" shutdown >/dev/null 2>&1 || kill "$(cat "$1/redis.pid")" || true
    while pid_alive "$1/redis.pid"; do sleep 0.1; done
  fi
}

start_redis() {
  if redis_ping; then
    log "redis already answers on $REDIS_PORT"
  else
    ensure_certs
    local tls=()
    mapfile -t tls < <(tls_args)
    redis_node "$STATE_DIR/redis" "$REDIS_PORT" "${tls[@]}"
    log "redis up on 127.0.0.1:$REDIS_PORT (TLS on $REDIS_TLS_PORT)"
  fi
  if [ "$WANT_REPLICA" = 1 ]; then
    if port_ping "$REPLICA_PORT"; then
      log "redis replica already answers on $REPLICA_PORT"
    else
      redis_node "$STATE_DIR/redis-replica" "$REPLICA_PORT" --replicaof 127.0.0.1 "$REDIS_PORT"
      wait_for "redis-replica:$REPLICA_PORT" 60 replica_online "$REDIS_PORT"
      log "redis replica of $REDIS_PORT up on 127.0.0.1:$REPLICA_PORT"
    fi
  fi
}
stop_redis() {
  local was=0
  pid_alive "$STATE_DIR/redis-replica/redis.pid" && was=1
  stop_node "$STATE_DIR/redis-replica" "$REPLICA_PORT"
  pid_alive "$STATE_DIR/redis/redis.pid" && was=1
  stop_node "$STATE_DIR/redis" "$REDIS_PORT"
  [ $was = 0 ] || log "redis stopped"
}

# --------------------------------------------------------------------------------- redis sentinel
# sentinel_master_port: the port the Sentinels name as master now, empty if none answers. A
# Sentinel that has not heard of a failover yet names the old master: a named port that answers
# as a master wins over one that does not.
sentinel_master_port() {
  local p named=()
  for p in $SENTINEL_PORTS; do
    p=$(redis-cli -h 127.0.0.1 -p "$p" sentinel get-master-addr-by-name "$SENTINEL_MASTER" \
      2>/dev/null | sed -n 2p | grep -E '^[0-9]+$') && named+=("$p")
  done
  for p in "${named[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" role 2>/dev/null | head -n 1 | grep -qx master && { echo "$p"; return; }
  done
  [ ${#named[@]} = 0 ] || echo "${named[0]}"
}
start_sentinel() {
  local first p master
  first=${SENTINEL_REDIS_PORTS%% *}
  master=$(sentinel_master_port || true)
  [ -n "$master" ] || master=$first
  for p in $SENTINEL_REDIS_PORTS; do
    port_ping "$p" && continue
    if [ "$p" = "$master" ]; then
      redis_node "$STATE_DIR/sentinel/redis-$p" "$p"
    else
      # A node that comes back joins whoever is master now, never as a second master.
      redis_node "$STATE_DIR/sentinel/redis-$p" "$p" --replicaof 127.0.0.1 "$master"
    fi
  done
  for p in $SENTINEL_PORTS; do
    port_ping "$p" && continue
    local dir="$STATE_DIR/sentinel/sentinel-$p"
    mkdir -p "$dir"
    if [ ! -f "$dir/sentinel.conf" ]; then
      # Fast failover for a demo and the tests: a master silent for 1 s is down; two of the
      # three Sentinels must agree.
      cat >"$dir/sentinel.conf" <<CONF
port $p
bind 127.0.0.1
dir $dir
sentinel monitor $SENTINEL_MASTER 127.0.0.1 $master 2
sentinel down-after-milliseconds $SENTINEL_MASTER 1000
sentinel failover-timeout $SENTINEL_MASTER 5000
sentinel parallel-syncs $SENTINEL_MASTER 1
CONF
    fi
    detach "$dir/sentinel.pid" "$dir/sentinel.log" redis-sentinel "$dir/sentinel.conf" --daemonize no
    wait_for "sentinel:$p" 30 port_ping "$p"
  done
  # Sentinel may still move the master while nodes come back (a restarted node rejoins, a
  # failover under load): ready is whoever Sentinel names now having a replica in sync.
  WAIT_DIAG=sentinel_diag wait_for "sentinel replica" 60 sentinel_ready
  log "redis sentinel up: master $SENTINEL_MASTER on $(sentinel_master_port), sentinels on $SENTINEL_PORTS"
}
sentinel_ready() {
  local m
  m=$(sentinel_master_port || true)
  [ -n "$m" ] && replica_online "$m"
}
sentinel_diag() { # what each node and Sentinel says, and their logs' last lines
  local p f
  for p in $SENTINEL_REDIS_PORTS; do
    echo "--- redis $p: $(redis-cli -h 127.0.0.1 -p "$p" info replication 2>&1 | tr -d '\r' \
      | grep -E '^(role|master_port|master_link_status|slave[0-9]+):' | tr '\n' ' ')"
  done
  for p in $SENTINEL_PORTS; do
    echo "--- sentinel $p names: $(redis-cli -h 127.0.0.1 -p "$p" sentinel \
      get-master-addr-by-name "$SENTINEL_MASTER" 2>&1 | tr '\n' ' ')"
  done
  for f in "$STATE_DIR"/sentinel/*/*.log; do
    echo "--- $f"
    tail -n 25 "$f"
  done
}
stop_sentinel() {
  local p stopped=0
  for p in $SENTINEL_PORTS; do
    if pid_alive "$STATE_DIR/sentinel/sentinel-$p/sentinel.pid"; then
      kill "$(cat "$STATE_DIR/sentinel/sentinel-$p/sentinel.pid")" || true
      while pid_alive "$STATE_DIR/sentinel/sentinel-$p/sentinel.pid"; do sleep 0.1; done
      stopped=1
    fi
  done
  for p in $SENTINEL_REDIS_PORTS; do
    pid_alive "$STATE_DIR/sentinel/redis-$p/redis.pid" && stopped=1
    stop_node "$STATE_DIR/sentinel/redis-$p" "$p"
  done
  [ $stopped = 0 ] || log "redis sentinel stopped"
}

# ---------------------------------------------------------------------------------- redis cluster
cluster_ports() { seq "$CLUSTER_PORT" $((CLUSTER_PORT + 5)); }
cluster_ok() { redis-cli -h 127.0.0.1 -p "$CLUSTER_PORT" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }
cluster_replicated() { # every master has a replica that finished its sync
  local p online=0
  for p in $(cluster_ports); do
    replica_online "$p" && online=$((online + 1))
  done
  [ "$online" = 3 ]
}
node_ping() { redis-cli -h 127.0.0.1 -p "$1" ping | grep -q PONG; }
start_cluster() {
  if cluster_ok; then log "redis cluster already answers on $CLUSTER_PORT"; return; fi
  local p nodes=()
  for p in $(cluster_ports); do
    mkdir -p "$STATE_DIR/cluster/$p"
    nodes+=("127.0.0.1:$p")
    pid_alive "$STATE_DIR/cluster/$p/redis.pid" && continue
    # The same durability and eviction settings as the standalone server; the bus port is set
    # explicitly (port + 6) so it never lands outside the port range.
    detach "$STATE_DIR/cluster/$p/redis.pid" "$STATE_DIR/cluster/$p/redis.log" \
      redis-server --port "$p" --cluster-port $((p + 6)) --bind 127.0.0.1 \
      --dir "$STATE_DIR/cluster/$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 5000 --appendonly yes --appendfsync everysec \
      --maxmemory 512mb --maxmemory-policy noeviction --save '' --daemonize no --protected-mode no
  done
  for p in $(cluster_ports); do wait_for "cluster/$p" 30 node_ping "$p"; done
  # A restarted cluster knows its nodes from nodes.conf; a new one is created once.
  if ! redis-cli -h 127.0.0.1 -p "$CLUSTER_PORT" cluster info | grep -q 'cluster_known_nodes:6'; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
      >"$STATE_DIR/cluster/create.log" 2>&1 || die "creating the cluster failed, see $STATE_DIR/cluster/create.log"
  fi
  wait_for cluster 60 cluster_ok
  # Every master has its replica linked before the cluster counts as up.
  wait_for cluster 60 cluster_replicated
  log "redis cluster up on ${nodes[*]} (three masters, each with a replica)"
}
stop_cluster() {
  local p stopped=0
  for p in $(cluster_ports); do
    if pid_alive "$STATE_DIR/cluster/$p/redis.pid"; then
      redis-cli -h 127.0.0.1 -p "$p" shutdown >/dev/null 2>&1 || kill "$(cat "$STATE_DIR/cluster/$p/redis.pid")" || true
      while pid_alive "$STATE_DIR/cluster/$p/redis.pid"; do sleep 0.1; done
      stopped=1
    fi
  done
  [ $stopped = 0 ] || log "redis cluster stopped"
}

# ------------------------------------------------------------------------------------------ mysql
MYSQL_SOCK() { echo "$STATE_DIR/mysql/mysqld.sock"; }
mysql_ping() { mariadb -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" -e 'SELECT 1' >/dev/null; }
start_mysql() {
  if mysql_ping 2>/dev/null; then log "mariadb already answers on $MYSQL_PORT"; return; fi
  local dir="$STATE_DIR/mysql" me
  me=$(id -un)
  mkdir -p "$dir"
  local fresh=0
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising a MariaDB data folder in $dir/data"
    mariadb-install-db --datadir="$dir/data" --user="$me" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install.log" 2>&1 || die "mariadb-install-db failed, see $dir/install.log"
    fresh=1
  fi
  ensure_certs
  cat >"$dir/my.cnf" <<CNF
[mariadbd]
datadir=$dir/data
socket=$(MYSQL_SOCK)
port=$MYSQL_PORT
bind-address=127.0.0.1
pid-file=$dir/mariadbd.pid
log-error=$dir/mariadbd.log
skip-name-resolve
max_connections=2000
innodb_buffer_pool_size=512M
innodb_log_file_size=256M
innodb_lock_wait_timeout=10
character-set-server=utf8mb4
collation-server=utf8mb4_bin
ssl-ca=$TLS_DIR/ca.crt
ssl-cert=$TLS_DIR/server.crt
ssl-key=$TLS_DIR/server.key
CNF
  detach "$dir/mariadbd.launcher.pid" "$dir/mariadbd.out" mariadbd --defaults-file="$dir/my.cnf" --user="$me"
  wait_for mysql 60 mariadb-admin --socket="$(MYSQL_SOCK)" -uroot ping
  if [ $fresh = 1 ] || ! mysql_ping 2>/dev/null; then
    mariadb --socket="$(MYSQL_SOCK)" -uroot <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS seckill;
SQL
  fi
  wait_for mysql 30 mysql_ping
  log "mariadb up on 127.0.0.1:$MYSQL_PORT"
}
stop_mysql() {
  if pid_alive "$STATE_DIR/mysql/mariadbd.pid"; then
    kill "$(cat "$STATE_DIR/mysql/mariadbd.pid")" || true
    while pid_alive "$STATE_DIR/mysql/mariadbd.pid"; do sleep 0.1; done
    log "mariadb stopped"
  fi
}

# ------------------------------------------------------------------------------------------ kafka
kafka_ping() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }
start_kafka() {
  if kafka_ping; then log "kafka broker already answers on $KAFKA_PORT"; return; fi
  [ -x "$TANSU" ] || die "the tansu broker is not installed; run: $0 install"
  local dir="$STATE_DIR/kafka"
  mkdir -p "$dir"
  # tansu reads a .env from its working directory and misreads absolute sqlite paths, so it runs
  # inside its own folder with a relative database path; the advertised address must be explicit.
  (cd "$dir" && detach "$dir/tansu.pid" "$dir/tansu.log" "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "sqlite://tansu.db")
  wait_for kafka 60 kafka_ping
  log "kafka broker (tansu) up on 127.0.0.1:$KAFKA_PORT"
}
stop_kafka() {
  if pid_alive "$STATE_DIR/kafka/tansu.pid"; then
    kill "$(cat "$STATE_DIR/kafka/tansu.pid")" || true
    local n=0
    while pid_alive "$STATE_DIR/kafka/tansu.pid"; do
      sleep 0.1; n=$((n + 1))
      [ $n -lt 100 ] || kill -9 "$(cat "$STATE_DIR/kafka/tansu.pid")" 2>/dev/null || true
    done
    log "kafka broker stopped"
  fi
}

# ------------------------------------------------------------------------------------------ verbs
print_env() {
  cat <<ENV
export SECKILL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
export SECKILL_MYSQL_URL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/seckill
export SECKILL_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export STACK_TLS_CA_FILE=$TLS_DIR/ca.crt
export STACK_REDIS_TLS_URL=rediss://localhost:$REDIS_TLS_PORT/
export STACK_SCHEMATHESIS=$VENV/bin/schemathesis
ENV
}

status() {
  local rc=0
  if redis_ping 2>/dev/null; then echo "redis  up    127.0.0.1:$REDIS_PORT"; else echo "redis  down"; rc=1; fi
  if [ "$WANT_REPLICA" = 1 ]; then
    if port_ping "$REPLICA_PORT"; then echo "replica up  127.0.0.1:$REPLICA_PORT"; else echo "replica down"; rc=1; fi
  fi
  if mysql_ping >/dev/null 2>&1; then echo "mysql  up    127.0.0.1:$MYSQL_PORT"; else echo "mysql  down"; rc=1; fi
  if kafka_ping; then echo "kafka  up    127.0.0.1:$KAFKA_PORT"; else echo "kafka  down"; rc=1; fi
  return $rc
}

clean_tests() { # drop what test runs leave: databases seckill_t_*, Redis keys t<hex>:*
  local dbs
  dbs=$(mariadb -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" -N -e \
    "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'seckill\_t\_%'")
  for db in $dbs; do
    mariadb -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" -e "DROP DATABASE \`$db\`"
  done
  [ -z "$dbs" ] || log "dropped $(echo "$dbs" | wc -l) test databases"
  # Test apps write under prefixes t<12 hex>: (their sale keys expire, their Bloom filters do
  # not); drop them all so repeated runs never fill Redis.
  local n
  n=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 't????????????:*' | tee >(
    xargs -r -n 500 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" unlink >/dev/null) | wc -l)
  [ "$n" = 0 ] || log "dropped $n test keys from Redis"
}

one() { # one start|stop SERVICE
  case "${2:-}" in
    redis) "$1_redis" ;;
    mysql) "$1_mysql" ;;
    kafka) "$1_kafka" ;;
    cluster) "$1_cluster" ;;
    sentinel) "$1_sentinel" ;;
    *) die "usage: $0 $1 redis|mysql|kafka|cluster|sentinel" ;;
  esac
}

case "${1:-}" in
  install)
    shift
    for what in "$@"; do
      case "$what" in build|redis|mysql|kafka) ;; *) die "install what? $what (build, redis, mysql, kafka)" ;; esac
    done
    if [ $# -gt 0 ]; then install_for "$@"; else install_for all; fi
    ;;
  up)
    shift
    services=("$@")
    [ ${#services[@]} -gt 0 ] || services=(redis mysql kafka)
    install_for "${services[@]}"
    mkdir -p "$STATE_DIR"
    for svc in "${services[@]}"; do
      case "$svc" in
        redis|mysql|kafka) "start_$svc" ;;
        *) die "unknown service $svc (redis, mysql, kafka)" ;;
      esac
    done
    ;;
  down) stop_kafka; stop_mysql; stop_redis; stop_cluster; stop_sentinel ;;
  status) status ;;
  env) print_env ;;
  clean-tests) clean_tests ;;
  start|stop) one "$1" "${2:-}" ;;
  *) echo "usage: $0 up|down|status|env|install [build|SERVICE...]|clean-tests|start SERVICE|stop SERVICE" >&2; exit 2 ;;
esac
