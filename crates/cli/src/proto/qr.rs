//! `proto qr`: renders the payload text on stdin as a QR code with the wallet core's renderers
//! (the same SVG, PNG and terminal output the apps get).

use std::path::{Path, PathBuf};

use opencharge_wallet::qr::{render_qr_png, render_qr_svg, render_qr_terminal, MAX_MODULE_PX};

use super::{read_stdin, usage, write_stdout, Failure};

/// Arguments of `proto qr`.
#[derive(Debug, clap::Args)]
pub(super) struct QrArgs {
    #[command(flatten)]
    output: QrOutput,
    /// Pixels per module for --svg and --png (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(i32).range(1..=i64::from(MAX_MODULE_PX)))]
    module_px: i32,
}

/// Where the QR goes: exactly one of the three.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct QrOutput {
    /// Write an SVG document to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write a PNG image (8-bit greyscale) to FILE.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Print the QR on stdout with Unicode half blocks.
    #[arg(long)]
    terminal: bool,
}

/// `proto qr`.
pub(super) fn qr(args: &QrArgs) -> Result<(), Failure> {
    let bytes = read_stdin()?;
    let text = String::from_utf8(bytes).map_err(|_| usage("the payload on stdin is not UTF-8"))?;
    let payload = text.trim_end_matches(['\n', '\r']).to_string();
    let render_err = |e: opencharge_wallet::WalletError| usage(e.to_string());
    match (&args.output.svg, &args.output.png, args.output.terminal) {
        (Some(path), _, _) => {
            let svg = render_qr_svg(payload, args.module_px).map_err(render_err)?;
            write_file(path, svg.as_bytes())
        }
        (None, Some(path), _) => {
            let png = render_qr_png(payload, args.module_px).map_err(render_err)?;
            write_file(path, &png)
        }
        (None, None, true) => {
            let text = render_qr_terminal(payload).map_err(render_err)?;
            write_stdout(text.as_bytes())
        }
        (None, None, false) => Err(usage("give one of --svg FILE, --png FILE, --terminal")),
    }
}

/// Writes `bytes` to `path`, replacing the file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}
