//! QR rendering of payment payloads (wallet session QRs and any other scan text) as a module
//! matrix for native drawing, SVG, greyscale PNG or Unicode text for terminals.
//!
//! Every rendering uses error correction level M (about 15 % of the code may be damaged) and
//! the smallest QR version (1 to 40) that holds the payload. Payloads are encoded as they are:
//! runs of digits or upper-case alphanumerics get the compact QR modes and everything else is
//! byte mode carrying the UTF-8 bytes, without an ECI header (phone scanners read such byte mode text as UTF-8).
//! The Kanji mode is never used, because it would make scanners re-interpret UTF-8 bytes as
//! Shift JIS.

use crate::error::WalletError;
use opencharge_protocol::qr::MAX_PAYLOAD_BYTES;
use qrcode::bits::Bits;
use qrcode::optimize::{Optimizer, Parser, Segment};
use qrcode::types::{Mode, QrError};
use qrcode::{Color, EcLevel, QrCode, Version};
use std::fmt::Write as _;
use std::io::Write as _;

/// Width of the light border (quiet zone) around a QR code, in modules, that every rendering
/// except [`QrMatrix`] includes and that scanners need.
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Largest accepted `module_px` (pixels per module) for the SVG and PNG renderings. The largest
/// PNG is therefore (177 + 8) × 64 = 11 840 pixels square.
pub const MAX_MODULE_PX: u32 = 64;

/// The error correction level of every rendering: M.
const EC_LEVEL: EcLevel = EcLevel::M;

/// Largest QR version.
const MAX_VERSION: i16 = 40;

/// Dark module colour in SVG.
const SVG_DARK: &str = "#000";

/// Light module colour in SVG.
const SVG_LIGHT: &str = "#fff";

/// Terminal character for a light upper and a light lower module.
const TERM_BOTH_LIGHT: char = '\u{2588}';
/// Terminal character for a light upper and a dark lower module.
const TERM_UPPER_LIGHT: char = '\u{2580}';
/// Terminal character for a dark upper and a light lower module.
const TERM_LOWER_LIGHT: char = '\u{2584}';
/// Terminal character for two dark modules.
const TERM_BOTH_DARK: char = ' ';

/// A QR code as modules for native drawing.
///
/// The matrix does NOT include the quiet zone: draw it with a light border of
/// 4 modules on every side, so the drawn square is `size + 8` modules
/// wide. Draw dark modules black (or very dark) on a white (or very light) background.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QrMatrix {
    /// Modules per side (21 for version 1 up to 177 for version 40), without the quiet zone.
    pub size: i32,
    /// `size * size` modules, row by row from the top left; `true` is a dark module.
    pub modules: Vec<bool>,
}

impl QrMatrix {
    /// Whether the module at column `x`, row `y` of the drawn square (quiet zone included, so
    /// `0..size + 8`) is dark. The quiet zone and anything outside are light.
    fn dark_at(&self, x: u32, y: u32) -> bool {
        let (Some(cx), Some(cy)) = (
            x.checked_sub(QUIET_ZONE_MODULES),
            y.checked_sub(QUIET_ZONE_MODULES),
        ) else {
            return false;
        };
        let side = self.side();
        if cx >= side || cy >= side {
            return false;
        }
        let index = cy as usize * side as usize + cx as usize;
        self.modules.get(index).copied().unwrap_or(false)
    }

    /// Modules per side without the quiet zone (0 for a matrix not made by this module).
    fn side(&self) -> u32 {
        u32::try_from(self.size).unwrap_or(0)
    }

    /// Modules per side of the drawn square, quiet zone included.
    fn full_size(&self) -> u32 {
        self.side() + 2 * QUIET_ZONE_MODULES
    }
}

