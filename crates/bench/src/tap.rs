//! Receives the codes the server's `null` provider drops, from its UDP tap,
//! and hands each to the client waiting for that phone.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use std::net::UdpSocket;

use tokio::sync::oneshot;

/// The receiving end of the `null` provider's tap.
#[derive(Debug)]
pub struct Tap {
    addr: SocketAddr,
    waiting: Mutex<HashMap<String, oneshot::Sender<String>>>,
}

/// A code that will arrive for one phone.
#[derive(Debug)]
pub struct Expected(oneshot::Receiver<String>);

impl Expected {
    /// The code, or an error if none came within `timeout`.
    pub async fn code(self, timeout: Duration) -> Result<String, String> {
        match tokio::time::timeout(timeout, self.0).await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(_)) => Err("the tap was replaced".into()),
            Err(_) => Err("no code arrived".into()),
        }
    }
}

impl Tap {
    /// Binds a loopback UDP socket and starts reading it on a thread of its
    /// own: a reader that had to wait its turn among busy client tasks would
    /// let the socket's buffer overflow, and a lost datagram is a client
    /// waiting for a code that never comes.
    pub fn bind() -> std::io::Result<Arc<Self>> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let tap = Arc::new(Self {
            addr: socket.local_addr()?,
            waiting: Mutex::default(),
        });
        let reader = tap.clone();
        std::thread::Builder::new().name("tap".into()).spawn(move || {
            let mut buffer = vec![0u8; 2048];
            while let Ok(len) = socket.recv(&mut buffer) {
                if let Some((to, code)) = parse(&buffer[..len]) {
                    reader.deliver(to, code);
                }
            }
        })?;
        Ok(tap)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers interest in the next code for `phone`. Call it before the
    /// request that sends the code: delivery can beat the response.
    pub fn expect(&self, phone: &str) -> Expected {
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(phone.to_owned(), sender);
        }
        Expected(receiver)
    }

    fn deliver(&self, to: &str, code: String) {
        let waiter = self.waiting.lock().ok().and_then(|mut waiting| waiting.remove(to));
        if let Some(waiter) = waiter {
            let _ = waiter.send(code);
        }
    }
}

/// `to`, a newline, and the message text; the code is the text's last run
/// of digits.
fn parse(datagram: &[u8]) -> Option<(&str, String)> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (to, message) = text.split_once('\n')?;
    let digits: String = message
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|run| !run.is_empty())?
        .to_owned();
    Some((to, digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_last_run_of_digits() {
        assert_eq!(
            parse(b"+85251234567\nYour phonegate code is 0123"),
            Some(("+85251234567", "0123".to_owned()))
        );
        assert_eq!(parse(b"+85251234567\nno code here"), None);
        assert_eq!(parse(b"no newline"), None);
    }
}
