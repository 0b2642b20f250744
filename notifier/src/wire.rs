//! WebSocket frames of the server's side, through `tungstenite`'s frame codec
//! (`FrameHeader`, `Frame`) under buffers of our own. A server frame is never masked, so one
//! encoded frame — header and payload — is the same bytes for every client: a room frame is
//! encoded once and each connection writes those bytes as they are, with no buffer of its
//! own. Client frames (always masked) are parsed by a [`Decoder`] that holds bytes only while
//! a frame is incomplete; what tungstenite's `WebSocket` would add per connection (a read
//! buffer it never releases, a write buffer every frame is copied into) is left out (ADR 0007).
//!
//! No extension (`permessage-deflate`) and no subprotocol is agreed; clients only send small
//! text messages.

use std::io::Cursor;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader, Utf8Bytes};

fn encode(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    // Writing into a Vec cannot fail.
    let _ = frame.format(&mut out);
    Bytes::from(out)
}

pub fn text(payload: &str) -> Bytes {
    encode(Frame::message(
        Bytes::copy_from_slice(payload.as_bytes()),
        OpCode::Data(Data::Text),
        true,
    ))
}

pub fn ping() -> Bytes {
    encode(Frame::ping(Bytes::new()))
}

pub fn pong(payload: Bytes) -> Bytes {
    encode(Frame::pong(payload))
}

/// A close frame with `code` and a reason (cut to fit a control frame's 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(&reason[..end]),
    })))
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Bytes),
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
        u16::from(match self {
            WireError::Protocol(_) => CloseCode::Protocol,
            WireError::TooBig => CloseCode::Size,
            WireError::NotUtf8 => CloseCode::Invalid,
        })
    }
}

/// Client bytes in, whole messages out (fragments joined, control frames in between
/// answered as they come).
pub struct Decoder {
    buf: Vec<u8>,
    /// A fragmented message being joined: whether it is text, and the payload so far.
    partial: Option<(Data, Vec<u8>)>,
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
            let Some((header, payload)) = self.frame()? else {
                // Nothing pending keeps no memory: clients are quiet for long stretches.
                if self.buf.is_empty() {
                    self.buf = Vec::new();
                }
                return Ok(None);
            };
            let fin = header.is_final;
            let data = match header.opcode {
                OpCode::Control(Control::Close) => return Ok(Some(Incoming::Close)),
                OpCode::Control(Control::Ping) => {
                    return Ok(Some(Incoming::Ping(Bytes::from(payload))));
                }
                OpCode::Control(_) => return Ok(Some(Incoming::Pong)),
                OpCode::Data(data) => data,
            };
            let (kind, whole) = match (data, self.partial.take()) {
                (Data::Continue, None) => {
                    return Err(WireError::Protocol("a continuation of nothing"));
                }
                (Data::Continue, Some((kind, mut joined))) => {
                    if joined.len() + payload.len() > self.max_message {
                        return Err(WireError::TooBig);
                    }
                    joined.extend_from_slice(&payload);
                    (kind, joined)
                }
                (_, Some(_)) => {
                    return Err(WireError::Protocol("a new message inside a fragmented one"));
                }
                (kind, None) => (kind, payload),
            };
            if !fin {
                self.partial = Some((kind, whole));
                continue;
            }
            return match kind {
                Data::Text => String::from_utf8(whole)
                    .map(|text| Some(Incoming::Text(text)))
                    .map_err(|_| WireError::NotUtf8),
                _ => Ok(Some(Incoming::Binary)),
            };
        }
    }

    /// One complete frame off the buffer, with its payload unmasked.
    fn frame(&mut self) -> Result<Option<(FrameHeader, Vec<u8>)>, WireError> {
        let mut cursor = Cursor::new(&self.buf[..]);
        let Some((header, len)) =
            FrameHeader::parse(&mut cursor).map_err(|_| WireError::Protocol("unknown opcode"))?
        else {
            return Ok(None);
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WireError::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        let Some(mask) = header.mask else {
            return Err(WireError::Protocol("client frames must be masked"));
        };
        if matches!(header.opcode, OpCode::Control(_)) && (!header.is_final || len > 125) {
            return Err(WireError::Protocol("control frames are short and whole"));
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.max_message)
            .ok_or(WireError::TooBig)?;
        let start = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        let Some(masked) = self.buf.get(start..start.saturating_add(len)) else {
            return Ok(None);
        };
        // tungstenite keeps its unmasking to itself; it is one XOR per byte.
        let payload = masked
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        self.buf.drain(..start + len);
        Ok(Some((header, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it, made by tungstenite's client side.
    fn client(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: fin,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        Frame::from_payload(header, Bytes::copy_from_slice(payload))
            .format(&mut out)
            .expect("a Vec takes every write");
        out
    }

    const TEXT: OpCode = OpCode::Data(Data::Text);
    const CONTINUE: OpCode = OpCode::Data(Data::Continue);
    const PING: OpCode = OpCode::Control(Control::Ping);
    const PONG: OpCode = OpCode::Control(Control::Pong);

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
                Incoming::Ping(Bytes::from_static(b"hi"))
            ]
        );
        assert_eq!(decoder.buf.capacity(), 0, "an idle decoder holds no buffer");
    }

    #[test]
    fn joins_fragments_around_a_control_frame() {
        let mut decoder = Decoder::new(1024);
        decoder.push(&client(false, TEXT, b"Hel"));
        decoder.push(&client(true, PONG, b""));
        decoder.push(&client(true, CONTINUE, b"lo"));
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
        unmasked.drain(2..6);
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
        assert_eq!(refused(client(true, CONTINUE, b"x"), 16).close_code(), 1002);
        let mut compressed = client(true, TEXT, b"x");
        compressed[0] |= 0x40;
        assert_eq!(refused(compressed, 16).close_code(), 1002);
        let mut reserved = client(true, TEXT, b"x");
        reserved[0] = 0x83;
        assert_eq!(refused(reserved, 16).close_code(), 1002);
    }
}
