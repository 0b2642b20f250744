//! Renders an invoice or credit note as a one-page PDF (A4, the standard Helvetica font, so
//! nothing is embedded or fetched). Text outside printable ASCII is replaced, because the
//! standard fonts' encoding covers only Latin-1 and a PDF with a wrong glyph is worse than one
//! with a `?`.

use domain::ledger::DocumentKind;
use domain::money::Money;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use schemas::api::invoices::InvoiceDocument;

pub(crate) fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn money(m: &Money) -> String {
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    let abs = m.amount_minor.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        abs / 100,
        abs % 100,
        ascii(&m.currency)
    )
}

/// The document's title as printed: `Invoice No. 17` or `Credit note No. 18`.
pub fn title(document: &InvoiceDocument) -> String {
    let kind = match document.kind {
        DocumentKind::Invoice => "Invoice",
        DocumentKind::CreditNote => "Credit note",
    };
    format!("{kind} No. {}", document.number)
}

pub fn render(document: &InvoiceDocument) -> Vec<u8> {
    let catalog_id = Ref::new(1);
    let page_tree_id = Ref::new(2);
    let page_id = Ref::new(3);
    let font_id = Ref::new(4);
    let bold_id = Ref::new(5);
    let content_id = Ref::new(6);
    let (regular, bold) = (Name(b"F1"), Name(b"F2"));

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(page_tree_id);
    pdf.pages(page_tree_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    page.parent(page_tree_id);
    page.contents(content_id);
    let mut resources = page.resources();
    let mut fonts = resources.fonts();
    fonts.pair(regular, font_id);
    fonts.pair(bold, bold_id);
    fonts.finish();
    resources.finish();
    page.finish();
    pdf.type1_font(font_id).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold"));

    let mut lines: Vec<(Name, f32, String)> = vec![
        (bold, 20.0, title(document)),
        (
            regular,
            11.0,
            format!("Issued {}", document.issued_at.format("%Y-%m-%d %H:%M UTC")),
        ),
        (
            regular,
            11.0,
            format!("Document id {}", document.invoice_id),
        ),
        (regular, 11.0, format!("Booking {}", document.booking_id)),
        (regular, 11.0, format!("Event {}", document.event_id)),
        (
            regular,
            11.0,
            format!("Seller (organizer) {}", document.organizer_id),
        ),
        (regular, 11.0, String::new()),
        (
            bold,
            12.0,
            "Qty  Description  Unit price  Amount".to_owned(),
        ),
    ];
    for line in &document.lines {
        lines.push((
            regular,
            11.0,
            format!(
                "{}  {} ({})  {}  {}",
                line.quantity,
                ascii(&line.description),
                ascii(&line.tier_id),
                money(&line.unit_price),
                money(&line.amount)
            ),
        ));
    }
    lines.push((regular, 11.0, String::new()));
    lines.push((bold, 13.0, format!("Total {}", money(&document.total))));
    if document.kind == DocumentKind::CreditNote {
        lines.push((
            regular,
            11.0,
            "This credit note refunds the booking's invoice in full.".to_owned(),
        ));
    }

    let mut content = Content::new();
    let mut y = 780.0;
    for (font, size, text) in &lines {
        content.begin_text();
        content.set_font(*font, *size);
        content.next_line(56.0, y);
        content.show(Str(text.as_bytes()));
        content.end_text();
        y -= size * 1.6;
    }
    pdf.stream(content_id, &content.finish());
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_minor_units_as_decimals() {
        assert_eq!(money(&Money::new(4_505, "EUR")), "45.05 EUR");
        assert_eq!(money(&Money::new(-7, "EUR")), "-0.07 EUR");
    }

    #[test]
    fn non_ascii_text_is_replaced() {
        assert_eq!(ascii("Café — 1"), "Caf? ? 1");
    }
}
