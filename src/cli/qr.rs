//! The enrolment URI and its QR code: in the terminal (Unicode half blocks), as SVG and as
//! PNG (through [`super::png`]). The `qrcode` crate only computes the module matrix; every
//! rendering is here, so all three show the same matrix with the same quiet zone rule.

use super::exit::{Exit, Failure};
use super::png;
use qrcode::{Color, QrCode};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A QR code's modules: `true` is dark.
pub struct Matrix {
    width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    /// The QR code of `text` (error correction level M).
    pub fn new(text: &str) -> Result<Matrix, Failure> {
        let code = QrCode::new(text.as_bytes())
            .map_err(|e| Failure::new(Exit::Error, format!("cannot make a QR code: {e}")))?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(Matrix { width, dark })
    }

    /// Modules per side, without the quiet zone.
    #[cfg(test)]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at (`x`, `y`) is dark; outside the code (the quiet zone) is light.
    pub fn is_dark(&self, x: isize, y: isize) -> bool {
        let w = self.width as isize;
        (0..w).contains(&x) && (0..w).contains(&y) && self.dark[(y * w + x) as usize]
    }

    /// The code as text for a terminal, two module rows per line, with a quiet zone of
    /// `quiet` modules. The terminal's foreground colour draws the light modules (dark
    /// background, the usual terminal) unless `invert`, which draws the dark ones (light
    /// background).
    pub fn terminal(&self, quiet: usize, invert: bool) -> String {
        let q = quiet as isize;
        let end = self.width as isize + q;
        let drawn = |x, y| self.is_dark(x, y) == invert;
        let mut out = String::new();
        let mut y = -q;
        while y < end {
            for x in -q..end {
                let top = drawn(x, y);
                let bottom = y + 1 < end && drawn(x, y + 1);
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
            y += 2;
        }
        out
    }

    /// The code as an SVG image: black modules on white, a quiet zone of 4 modules, 8 pixels
    /// per module.
    pub fn svg(&self) -> String {
        let q = 4;
        let size = self.width + 2 * q;
        let mut path = String::new();
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if self.is_dark(x as isize, y as isize) {
                    let start = x;
                    while x < self.width && self.is_dark(x as isize, y as isize) {
                        x += 1;
                    }
                    path.push_str(&format!(
                        "M{},{}h{}v1h-{}z",
                        start + q,
                        y + q,
                        x - start,
                        x - start
                    ));
                } else {
                    x += 1;
                }
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             version=\"1.1\" width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {size} {size}\" \
             shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#ffffff\"/>\
             <path fill=\"#000000\" d=\"{path}\"/></svg>\n",
            px = size * 8
        )
    }

    /// The code as a PNG image: black modules on white, a quiet zone of 4 modules, 8 pixels
    /// per module.
    pub fn png(&self) -> Vec<u8> {
        let (q, scale) = (4usize, 8usize);
        let side = (self.width + 2 * q) * scale;
        png::encode_gray1(side, side, |x, y| {
            !self.is_dark(
                (x / scale) as isize - q as isize,
                (y / scale) as isize - q as isize,
            )
        })
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

    #[test]
    fn terminal_rows_are_half_the_modules() {
        let m = Matrix::new("hello").unwrap();
        let text = m.terminal(2, false);
        assert_eq!(text.lines().count(), (m.width() + 4).div_ceil(2));
        assert!(text.lines().all(|l| l.chars().count() == m.width() + 4));
    }
}
