mod cli;
mod daemon;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    sluice_shared::exit::code(cli.execute().await)
}
