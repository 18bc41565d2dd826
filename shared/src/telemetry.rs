//! Logging set-up: human-readable lines for a person at a terminal, JSON lines
//! for a log collector, filtered like `RUST_LOG`.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Settles `Auto` to `Human` or `Json`, depending on whether stderr is a
    /// terminal.
    pub fn resolve(self, stderr_is_terminal: bool) -> LogFormat {
        match self {
            LogFormat::Auto if stderr_is_terminal => LogFormat::Human,
            LogFormat::Auto => LogFormat::Json,
            explicit => explicit,
        }
    }
}

/// Logging flags shared by every Sluice command line.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Format of log lines on stderr
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SLUICE_LOG_FORMAT",
        default_value_t
    )]
    pub log_format: LogFormat,

    /// Log filter: a level (info, debug, ...) or EnvFilter directives such as
    /// "info,config_updater=debug,kube=warn"
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}")]
    Filter {
        filter: String,
        #[source]
        source: ParseError,
    },
    #[error("logging is already initialised")]
    AlreadyInitialised(#[source] TryInitError),
}

/// Parses a `--log-level` value into a filter.
pub fn filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(directives).map_err(|source| TelemetryError::Filter {
        filter: directives.to_owned(),
        source,
    })
}

/// Installs the global tracing subscriber, writing to stderr.
pub fn init(args: &LogArgs) -> Result<(), TelemetryError> {
    let filter = filter(&args.log_level)?;
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format.resolve(terminal) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .try_init(),
        _ => builder.with_ansi(terminal).finish().try_init(),
    };
    installed.map_err(TelemetryError::AlreadyInitialised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_terminal() {
        assert_eq!(LogFormat::Auto.resolve(true), LogFormat::Human);
        assert_eq!(LogFormat::Auto.resolve(false), LogFormat::Json);
        assert_eq!(LogFormat::Json.resolve(true), LogFormat::Json);
        assert_eq!(LogFormat::Human.resolve(false), LogFormat::Human);
    }

    #[test]
    fn filters_accept_levels_and_directives() {
        assert!(filter("debug").is_ok());
        assert!(filter("info,config_updater=trace,kube=warn").is_ok());
    }

    #[test]
    fn bad_filter_is_reported_with_its_text() {
        let error = filter("info,kube=loud").unwrap_err();
        assert!(error.to_string().contains("kube=loud"), "{error}");
    }
}
