//! Child processes and private servers: `seckill` commands started as an operator would, and
//! servers of the stack script in their own folders and ports, for fault injection that must
//! not disturb the shared servers other tests use.

use seckill::config::Settings;

use crate::helpers::unique;

/// Writes `settings` to a TOML file for a child `seckill` process.
pub fn write_config(settings: &Settings) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("seckill-it-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seckill.toml");
    std::fs::write(&path, toml::to_string(settings).unwrap()).unwrap();
    path
}

/// Puts both listeners of `settings` on free loopback ports (a child process cannot report
/// the ports it picked).
pub fn fixed_ports(settings: &mut Settings) {
    settings.http.addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    settings.admin_addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
}

/// Starts `seckill <command>` as a child process with the settings in `config`.
pub fn spawn_process(command: &str, config: &std::path::Path) -> std::process::Child {
    process_command(command, config)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("seckill binary starts")
}

/// Like [`spawn_process`], with the child's log appended to `log` (kept for a post-mortem).
pub fn spawn_process_logged(
    command: &str,
    config: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    process_command(command, config)
        .env(
            "RUST_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .expect("seckill binary starts")
}

/// Like [`spawn_process_logged`], paused at the failpoint `point` when it gets there (see
/// `seckill::observe::failpoint`): [`wait_for_failpoint`] then says when to kill it.
pub fn spawn_process_paused_at(
    command: &str,
    config: &std::path::Path,
    log: &std::path::Path,
    point: &str,
) -> std::process::Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    process_command(command, config)
        .env("RUST_LOG", "info")
        .env(seckill::observe::failpoint::VARIABLE, point)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .expect("seckill binary starts")
}

/// Waits until the process logging to `log` has stopped at the failpoint `point`.
pub async fn wait_for_failpoint(log: &std::path::Path, point: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains("failpoint reached") && l.contains(point))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the process never reached failpoint {point}; its log:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn process_command(command: &str, config: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seckill"));
    cmd.arg(command)
        .arg("--config")
        .arg(config)
        .env_remove("SECKILL_REDIS_URL")
        .env_remove("SECKILL_MYSQL_URL")
        .env_remove("SECKILL_KAFKA_BROKERS")
        .env(
            "RUST_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    cmd
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first of `n` consecutive free loopback ports, below the kernel's ephemeral range
/// (32768 and up), so no outgoing connection of another test takes one of them meanwhile.
pub fn free_port_block(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Blocks handed out by this process never overlap.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 500) as u16 * 20;
    loop {
        let base = 20_000 + (offset + NEXT.fetch_add(n, Ordering::Relaxed)) % 12_000;
        let all_free =
            (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
}

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
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.clone()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
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

/// A child process that a test can freeze (SIGSTOP) and thaw (SIGCONT), as a process the
/// scheduler starves or a VM paused; SIGKILLed when dropped.
pub struct Frozen {
    child: std::process::Child,
}

impl Frozen {
    /// Takes over `child`.
    pub fn new(child: std::process::Child) -> Self {
        Self { child }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Stops the process where it stands (SIGSTOP).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets it run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `seckill` process kept running as systemd or Kubernetes would: one that exits on its own
/// (its start met a server mid-restart, say) is started again a second later. [`kill`] is a
/// SIGKILL that stays until [`start`]; dropping it kills the process.
///
/// [`kill`]: Supervised::kill
/// [`start`]: Supervised::start
pub struct Supervised {
    state: std::sync::Arc<std::sync::Mutex<Supervision>>,
    task: tokio::task::JoinHandle<()>,
}

struct Supervision {
    child: Option<std::process::Child>,
    command: &'static str,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    held: bool,
    restarts: u32,
}

impl Supervised {
    /// Starts `seckill <command>` under supervision, logging to `log`.
    pub fn new(command: &'static str, config: &std::path::Path, log: &std::path::Path) -> Self {
        let state = std::sync::Arc::new(std::sync::Mutex::new(Supervision {
            child: Some(spawn_process_logged(command, config, log)),
            command,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            held: false,
            restarts: 0,
        }));
        let watched = state.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let exited = {
                    let mut s = watched.lock().unwrap();
                    !s.held
                        && s.child
                            .as_mut()
                            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
                };
                if exited {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let mut s = watched.lock().unwrap();
                    if !s.held {
                        s.restarts += 1;
                        s.child = Some(spawn_process_logged(s.command, &s.config, &s.log));
                    }
                }
            }
        });
        Self { state, task }
    }

    /// SIGKILLs the process; it stays down until [`Supervised::start`].
    pub fn kill(&self) {
        let mut s = self.state.lock().unwrap();
        s.held = true;
        if let Some(mut c) = s.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again after [`Supervised::kill`].
    pub fn start(&self) {
        let mut s = self.state.lock().unwrap();
        s.child = Some(spawn_process_logged(s.command, &s.config, &s.log));
        s.held = false;
    }

    /// Times the supervisor started the process again after it exited on its own.
    pub fn restarts(&self) -> u32 {
        self.state.lock().unwrap().restarts
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.task.abort();
        self.kill();
    }
}