/// Renders `payload` as an SVG document (UTF-8 text).
///
/// The image includes a light quiet zone of 4 modules; dark modules are `#000` on a `#fff`
/// background. `width` and `height` are `(size + 8) * modulePx` pixels and the `viewBox` is in
/// modules (`0 0 size+8 size+8`), so the SVG scales cleanly to any size. The document is
/// self-contained: no scripts, no links, no external references.
///
/// Errors: `InvalidInput` when the payload is empty, longer than
/// 4096 bytes or does not fit in a QR code at level M, or when `modulePx` is
/// not in `1..=64`.
#[uniffi::export]
pub fn render_qr_svg(payload: String, module_px: i32) -> Result<String, WalletError> {
    let module_px = check_module_px(module_px)?;
    let matrix = encode(&payload)?;
    let full = matrix.full_size();
    let px = full * module_px;
    let mut svg = String::with_capacity(300 + matrix.modules.len() * 3);
    // `write!` into a `String` cannot fail; the results are ignored on purpose.
    let _ = write!(
        svg,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{px}" height="{px}" "#,
            r#"viewBox="0 0 {full} {full}" shape-rendering="crispEdges">"#,
            r#"<rect x="0" y="0" width="{full}" height="{full}" fill="{light}"/>"#,
            r#"<path fill="{dark}" d=""#
        ),
        px = px,
        full = full,
        light = SVG_LIGHT,
        dark = SVG_DARK,
    );
    // One closed rectangle per horizontal run of dark modules, in module units.
    for y in 0..full {
        let mut x = 0;
        while x < full {
            if !matrix.dark_at(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < full && matrix.dark_at(x, y) {
                x += 1;
            }
            let run = x - start;
            let _ = write!(svg, "M{start} {y}h{run}v1h-{run}z");
        }
    }
    svg.push_str(r#""/></svg>"#);
    Ok(svg)
}

/// Renders `payload` as a PNG image: 8-bit greyscale, dark modules 0 (black) and light modules
/// 255 (white), with a light quiet zone of 4 modules.
///
/// The image is `(size + 8) * modulePx` pixels square; with `modulePx` at most 64 and at most
/// 177 modules per side it is never larger than 11 840 pixels square. Rows are encoded as they
/// are generated, so memory use stays at a few rows plus the compressed output.
///
/// Errors: `InvalidInput` when the payload is empty, longer than
/// 4096 bytes or does not fit in a QR code at level M, or when `modulePx` is
/// not in `1..=64`; `Internal` if the PNG encoder fails.
#[uniffi::export]
pub fn render_qr_png(payload: String, module_px: i32) -> Result<Vec<u8>, WalletError> {
    let module_px = check_module_px(module_px)?;
    let matrix = encode(&payload)?;
    let full = matrix.full_size();
    let px = full * module_px;
    let png_err =
        |e: &dyn std::fmt::Display| WalletError::internal(format!("PNG encoding failed: {e}"));

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, px, px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(|e| png_err(&e))?;
    let mut stream = writer.stream_writer().map_err(|e| png_err(&e))?;
    let mut row = vec![0u8; px as usize];
    for y in 0..full {
        for (x, pixels) in (0..full).zip(row.chunks_mut(module_px as usize)) {
            pixels.fill(if matrix.dark_at(x, y) { 0 } else { 255 });
        }
        for _ in 0..module_px {
            stream.write_all(&row).map_err(|e| png_err(&e))?;
        }
    }
    stream.finish().map_err(|e| png_err(&e))?;
    writer.finish().map_err(|e| png_err(&e))?;
    Ok(out)
}

/// Renders `payload` as a `QrMatrix` (without the quiet zone) for drawing with native views.
///
/// Errors: `InvalidInput` when the payload is empty, longer than
/// 4096 bytes or does not fit in a QR code at level M.
#[uniffi::export]
pub fn render_qr_matrix(payload: String) -> Result<QrMatrix, WalletError> {
    encode(&payload)
}

/// Renders `payload` as text for a terminal, with Unicode half blocks: each line holds two
/// module rows, so the text is `size + 8` characters wide and `(size + 9) / 2` lines high
/// (quiet zone of 4 modules included). Every line, the last included, ends with `\n`.
///
/// The LIGHT modules are drawn (`█`, `▀`, `▄`) and dark modules are left blank (a space), so the
/// terminal's background shows through as the dark colour. On a dark-background terminal this
/// is a normal QR code; on a light-background terminal it appears inverted (light on dark), which
/// most phone scanners read too. The bottom half of the last line (past the quiet zone) is left
/// blank.
///
/// Errors: `InvalidInput` when the payload is empty, longer than
/// 4096 bytes or does not fit in a QR code at level M.
#[uniffi::export]
pub fn render_qr_terminal(payload: String) -> Result<String, WalletError> {
    let matrix = encode(&payload)?;
    let full = matrix.full_size();
    let lines = full.div_ceil(2);
    let mut text = String::with_capacity(lines as usize * (full as usize * 3 + 1));
    for line in 0..lines {
        let upper_y = 2 * line;
        let lower_y = upper_y + 1;
        for x in 0..full {
            let upper_light = !matrix.dark_at(x, upper_y);
            // Past the last row there is nothing to draw: treat it as background (dark).
            let lower_light = lower_y < full && !matrix.dark_at(x, lower_y);
            text.push(match (upper_light, lower_light) {
                (true, true) => TERM_BOTH_LIGHT,
                (true, false) => TERM_UPPER_LIGHT,
                (false, true) => TERM_LOWER_LIGHT,
                (false, false) => TERM_BOTH_DARK,
            });
        }
        text.push('\n');
    }
    Ok(text)
}

/// Checks `module_px` is in `1..=MAX_MODULE_PX` and returns it unsigned.
fn check_module_px(module_px: i32) -> Result<u32, WalletError> {
    match u32::try_from(module_px) {
        Ok(px) if (1..=MAX_MODULE_PX).contains(&px) => Ok(px),
        _ => Err(WalletError::invalid(format!(
            "modulePx must be 1..={MAX_MODULE_PX}, got {module_px}"
        ))),
    }
}

/// Encodes `payload` at level M in the smallest version that holds it.
fn encode(payload: &str) -> Result<QrMatrix, WalletError> {
    let data = payload.as_bytes();
    if data.is_empty() {
        return Err(WalletError::invalid("QR payload is empty"));
    }
    if data.len() > MAX_PAYLOAD_BYTES {
        return Err(WalletError::invalid(format!(
            "QR payload too large ({} bytes, max {MAX_PAYLOAD_BYTES})",
            data.len()
        )));
    }
    let segments = segments_without_kanji(data);
    for number in 1..=MAX_VERSION {
        let version = Version::Normal(number);
        let mut bits = Bits::new(version);
        let pushed = bits
            .push_segments(data, Optimizer::new(segments.iter().copied(), version))
            .and_then(|()| bits.push_terminator(EC_LEVEL));
        match pushed {
            Ok(()) => {}
            Err(QrError::DataTooLong) => continue,
            Err(e) => return Err(WalletError::internal(format!("QR encoding failed: {e}"))),
        }
        let code = QrCode::with_bits(bits, EC_LEVEL)
            .map_err(|e| WalletError::internal(format!("QR encoding failed: {e}")))?;
        let size = i32::try_from(code.width())
            .map_err(|_| WalletError::internal("QR code width out of range"))?;
        let modules = code
            .into_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        return Ok(QrMatrix { size, modules });
    }
    Err(WalletError::invalid(format!(
        "QR payload of {} bytes does not fit in a QR code at error correction level M",
        data.len()
    )))
}

/// The mode segmentation of `data`, with Kanji segments turned into byte segments (the
/// optimizer merges neighbouring byte segments again for each version).
fn segments_without_kanji(data: &[u8]) -> Vec<Segment> {
    Parser::new(data)
        .map(|s| {
            if s.mode == Mode::Kanji {
                Segment {
                    mode: Mode::Byte,
                    ..s
                }
            } else {
                s
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The realistic wallet-session payload.
    const SESSION: &str = r#"{"ocid":200,"order":"https://api.wallet.example/opencharge/orders/create/13c8f6878f55327769736d2129b2d9cb","expiresAt":1706500300}"#;

    /// Decodes a square greyscale image with rqrr, expecting exactly one QR code.
    fn decode_grey(width: usize, pixel: impl FnMut(usize, usize) -> u8) -> String {
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, width, pixel);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "expected exactly one QR code");
        let (_meta, content) = grids[0].decode().unwrap();
        content
    }

    /// Decodes a module grid (quiet zone included, `true` = dark) drawn at `scale` px a module.
    fn decode_grid(full: usize, dark: impl Fn(usize, usize) -> bool, scale: usize) -> String {
        decode_grey(full * scale, |x, y| {
            if dark(x / scale, y / scale) {
                0
            } else {
                255
            }
        })
    }

    /// Decodes a matrix, adding the quiet zone the way the docs tell apps to draw it.
    fn decode_matrix(m: &QrMatrix) -> String {
        let full = m.size as usize + 8;
        decode_grid(full, |x, y| m.dark_at(x as u32, y as u32), 3)
    }

    /// A payload of exactly `len` bytes that needs byte mode (lower-case JSON).
    fn long_json(len: usize) -> String {
        let head = r#"{"ocid":200,"order":"https://api.wallet.example/opencharge/orders/create/"#;
        let tail = r#"","expiresAt":1706500300}"#;
        let fill = len - head.len() - tail.len();
        let id: String = (0..fill)
            .map(|i| char::from(b"0123456789abcdef"[(i * 7 + 3) % 16]))
            .collect();
        let s = format!("{head}{id}{tail}");
        assert_eq!(s.len(), len);
        s
    }

    fn assert_invalid(r: Result<impl std::fmt::Debug, WalletError>) {
        match r {
            Err(WalletError::InvalidInput { .. }) => {}
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn matrix_decodes_to_session_payload() {
        let m = render_qr_matrix(SESSION.to_string()).unwrap();
        assert_eq!(m.modules.len(), (m.size * m.size) as usize);
        assert_eq!((m.size - 17) % 4, 0, "size is 17 + 4 * version");
        // Finder pattern corner: dark top-left module, light separator after 7 modules.
        assert!(m.modules[0]);
        assert!(!m.modules[7]);
        assert_eq!(decode_matrix(&m), SESSION);
    }

    #[test]
    fn matrix_is_deterministic_and_smallest_version() {
        let a = render_qr_matrix(SESSION.to_string()).unwrap();
        let b = render_qr_matrix(SESSION.to_string()).unwrap();
        assert_eq!(a, b);
        // 130 bytes of mostly byte-mode data: version 7 at level M holds 122 bytes, version 8
        // holds 152, so the code is version 8 (49 modules) at most.
        assert!(a.size <= 49, "size {}", a.size);
        let small = render_qr_matrix("opencharge:500".to_string()).unwrap();
        assert_eq!(small.size, 21, "a short payload fits version 1");
        assert_eq!(decode_matrix(&small), "opencharge:500");
    }

    #[test]
    fn long_byte_payload_near_qr_capacity_decodes() {
        // Version 40-M holds 2331 bytes in byte mode; this fills nearly all of it.
        let payload = long_json(2300);
        let m = render_qr_matrix(payload.clone()).unwrap();
        assert_eq!(m.size, 177);
        assert_eq!(decode_matrix(&m), payload);
        let png = render_qr_png(payload.clone(), 2).unwrap();
        let (w, pixels) = decode_png(&png);
        assert_eq!(w, (177 + 8) * 2);
        assert_eq!(decode_grey(w, |x, y| pixels[y * w + x]), payload);
    }

    #[test]
    fn numeric_payload_at_the_byte_limit_decodes() {
        // Exactly MAX_PAYLOAD_BYTES digits: fits thanks to numeric mode (5596 digits in 40-M).
        let payload: String = (0..MAX_PAYLOAD_BYTES)
            .map(|i| char::from(b'0' + (i % 10) as u8))
            .collect();
        let m = render_qr_matrix(payload.clone()).unwrap();
        assert_eq!(decode_matrix(&m), payload);
    }

    #[test]
    fn non_ascii_payload_round_trips_without_kanji_mode() {
        // "あ" is E3 81 82 in UTF-8: E3 81 and 82 E3 are valid Shift JIS Kanji pairs, so the
        // plain optimizer encodes runs of it in Kanji mode, which scanners would turn into
        // Shift JIS mojibake (rqrr copies Kanji bytes through, so it cannot tell).
        let payload =
            "Café ああああああああああああ 日本語のテキストです ✓ 13c8f6878f55327769736d2129b2d9cb";
        let plain: Vec<Segment> =
            Optimizer::new(Parser::new(payload.as_bytes()), Version::Normal(5)).collect();
        assert!(
            plain.iter().any(|s| s.mode == Mode::Kanji),
            "the test payload triggers Kanji mode"
        );
        for number in [1, 5, 9, 10, 26, 27, 40] {
            let version = Version::Normal(number);
            let mut ours = Optimizer::new(
                segments_without_kanji(payload.as_bytes()).into_iter(),
                version,
            );
            assert!(ours.all(|s| s.mode != Mode::Kanji));
        }
        let m = render_qr_matrix(payload.to_string()).unwrap();
        assert_eq!(decode_matrix(&m), payload);
    }

    #[test]
    fn too_long_or_empty_payloads_are_invalid() {
        assert_invalid(render_qr_matrix(String::new()));
        assert_invalid(render_qr_svg(String::new(), 4));
        assert_invalid(render_qr_png(String::new(), 4));
        assert_invalid(render_qr_terminal(String::new()));
        // Over the protocol limit, even though digits would fit in a QR code.
        let digits = "1".repeat(MAX_PAYLOAD_BYTES + 1);
        assert_invalid(render_qr_matrix(digits.clone()));
        assert_invalid(render_qr_svg(digits.clone(), 4));
        assert_invalid(render_qr_png(digits.clone(), 4));
        assert_invalid(render_qr_terminal(digits));
        // Within the protocol limit but more than 40-M holds in byte mode.
        assert_invalid(render_qr_matrix(long_json(2400)));
        assert_invalid(render_qr_matrix(long_json(MAX_PAYLOAD_BYTES)));
    }

    #[test]
    fn module_px_out_of_range_is_invalid() {
        for px in [0, 65, -1, i32::MIN, i32::MAX] {
            assert_invalid(render_qr_svg(SESSION.to_string(), px));
            assert_invalid(render_qr_png(SESSION.to_string(), px));
        }
        assert!(render_qr_svg(SESSION.to_string(), 1).is_ok());
        assert!(render_qr_svg(SESSION.to_string(), 64).is_ok());
        assert!(render_qr_png(SESSION.to_string(), 1).is_ok());
    }

    /// Decodes a PNG, checking it is 8-bit greyscale and square; returns width and pixels.
    fn decode_png(bytes: &[u8]) -> (usize, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        assert_eq!(info.width, info.height);
        let width = info.width as usize;
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!(frame.line_size, width);
        buf.truncate(frame.buffer_size());
        (width, buf)
    }

    #[test]
    fn png_decodes_to_session_payload() {
        let m = render_qr_matrix(SESSION.to_string()).unwrap();
        for module_px in [1, 4, 7] {
            let png = render_qr_png(SESSION.to_string(), module_px).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let (w, pixels) = decode_png(&png);
            assert_eq!(w, ((m.size + 8) * module_px) as usize);
            assert_eq!(pixels.len(), w * w);
            assert!(pixels.iter().all(|&p| p == 0 || p == 255));
            // The quiet zone is light all round.
            let q = 4 * module_px as usize;
            for y in 0..w {
                for x in 0..w {
                    if x < q || y < q || x >= w - q || y >= w - q {
                        assert_eq!(pixels[y * w + x], 255, "quiet zone pixel {x},{y}");
                    }
                }
            }
            // Every pixel matches its module.
            let s = module_px as usize;
            for y in 0..w {
                for x in 0..w {
                    let dark = m.dark_at((x / s) as u32, (y / s) as u32);
                    assert_eq!(pixels[y * w + x] == 0, dark);
                }
            }
            if module_px > 1 {
                assert_eq!(decode_grey(w, |x, y| pixels[y * w + x]), SESSION);
            } else {
                // One pixel a module is too small for rqrr's detector: upscale to decode.
                assert_eq!(
                    decode_grey(w * 3, |x, y| pixels[(y / 3) * w + x / 3]),
                    SESSION
                );
            }
        }
    }

    #[test]
    fn png_at_max_module_px_has_bounded_size() {
        let m = render_qr_matrix(SESSION.to_string()).unwrap();
        let png = render_qr_png(SESSION.to_string(), 64).unwrap();
        let (w, pixels) = decode_png(&png);
        assert_eq!(w, ((m.size + 8) * 64) as usize);
        // Repeated rows compress well: far smaller than the raw pixels.
        assert!(
            png.len() < pixels.len() / 20,
            "{} bytes for {} pixels",
            png.len(),
            pixels.len()
        );
    }

    /// Pulls `name="value"` out of the first tag `tag` of `svg`.
    fn attr<'a>(svg: &'a str, tag: &str, name: &str) -> &'a str {
        let start = svg.find(&format!("<{tag} ")).unwrap();
        let end = start + svg[start..].find('>').unwrap();
        let element = &svg[start..end];
        let key = format!(" {name}=\"");
        let from = element.find(&key).unwrap() + key.len();
        let len = element[from..].find('"').unwrap();
        &element[from..from + len]
    }

    /// Rebuilds the dark-module grid (quiet zone included) from the path data.
    fn grid_from_path(d: &str, full: usize) -> Vec<bool> {
        let mut grid = vec![false; full * full];
        for rect in d.split('z').filter(|r| !r.is_empty()) {
            // Each rectangle is `M{x} {y}h{run}v1h-{run}`.
            let rest = rect.strip_prefix('M').unwrap();
            let (x, rest) = rest.split_once(' ').unwrap();
            let (y, rest) = rest.split_once('h').unwrap();
            let (run, rest) = rest.split_once("v1h-").unwrap();
            assert_eq!(run, rest, "rectangle closes on itself");
            let (x, y, run): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), run.parse().unwrap());
            assert!(run >= 1 && x + run <= full && y < full);
            for cell in &mut grid[y * full + x..y * full + x + run] {
                assert!(!*cell, "rectangles do not overlap");
                *cell = true;
            }
        }
        grid
    }

    #[test]
    fn svg_rebuilds_to_session_payload() {
        let m = render_qr_matrix(SESSION.to_string()).unwrap();
        let full = (m.size + 8) as usize;
        for module_px in [1, 5, 64] {
            let svg = render_qr_svg(SESSION.to_string(), module_px).unwrap();
            // Well-formed enough: one root element, closed, three tags, self-closed children.
            assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" "#));
            assert!(svg.ends_with("/></svg>"));
            assert_eq!(svg.matches('<').count(), 4);
            assert_eq!(svg.matches('>').count(), 4);
            assert_eq!(svg.matches("/>").count(), 2);
            assert_eq!(svg.matches('"').count() % 2, 0);
            let lower = svg.to_lowercase();
            // No scripts, event handler attributes, links or embedded content.
            for banned in [
                "<script",
                " on",
                "href",
                "url(",
                "<image",
                "<foreignobject",
                "javascript:",
                "<!",
            ] {
                assert!(!lower.contains(banned), "{banned} in svg");
            }
            assert_eq!(
                lower.matches("http").count(),
                1,
                "only the SVG namespace URI"
            );

            let px = ((m.size + 8) * module_px).to_string();
            assert_eq!(attr(&svg, "svg", "width"), px);
            assert_eq!(attr(&svg, "svg", "height"), px);
            assert_eq!(attr(&svg, "svg", "viewBox"), format!("0 0 {full} {full}"));
            assert_eq!(attr(&svg, "rect", "fill"), "#fff");
            assert_eq!(attr(&svg, "rect", "width"), full.to_string());
            assert_eq!(attr(&svg, "rect", "height"), full.to_string());
            assert_eq!(attr(&svg, "path", "fill"), "#000");

            let grid = grid_from_path(attr(&svg, "path", "d"), full);
            for y in 0..full {
                for x in 0..full {
                    assert_eq!(
                        grid[y * full + x],
                        m.dark_at(x as u32, y as u32),
                        "module {x},{y}"
                    );
                }
            }
            assert_eq!(decode_grid(full, |x, y| grid[y * full + x], 3), SESSION);
        }
    }

    #[test]
    fn terminal_rebuilds_to_session_payload() {
        let m = render_qr_matrix(SESSION.to_string()).unwrap();
        let full = (m.size + 8) as usize;
        let text = render_qr_terminal(SESSION.to_string()).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), full.div_ceil(2));
        assert_eq!(text.matches('\n').count(), lines.len());
        // Light modules drawn, dark left blank: rebuild the dark grid.
        let mut grid = vec![false; full * full];
        for (i, line) in lines.iter().enumerate() {
            let chars: Vec<char> = line.chars().collect();
            assert_eq!(chars.len(), full, "line {i} width");
            for (x, c) in chars.into_iter().enumerate() {
                let (upper_light, lower_light) = match c {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                grid[2 * i * full + x] = !upper_light;
                if 2 * i + 1 < full {
                    grid[(2 * i + 1) * full + x] = !lower_light;
                } else {
                    assert!(!lower_light, "nothing drawn below the last row");
                }
            }
        }
        // The first and last lines are quiet zone: all light.
        assert!(lines[0].chars().all(|c| c == '\u{2588}'));
        assert!(lines[lines.len() - 1].chars().all(|c| c == '\u{2580}'));
        for y in 0..full {
            for x in 0..full {
                assert_eq!(
                    grid[y * full + x],
                    m.dark_at(x as u32, y as u32),
                    "module {x},{y}"
                );
            }
        }
        assert_eq!(decode_grid(full, |x, y| grid[y * full + x], 3), SESSION);
    }
}
