//! Private servers of the stack script (own folder and ports), for fault injection that must not
//! disturb the shared servers other tests use.

use super::{free_port, free_port_block, send_signal, unique};

/// A private server of the stack script (own folder and port), for fault injection that must
/// not disturb the shared servers other tests use.
pub struct PrivateServer {
    pub service: &'static str,
    pub dir: std::path::PathBuf,
    /// The main port: Redis master, MariaDB, broker, first cluster node, first Sentinel.
    pub port: u16,
    /// Every port it uses, for the stack script's variables (see [`PrivateServer::env`]).
    pub ports: Vec<u16>,
}

impl PrivateServer {
    pub fn start(service: &'static str) -> Self {
        let ports: Vec<u16> = match service {
            // master and replica
            "redis" => vec![free_port(), free_port()],
            // three Sentinels, then the master and the replica they watch
            "sentinel" => (0..5).map(|_| free_port()).collect(),
            // six nodes and their bus ports on twelve consecutive ports
            "cluster" => vec![free_port_block(12)],
            _ => vec![free_port()],
        };
        let s = Self {
            service,
            dir: std::env::temp_dir().join(format!("seckill-private-{}", unique())),
            port: ports[0],
            ports,
        };
        s.run("start");
        s
    }

    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/stack.sh")
    }

    /// The stack script's variables that put this server on its ports.
    fn env(&self) -> Vec<(&'static str, String)> {
        let p = |i: usize| self.ports[i].to_string();
        match self.service {
            "redis" => vec![
                ("SECKILL_STACK_REDIS_PORT", p(0)),
                ("SECKILL_STACK_REDIS_REPLICA_PORT", p(1)),
                ("SECKILL_STACK_REDIS_TLS_PORT", "0".to_string()),
            ],
            "sentinel" => vec![
                (
                    "SECKILL_STACK_SENTINEL_PORTS",
                    format!("{} {} {}", p(0), p(1), p(2)),
                ),
                (
                    "SECKILL_STACK_SENTINEL_REDIS_PORTS",
                    format!("{} {}", p(3), p(4)),
                ),
            ],
            "mysql" => vec![("SECKILL_STACK_MYSQL_PORT", p(0))],
            "cluster" => vec![("SECKILL_STACK_CLUSTER_PORT", p(0))],
            _ => vec![("SECKILL_STACK_KAFKA_PORT", p(0))],
        }
    }

    pub fn run(&self, verb: &str) {
        let status = std::process::Command::new(Self::script())
            .arg(verb)
            .arg(self.service)
            .env("SECKILL_STACK_DIR", &self.dir)
            .envs(self.env())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        if !status.success() {
            // The folder goes with this value: show the servers' last words first.
            self.print_log_tails();
            panic!("stack.sh {verb} {} failed", self.service);
        }
    }

    /// The last lines of every log in this setup's folder, on stderr.
    fn print_log_tails(&self) {
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                    eprintln!("--- {}\n{tail}", path.display());
                }
            }
        }
    }

    pub fn stop(&self) {
        self.run("stop");
    }

    /// The pid file of the Redis server on `port` of this private setup.
    fn redis_pidfile(&self, port: u16) -> std::path::PathBuf {
        match self.service {
            "sentinel" => self.dir.join(format!("sentinel/redis-{port}/redis.pid")),
            _ if port == self.port => self.dir.join("redis/redis.pid"),
            _ => self.dir.join("redis-replica/redis.pid"),
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`) to the Redis server on `port`; returns its pid.
    pub fn signal_redis_on(&self, port: u16, signal: &str) -> String {
        let pid = std::fs::read_to_string(self.redis_pidfile(port)).unwrap();
        let pid = pid.trim().to_string();
        send_signal(pid.parse().unwrap(), signal);
        pid
    }

    /// Pauses the Redis server on `port` (SIGSTOP) until [`PrivateServer::resume_redis_on`]:
    /// it reads nothing meanwhile, as a replica that falls behind.
    pub fn pause_redis_on(&self, port: u16) {
        self.signal_redis_on(port, "STOP");
    }

    /// Lets a paused Redis server run again (SIGCONT).
    pub fn resume_redis_on(&self, port: u16) {
        self.signal_redis_on(port, "CONT");
    }

    /// SIGKILLs the Redis server on `port` of this private setup (its pid file is in the
    /// stack's folder).
    pub fn kill_redis_on(&self, port: u16) {
        let pid = self.signal_redis_on(port, "KILL");
        // Gone, or a zombie nobody has reaped yet.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.run("stop");
        // KEEP_PRIVATE=1 keeps the folder (the server's log) for a post-mortem.
        if std::env::var("KEEP_PRIVATE").is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl PrivateServer {
    /// Where clients reach it: a Redis URL (the master), a MySQL URL (database `seckill`,
    /// created by the stack script), a Sentinel URL, or a Kafka bootstrap address.
    pub fn url(&self) -> String {
        match self.service {
            "redis" => format!("redis://127.0.0.1:{}/", self.port),
            "sentinel" => format!(
                "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/seckill",
                self.ports[0], self.ports[1], self.ports[2]
            ),
            "mysql" => format!("mysql://seckill:seckill@127.0.0.1:{}/seckill", self.port),
            _ => format!("127.0.0.1:{}", self.port),
        }
    }

    /// Starts it again after [`PrivateServer::stop`] (or brings back a node that died),
    /// keeping its data.
    pub fn restart(&self) {
        self.run("start");
    }
}
