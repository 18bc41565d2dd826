//! A TCP relay a story owns: a server "goes down" when the story cuts the relay in front of it
//! (every open connection too, as a crashed host's would), and "comes back" when it starts a
//! relay on the same port again. The server itself, shared with other tests, is never touched.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Relays every connection on a loopback port to a target address until cut or dropped.
pub struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    /// Listens on `port` (free, or freed by a relay cut there) and relays to `target`.
    pub async fn start(port: u16, target: &str) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("relay port {port}: {e}"));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_owned();
        let connections = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let copy = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(copy.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Relay { port, tasks }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Down: the port refuses connections and every open one is dropped.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
