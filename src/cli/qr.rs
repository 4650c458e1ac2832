//! The enrolment URI's QR code, drawn by the `qrcode` crate's own renderers: in the terminal
//! (its Unicode half blocks, two module rows a line), as SVG, and as a PNG (its `image`
//! renderer, encoded by the `image` crate's PNG encoder, compressed). All three keep the
//! standard quiet zone of 4 modules; the images are black on white, 8 pixels a module.

use super::exit::{Exit, Failure};
use image::{ImageFormat, Luma};
use qrcode::render::svg;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use std::fs::OpenOptions;
use std::io::{Cursor, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Pixels a module of the SVG and PNG images.
const MODULE_PX: u32 = 8;

/// The QR code of one text (error correction level M).
pub struct Qr(QrCode);

impl Qr {
    /// The QR code of `text`.
    pub fn new(text: &str) -> Result<Qr, Failure> {
        QrCode::new(text.as_bytes())
            .map(Qr)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot make a QR code: {e}")))
    }

    /// The code as text for a terminal, two module rows a line, without a final line end. The
    /// terminal's foreground colour draws the light modules (dark background, the usual
    /// terminal) unless `invert`, which draws the dark ones (light background).
    pub fn terminal(&self, invert: bool) -> String {
        // A `Dense1x2::Dark` pixel is drawn with a block, a `Light` one is left blank.
        let (drawn, blank) = (Dense1x2::Dark, Dense1x2::Light);
        let mut renderer = self.0.render::<Dense1x2>();
        if invert {
            renderer.dark_color(drawn).light_color(blank);
        } else {
            renderer.dark_color(blank).light_color(drawn);
        }
        renderer.build()
    }

    /// The code as an SVG image, with a final line end.
    pub fn svg(&self) -> String {
        let mut image = self
            .0
            .render::<svg::Color>()
            .module_dimensions(MODULE_PX, MODULE_PX)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build();
        image.push('\n');
        image
    }

    /// The code as a PNG image: 8-bit grey, deflate-compressed.
    pub fn png(&self) -> Result<Vec<u8>, Failure> {
        let image = self
            .0
            .render::<Luma<u8>>()
            .module_dimensions(MODULE_PX, MODULE_PX)
            .build();
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot make the PNG image: {e}")))?;
        Ok(png)
    }
}

/// Writes an image holding the secret to a new file, mode 0600; never replaces a file or
/// follows a symlink.
pub fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()));
    result.map_err(|e| {
        let exit = if e.kind() == std::io::ErrorKind::AlreadyExists {
            Exit::Usage
        } else {
            Exit::Error
        };
        Failure::new(
            exit,
            format!(
                "{}: cannot write the QR image: {e} (it must be a new file)",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modules a side, with the quiet zone of 4 on each side.
    fn side(qr: &Qr) -> usize {
        qr.0.width() + 8
    }

    #[test]
    fn terminal_rows_are_half_the_modules() {
        let qr = Qr::new("hello").unwrap();
        for invert in [false, true] {
            let text = qr.terminal(invert);
            assert_eq!(text.lines().count(), side(&qr).div_ceil(2));
            assert!(text.lines().all(|l| l.chars().count() == side(&qr)));
            assert!(text.chars().all(|c| " █▀▄\n".contains(c)));
        }
    }

    #[test]
    fn the_quiet_zone_is_light() {
        let qr = Qr::new("hello").unwrap();
        // Dark terminal: the light modules are drawn, so the top of the quiet zone is blocks.
        let dark = qr.terminal(false);
        let first = dark.lines().next().unwrap();
        assert!(first.chars().all(|c| c == '█'), "{first}");
        // Light terminal: the light modules are left blank.
        let light = qr.terminal(true);
        let first = light.lines().next().unwrap();
        assert!(first.chars().all(|c| c == ' '), "{first:?}");
    }

    #[test]
    fn the_png_is_compressed_and_8_pixels_a_module() {
        let qr = Qr::new("otpauth://totp/mailmfa:alice?secret=JBSWY3DPEHPK3PXP").unwrap();
        let png = qr.png().unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let px = u32::try_from(side(&qr)).unwrap() * MODULE_PX;
        // IHDR, right after the signature and its chunk header: width, then height.
        assert_eq!(png[16..20], px.to_be_bytes());
        assert_eq!(png[20..24], px.to_be_bytes());
        // Far below even one bit a pixel stored as it is (the encoder this replaced).
        let stored = usize::try_from(px * px / 8).unwrap();
        assert!(png.len() * 4 < stored, "{} bytes for {px}x{px}", png.len());
    }

    #[test]
    fn the_svg_is_black_on_white_8_pixels_a_module() {
        let qr = Qr::new("hello").unwrap();
        let image = qr.svg();
        let px = side(&qr) * 8;
        assert!(image.starts_with("<?xml"), "{image}");
        assert!(image.contains(&format!("width=\"{px}\" height=\"{px}\"")));
        assert!(image.contains("fill=\"#ffffff\"") && image.contains("fill=\"#000000\""));
        assert!(image.ends_with("</svg>\n"));
    }
}
