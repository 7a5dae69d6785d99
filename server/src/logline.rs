//! One event, one line of the log: whatever a client or a container sent
//! (a name, a command word, a line of output) cannot start a line of its
//! own and pass for the server's (a forged `audit: refused ...`). Line
//! breaks and other control characters inside an event's text are written
//! escaped, as `\n`, `\r`, `\x1b`.

use std::io::{self, Write};

/// Writes each event's text with its control characters escaped; the
/// newline that ends it stays. tracing's formatter hands over one whole
/// event per write.
#[derive(Debug)]
pub struct OneLine<W> {
    inner: W,
    /// Colours on: ESC starts the formatter's own colour codes and stays.
    ansi: bool,
}

impl<W> OneLine<W> {
    pub fn new(inner: W, ansi: bool) -> Self {
        OneLine { inner, ansi }
    }
}

/// `body` with every control character but tab (and ESC when `ansi`)
/// escaped.
pub fn escape(body: &[u8], ansi: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (buf, false),
        };
        let mut line = escape(body, self.ansi);
        if end {
            line.push(b'\n');
        }
        // One write: another thread's event never lands inside this one.
        self.inner.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_inside_an_event_are_escaped_and_its_end_kept() {
        let mut out = OneLine::new(Vec::new(), false);
        out.write_all(b"WARN operation container=x\naudit: refused client=forged\r\x1b[2K\tok\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out.inner).unwrap(),
            "WARN operation container=x\\naudit: refused client=forged\\r\\x1b[2K\tok\n"
        );
        let mut out = OneLine::new(Vec::new(), true);
        out.write_all(b"\x1b[33mWARN\x1b[0m a\nb\n").unwrap();
        assert_eq!(out.inner, b"\x1b[33mWARN\x1b[0m a\\nb\n");
    }
}
