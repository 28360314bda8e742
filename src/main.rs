//! The `seckill` binary: see `seckill --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    seckill::cli::run(seckill::cli::Cli::parse()).await
}
