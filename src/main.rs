//! The `seckill` binary: see `seckill --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: every request allocates a little on several worker
/// threads at once, and glibc's arenas spent about a sixth of the buy path's CPU doing it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    seckill::cli::run(seckill::cli::Cli::parse()).await
}
