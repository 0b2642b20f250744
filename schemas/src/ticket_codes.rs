//! Ticket codes: compact signed tokens a door scanner reads (shown by `GET /api/tickets` and
//! in confirmation mails, verified by check-in). A code carries the booking and
//! the ticket's position (the ticket id derives from both) and an HMAC over those and the
//! event, so a forged code, or a real code shown at another event, fails verification.
//! Format: base64url(booking id 16 B ‖ index 1 B ‖ HMAC-SHA256 truncated to 10 B), 36 chars.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const MAC_LEN: usize = 10;
const CODE_LEN: usize = 16 + 1 + MAC_LEN;

#[derive(Clone)]
pub struct TicketCodes {
    key: Vec<u8>,
}

impl TicketCodes {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The codes every process derives from the shared `JWT_SECRET`.
    pub fn from_jwt_secret(jwt_secret: &str) -> Self {
        Self::new(format!("tickets:{jwt_secret}").as_bytes())
    }

    fn mac(&self, event_id: Uuid, booking_id: Uuid, index: u8) -> [u8; MAC_LEN] {
        // HMAC takes keys of any length, so this cannot fail; an empty key is still a key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0]).expect("one-byte key"));
        mac.update(b"ticket:");
        mac.update(event_id.as_bytes());
        mac.update(booking_id.as_bytes());
        mac.update(&[index]);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub fn sign(&self, event_id: Uuid, booking_id: Uuid, index: u8) -> String {
        let mut bytes = Vec::with_capacity(CODE_LEN);
        bytes.extend_from_slice(booking_id.as_bytes());
        bytes.push(index);
        bytes.extend_from_slice(&self.mac(event_id, booking_id, index));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The (booking, index) a code names, if it was signed by us for `event_id`.
    pub fn verify(&self, event_id: Uuid, code: &str) -> Option<(Uuid, u8)> {
        let bytes = URL_SAFE_NO_PAD.decode(code.trim()).ok()?;
        if bytes.len() != CODE_LEN {
            return None;
        }
        let booking_id = Uuid::from_slice(&bytes[..16]).ok()?;
        let index = bytes[16];
        let expected = self.mac(event_id, booking_id, index);
        // Constant-time comparison: a timing oracle must not reveal the MAC byte by byte.
        let mut diff = 0u8;
        for (a, b) in expected.iter().zip(&bytes[17..]) {
            diff |= a ^ b;
        }
        (diff == 0).then_some((booking_id, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_code_verifies_for_its_event_only() {
        let codes = TicketCodes::new(b"secret");
        let (event, other, booking) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let code = codes.sign(event, booking, 4);
        assert_eq!(code.len(), 36);
        assert_eq!(codes.verify(event, &code), Some((booking, 4)));
        assert_eq!(codes.verify(other, &code), None);
        assert_eq!(TicketCodes::new(b"other").verify(event, &code), None);
    }

    #[test]
    fn tampered_and_garbage_codes_fail() {
        let codes = TicketCodes::new(b"secret");
        let event = Uuid::from_u128(1);
        let mut bytes = URL_SAFE_NO_PAD
            .decode(codes.sign(event, Uuid::from_u128(3), 0))
            .expect("base64");
        bytes[16] = 1; // claim another ticket of the booking
        assert_eq!(codes.verify(event, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        assert_eq!(codes.verify(event, "not-a-code"), None);
        assert_eq!(codes.verify(event, ""), None);
    }
}
