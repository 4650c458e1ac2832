//! The QR code of an `otpauth://` URI as inline SVG (no image file, nothing in a URL).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The SVG element (no XML declaration) with `id="qr"`, ready to put inline; `None` if the
/// URI is too long for a QR code.
pub fn svg(uri: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(264, 264)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].replacen(
        "<svg",
        "<svg id=\"qr\" role=\"img\" aria-label=\"QR code of your new MFA key\"",
        1,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_svg_is_inline_and_has_its_id() {
        let s = super::svg("otpauth://totp/mailmfa:alice?secret=JBSWY3DPEHPK3PXP&issuer=mailmfa")
            .unwrap();
        assert!(s.starts_with("<svg id=\"qr\""), "{}", &s[..60]);
        assert!(!s.contains("<?xml"));
        assert!(!s.contains("style="));
    }
}
