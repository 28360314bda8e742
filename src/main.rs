//! The `seckill` binary: see `seckill --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: every request allocates a little on several worker
/// threads at once, and glibc's arenas spent about a sixth of the buy path's CPU doing it.
/// Built without transparent huge pages (`no_thp`): mimalloc asked the kernel for them on its
/// arenas, and each 2 MiB page touched counted whole in the RSS (14 MiB of an idle `serve`'s
/// 45 MiB; no difference measured in CPU per request).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    seckill::cli::run(seckill::cli::Cli::parse()).await
}
