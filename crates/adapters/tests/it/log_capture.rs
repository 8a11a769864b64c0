//! What the code under test logs, for the tests that prove no secret
//! reaches a log line.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use tracing::{Dispatch, subscriber::DefaultGuard};
use tracing_subscriber::fmt::MakeWriter;

/// Everything this thread logs at TRACE (ours, reqwest's, hyper's) while
/// it lives, without timestamps, which could contain a code's digits by
/// chance.
pub(crate) struct LogCapture {
    buffer: Buffer,
    _default: DefaultGuard,
    /// tracing-core computes the interest of a callsite first reached while
    /// a single dispatcher exists from the reaching thread's subscriber
    /// alone, so a log line first written by a test running on another
    /// thread would stay off here. A second live dispatcher makes every
    /// later registration ask all of them.
    _second: Dispatch,
}

impl LogCapture {
    pub(crate) fn start() -> Self {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(buffer.clone())
            .finish();
        Self {
            buffer,
            _default: tracing::subscriber::set_default(subscriber),
            _second: Dispatch::new(tracing::subscriber::NoSubscriber::default()),
        }
    }

    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.buffer.0.lock().unwrap().clone()).unwrap()
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
