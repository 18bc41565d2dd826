//! The process exit convention shared by the Sluice binaries: 0 on success,
//! 2 on any error, with the error and its causes reported on one line.

use std::error::Error;
use std::process::ExitCode;

/// Exit status of a run that failed.
pub const FAILURE: u8 = 2;

/// Turns a command's outcome into the process exit code, reporting a failure
/// through the log when logging is set up, and on stderr otherwise.
pub fn code<E: Error>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = describe(&error);
            if tracing::dispatcher::has_been_set() {
                tracing::error!(exit_code = FAILURE, "{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(FAILURE)
        }
    }
}

/// An error followed by its chain of causes, separated by `": "`. A cause
/// whose text its parent already includes is not repeated.
pub fn describe(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = current.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("bad config: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_without_repetition() {
        let error = Outer(Middle(std::io::Error::other("disk on fire")));
        assert_eq!(describe(&error), "cannot start: bad config: disk on fire");
    }

    #[test]
    fn success_and_failure_codes() {
        assert_eq!(code::<std::io::Error>(Ok(())), ExitCode::SUCCESS);
        assert_eq!(
            code(Err(std::io::Error::other("boom"))),
            ExitCode::from(FAILURE)
        );
    }
}
