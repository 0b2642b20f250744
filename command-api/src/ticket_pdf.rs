//! Renders one ticket as a one-page PDF (A6 portrait, standard Helvetica, nothing embedded but
//! the QR code): the event, venue and start, the seat or section, the holder, and the ticket's
//! signed `code` as a QR code. The QR code is a grayscale image of one pixel per module (with
//! the four-module quiet zone) scaled up without interpolation, so it stays sharp at any zoom
//! and a scanner or a test can read the modules straight from the image.

use chrono::{DateTime, Utc};
use domain::booking::TicketStatus;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use qrcode::{Color, QrCode};

use crate::invoice_pdf::ascii;

/// Modules of light margin around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;
/// The printed QR code's side in points (about 64 mm).
const QR_SIDE: f32 = 180.0;

/// Everything a ticket PDF shows.
pub struct TicketDocument {
    pub event_name: String,
    pub venue: String,
    pub starts_at: Option<DateTime<Utc>>,
    /// `None` for general admission.
    pub seat_id: Option<String>,
    pub section_id: String,
    pub holder: String,
    pub status: TicketStatus,
    pub code: String,
}

impl TicketDocument {
    fn place(&self) -> String {
        match &self.seat_id {
            Some(seat) => format!("Seat {seat}"),
            None => format!("General admission, section {}", self.section_id),
        }
    }
}

/// The code's modules as 8-bit gray pixels (0 dark, 255 light) and the image's side.
fn qr_pixels(code: &str) -> Result<(Vec<u8>, usize), qrcode::types::QrError> {
    let qr = QrCode::new(code.as_bytes())?;
    let width = qr.width();
    let side = width + 2 * QUIET_ZONE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in qr.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            pixels[y * side + x] = 0;
        }
    }
    Ok((pixels, side))
}

pub fn render(ticket: &TicketDocument) -> Result<Vec<u8>, qrcode::types::QrError> {
    let (pixels, side) = qr_pixels(&ticket.code)?;
    let catalog_id = Ref::new(1);
    let page_tree_id = Ref::new(2);
    let page_id = Ref::new(3);
    let font_id = Ref::new(4);
    let bold_id = Ref::new(5);
    let content_id = Ref::new(6);
    let image_id = Ref::new(7);
    let (regular, bold, qr_name) = (Name(b"F1"), Name(b"F2"), Name(b"Qr"));
    let (page_w, page_h) = (298.0, 420.0);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(page_tree_id);
    pdf.pages(page_tree_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, page_w, page_h));
    page.parent(page_tree_id);
    page.contents(content_id);
    let mut resources = page.resources();
    let mut fonts = resources.fonts();
    fonts.pair(regular, font_id);
    fonts.pair(bold, bold_id);
    fonts.finish();
    resources.x_objects().pair(qr_name, image_id);
    resources.finish();
    page.finish();
    pdf.type1_font(font_id).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold"));
    let side_px = i32::try_from(side).unwrap_or(i32::MAX);
    let mut image = pdf.image_xobject(image_id, &pixels);
    image.width(side_px);
    image.height(side_px);
    image.color_space().device_gray();
    image.bits_per_component(8);
    image.interpolate(false);
    image.finish();

    let starts = ticket
        .starts_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let mut lines: Vec<(Name, f32, String)> = vec![
        (bold, 16.0, ascii(&ticket.event_name)),
        (regular, 10.0, ascii(&ticket.venue)),
        (regular, 10.0, starts),
        (bold, 12.0, ascii(&ticket.place())),
        (regular, 10.0, format!("Holder: {}", ascii(&ticket.holder))),
    ];
    if ticket.status != TicketStatus::Valid {
        let state = match ticket.status {
            TicketStatus::CheckedIn => "CHECKED IN",
            _ => "VOID - not valid for entry",
        };
        lines.push((bold, 12.0, state.to_owned()));
    }

    let mut content = Content::new();
    let mut y = page_h - 40.0;
    for (font, size, text) in &lines {
        content.begin_text();
        content.set_font(*font, *size);
        content.next_line(24.0, y);
        content.show(Str(text.as_bytes()));
        content.end_text();
        y -= size * 1.6;
    }
    // The image space is the unit square: scale it to the printed side, centred.
    content.save_state();
    content.transform([QR_SIDE, 0.0, 0.0, QR_SIDE, (page_w - QR_SIDE) / 2.0, 40.0]);
    content.x_object(qr_name);
    content.restore_state();
    content.begin_text();
    content.set_font(regular, 7.0);
    content.next_line(24.0, 26.0);
    content.show(Str(ascii(&ticket.code).as_bytes()));
    content.end_text();
    pdf.stream(content_id, &content.finish());
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_image_has_a_light_quiet_zone_and_dark_modules() {
        let (pixels, side) = qr_pixels("abc").expect("encodable");
        assert_eq!(pixels.len(), side * side);
        assert!(pixels[..side * QUIET_ZONE].iter().all(|p| *p == 255));
        assert!(pixels.contains(&0));
    }
}
