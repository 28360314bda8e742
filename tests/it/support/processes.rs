//! Child processes: `seckill` commands started as an operator would, with their settings in a
//! file and their ports fixed, paused at a failpoint, frozen, or kept running by a supervisor.

use seckill::config::Settings;

use super::unique;

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

/// `seckill <command>` logging at `rust_log`, its log appended to `log` (kept for a
/// post-mortem), its output discarded.
fn logged_command(
    command: &str,
    config: &std::path::Path,
    log: &std::path::Path,
    rust_log: &str,
) -> std::process::Command {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = process_command(command, config);
    cmd.env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::null())
        .stderr(file);
    cmd
}

/// Like [`spawn_process`], with the child's log appended to `log` (kept for a post-mortem).
pub fn spawn_process_logged(
    command: &str,
    config: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    let level = std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into());
    logged_command(command, config, log, &level)
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
    logged_command(command, config, log, "info")
        .env(seckill::observe::failpoint::VARIABLE, point)
        .spawn()
        .expect("seckill binary starts")
}

/// Runs `seckill <args> --config <config>` to its end, as an operator would, logging errors
/// only.
pub fn run_with_config(args: &[&str], config: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seckill"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("SECKILL_REDIS_URL")
        .env_remove("SECKILL_MYSQL_URL")
        .env_remove("SECKILL_KAFKA_BROKERS")
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

/// Sends `signal` (`TERM`, `INT`, `STOP`...) to the process `pid`, which must be there.
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// SIGKILLs `child` and reaps it.
pub fn kill_child(child: &mut std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// What a finished process wrote: its stdout, then its stderr.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
        send_signal(self.child.id(), signal);
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
