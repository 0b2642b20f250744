//! WebSocket framing (RFC 6455), the server's side of it. A server frame is never masked,
//! so one encoded frame — header and payload — is the same bytes for every client: a room
//! frame is encoded once and each connection writes those bytes as they are, with no buffer
//! of its own. Client frames (always masked) are decoded by a [`Decoder`] that holds bytes
//! only while a frame is incomplete.
//!
//! What is left out on purpose: extensions (no `permessage-deflate` is negotiated) and
//! subprotocols; clients only send small text messages.

use bytes::{BufMut, Bytes, BytesMut};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A whole, final, unmasked server frame.
fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(0x80 | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
    out.extend_from_slice(payload);
    out.freeze()
}

pub fn text(payload: &str) -> Bytes {
    encode(TEXT, payload.as_bytes())
}

pub fn ping() -> Bytes {
    encode(PING, &[])
}

pub fn pong(payload: &[u8]) -> Bytes {
    encode(PONG, payload)
}

/// A close frame with `code` and a reason (cut to fit a control frame's 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(CLOSE, &payload)
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// A client that breaks the protocol; the connection is closed with `close_code`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("message over the size limit")]
    TooBig,
    #[error("text that is not UTF-8")]
    NotUtf8,
}

impl WireError {
    pub fn close_code(&self) -> u16 {
        match self {
            WireError::Protocol(_) => 1002,
            WireError::TooBig => 1009,
            WireError::NotUtf8 => 1007,
        }
    }
}

/// Client bytes in, whole messages out (fragments joined, control frames in between
/// answered as they come).
pub struct Decoder {
    buf: Vec<u8>,
    /// A fragmented message being joined: its opcode and the payload so far.
    partial: Option<(u8, Vec<u8>)>,
    max_message: usize,
}

impl Decoder {
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            partial: None,
            max_message,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `None` until one is complete.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, WireError> {
        loop {
            let Some((fin, opcode, payload)) = self.frame()? else {
                // Nothing pending keeps no memory: clients are quiet for long stretches.
                if self.buf.is_empty() {
                    self.buf = Vec::new();
                }
                return Ok(None);
            };
            let message = match opcode {
                CLOSE => Incoming::Close,
                PING => Incoming::Ping(payload),
                PONG => Incoming::Pong,
                TEXT | BINARY if self.partial.is_some() => {
                    return Err(WireError::Protocol("a new message inside a fragmented one"));
                }
                TEXT | BINARY if !fin => {
                    self.partial = Some((opcode, payload));
                    continue;
                }
                TEXT | BINARY => whole(opcode, payload)?,
                CONTINUATION => {
                    let Some((first, mut joined)) = self.partial.take() else {
                        return Err(WireError::Protocol("a continuation of nothing"));
                    };
                    if joined.len() + payload.len() > self.max_message {
                        return Err(WireError::TooBig);
                    }
                    joined.extend_from_slice(&payload);
                    if !fin {
                        self.partial = Some((first, joined));
                        continue;
                    }
                    whole(first, joined)?
                }
                _ => return Err(WireError::Protocol("unknown opcode")),
            };
            return Ok(Some(message));
        }
    }

    /// One complete frame off the buffer, unmasked: (fin, opcode, payload).
    fn frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, WireError> {
        let [b0, b1, ..] = self.buf[..] else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WireError::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        if b1 & 0x80 == 0 {
            return Err(WireError::Protocol("client frames must be masked"));
        }
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
        let (len, at) = match b1 & 0x7F {
            126 => match self.buf.get(2..4) {
                Some(n) => (u64::from(u16::from_be_bytes([n[0], n[1]])), 4),
                None => return Ok(None),
            },
            127 => match self.buf.get(2..10) {
                Some(n) => (u64::from_be_bytes(n.try_into().unwrap_or_default()), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if opcode >= CLOSE && (!fin || len > 125) {
            return Err(WireError::Protocol("control frames are short and whole"));
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.max_message)
            .ok_or(WireError::TooBig)?;
        let Some(mask) = self.buf.get(at..at + 4) else {
            return Ok(None);
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        let start = at + 4;
        let Some(masked) = self.buf.get(start..start + len) else {
            return Ok(None);
        };
        let payload = masked
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        self.buf.drain(..start + len);
        Ok(Some((fin, opcode, payload)))
    }
}

fn whole(opcode: u8, payload: Vec<u8>) -> Result<Incoming, WireError> {
    if opcode == BINARY {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| WireError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it: masked.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn server_frames_carry_the_length_in_the_shortest_form_and_no_mask() {
        assert_eq!(&text("Hello")[..], b"\x81\x05Hello");
        let medium = text(&"x".repeat(300));
        assert_eq!(&medium[..4], &[0x81, 126, 0x01, 0x2C]);
        assert_eq!(medium.len(), 304);
        let long = text(&"x".repeat(70_000));
        assert_eq!(&long[..2], &[0x81, 127]);
        assert_eq!(&long[2..10], &70_000u64.to_be_bytes());
        assert_eq!(&close(1008, "too slow")[..], b"\x88\x0a\x03\xf0too slow");
        assert_eq!(&ping()[..], b"\x89\x00");
    }

    #[test]
    fn decodes_masked_messages_split_anywhere() {
        let mut bytes = client(true, TEXT, br#"{"type":"subscribe"}"#);
        bytes.extend(client(true, PING, b"hi"));
        let mut decoder = Decoder::new(1024);
        let mut got = Vec::new();
        for byte in bytes {
            decoder.push(&[byte]);
            while let Some(message) = decoder.next_message().expect("valid") {
                got.push(message);
            }
        }
        assert_eq!(
            got,
            vec![
                Incoming::Text(r#"{"type":"subscribe"}"#.into()),
                Incoming::Ping(b"hi".to_vec())
            ]
        );
        assert_eq!(decoder.buf.capacity(), 0, "an idle decoder holds no buffer");
    }

    #[test]
    fn joins_fragments_around_a_control_frame() {
        let mut decoder = Decoder::new(1024);
        decoder.push(&client(false, TEXT, b"Hel"));
        decoder.push(&client(true, PONG, b""));
        decoder.push(&client(true, CONTINUATION, b"lo"));
        assert_eq!(decoder.next_message(), Ok(Some(Incoming::Pong)));
        assert_eq!(
            decoder.next_message(),
            Ok(Some(Incoming::Text("Hello".into())))
        );
        assert_eq!(decoder.next_message(), Ok(None));
    }

    #[test]
    fn refuses_what_breaks_the_protocol_or_the_limits() {
        let refused = |bytes: Vec<u8>, max: usize| {
            let mut decoder = Decoder::new(max);
            decoder.push(&bytes);
            decoder.next_message().expect_err("refused")
        };
        let mut unmasked = client(true, TEXT, b"x");
        unmasked[1] &= 0x7F;
        assert_eq!(refused(unmasked, 16).close_code(), 1002);
        assert_eq!(
            refused(client(true, TEXT, &[0xff, 0xfe]), 16).close_code(),
            1007
        );
        assert_eq!(
            refused(client(true, TEXT, &[b'x'; 300]), 256).close_code(),
            1009
        );
        assert_eq!(refused(client(false, PING, b""), 16).close_code(), 1002);
        assert_eq!(
            refused(client(true, CONTINUATION, b"x"), 16).close_code(),
            1002
        );
        let mut compressed = client(true, TEXT, b"x");
        compressed[0] |= 0x40;
        assert_eq!(refused(compressed, 16).close_code(), 1002);
    }
}
