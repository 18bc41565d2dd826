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

/// One stop, fanned out to every part of a daemon (the HTTP endpoint, the controllers): set by
/// the first termination signal.
#[derive(Debug, Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Installs the signal handlers (at once, so a signal during start-up is not lost) and returns
    /// the stop they trigger.
    pub fn on_signals() -> io::Result<Self> {
        let signals = ShutdownSignal::install()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let signal = signals.received().await;
            tracing::info!(signal, "shutting down");
            let _ = tx.send(true);
        });
        Ok(Stop(rx))
    }

    /// Resolves once the stop is set; hand one to each part that must wind down.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}
