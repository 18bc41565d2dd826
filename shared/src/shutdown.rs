//! Waiting for the signals that ask a daemon to stop: SIGTERM (sent by the
//! kubelet) and SIGINT (ctrl-c in a terminal).

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installed handlers for the termination signals. Install early, so a signal
/// that arrives during start-up is not lost.
#[derive(Debug)]
pub struct ShutdownSignal {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignal {
    /// Installs the SIGTERM and SIGINT handlers.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the first termination signal and returns its name.
    pub async fn received(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
