mod cli;
mod daemon;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.execute().await {
        Ok(cli::Done::Success) => ExitCode::SUCCESS,
        Ok(cli::Done::Code(code)) => ExitCode::from(code),
        Err(error) => sluice_shared::exit::code(Err(error)),
    }
}
