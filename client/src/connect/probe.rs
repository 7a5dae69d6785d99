//! What answers at an address where a dockstack server was expected, told
//! by the first bytes it sends back to the HTTP/2 preface: a TLS server (an
//! alert), an HTTP/1 server (a status line) or a plaintext HTTP/2 server
//! (its SETTINGS frame). A failed connection says only that the bytes were
//! wrong; this says whose they were, so the message names one cause.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The client's HTTP/2 connection preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// What answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A TLS server: it answered the preface with an alert.
    Tls,
    /// An HTTP/1 server: a status line.
    Http1,
    /// A plaintext HTTP/2 server (a gRPC server without TLS).
    Http2,
    /// Something else that answers (an HTTP/0.9 page, a banner).
    Other,
    /// No answer within the time given.
    Unknown,
}

/// Sends the preface to `addr` and reads what comes back, within `within`.
pub async fn probe(addr: &str, within: Duration) -> Found {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tcp.write_all(PREFACE).await.ok()?;
        let mut buf = [0u8; 16];
        let mut got = 0;
        // Enough to tell them apart: a TLS record header, "HTTP/", or a
        // frame header.
        while got < 9 {
            match tcp.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        Some(classify(&buf[..got]))
    };
    tokio::time::timeout(within, exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(Found::Unknown)
}

fn classify(b: &[u8]) -> Found {
    match b {
        // A TLS record (alert or handshake), version 3.x.
        [0x15 | 0x16, 0x03, ..] => Found::Tls,
        _ if b.starts_with(b"HTTP/") => Found::Http1,
        // A frame header whose type is SETTINGS (4): the first frame an
        // HTTP/2 server sends.
        [_, _, _, 0x04, ..] if b.len() >= 9 => Found::Http2,
        [] => Found::Unknown,
        _ => Found::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_the_server() {
        assert_eq!(
            classify(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            Found::Tls
        );
        assert_eq!(classify(b"HTTP/1.1 400 Bad Request"), Found::Http1);
        assert_eq!(
            classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]),
            Found::Http2
        );
        assert_eq!(classify(b""), Found::Unknown);
        assert_eq!(classify(b"SSH-2.0-OpenSSH"), Found::Other);
    }
}
