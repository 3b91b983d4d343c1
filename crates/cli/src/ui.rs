//! Terminal input and output shared by the subcommands: log set-up, steps shown with a spinner
//! while they run and a check mark, detail and timing when they finish, durations in words, and
//! the y/n question before a payment.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use opencharge_wallet::PaymentPrompt;

/// Sends `tracing` logs to stderr as text (colours only on a terminal), filtered by `RUST_LOG`
/// or else by `default` (e.g. "warn").
pub fn init_logs(default: &str) {
    opencharge_gateway::ops::logging::init(LogFormat::Text, default);
}

pub use opencharge_gateway::ops::logging::LogFormat;

/// A spinner on stderr with `message`; hidden when stderr is not a terminal (CI logs stay clean).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("  {spinner} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `12 ms`, `1.24 s`: a duration as people read it.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// One verified step of a longer run, printed as `  ✓ label: detail (time)` or
/// `  ✗ label: error (time)`.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// What the step did.
    pub label: String,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether it was verified.
    pub ok: bool,
}

/// Runs `work` under a spinner labelled `label`; on success prints a check mark with the detail
/// `describe` gives and the time taken, on failure a cross with the error. Both outcomes are
/// appended to `log`.
pub async fn step<T, F, D>(
    log: &mut Vec<StepResult>,
    label: &str,
    work: F,
    describe: impl FnOnce(&T) -> D,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
    D: Display,
{
    let bar = spinner(label.to_string());
    let started = Instant::now();
    let outcome = work.await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    match &outcome {
        Ok(value) => println!(
            "  \u{2713} {label}: {} ({})",
            describe(value),
            duration(elapsed)
        ),
        Err(e) => println!("  \u{2717} {label}: {e:#} ({})", duration(elapsed)),
    }
    log.push(StepResult {
        label: label.to_string(),
        elapsed,
        ok: outcome.is_ok(),
    });
    outcome
}

/// Asks on the terminal, indented by `pad` spaces, whether to pay `prompt`; anything but
/// y/yes (or end of input) is no.
pub async fn ask_to_pay(prompt: &PaymentPrompt, pad: usize) -> anyhow::Result<bool> {
    print!(
        "{}Pay {} {} to {}? [y/N] ",
        " ".repeat(pad),
        prompt.total.amount,
        prompt.total.currency,
        prompt.merchant_name.as_deref().unwrap_or("this merchant")
    );
    std::io::stdout().flush().ok();
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .context("reading the answer")?
    .context("reading the answer")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Indents every line of `block` by `pad` spaces (QR codes, item lists).
pub fn indent(block: &str, pad: usize) -> String {
    let prefix = " ".repeat(pad);
    block
        .lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(1_240)), "1.24 s");
    }

    #[test]
    fn indent_pads_each_line() {
        assert_eq!(indent("a\nb", 2), "  a\n  b");
    }

    #[tokio::test]
    async fn steps_record_success_and_failure() {
        let mut log = Vec::new();
        let ok = step(&mut log, "adds", async { Ok(2 + 2) }, |v| format!("{v}")).await;
        assert_eq!(ok.unwrap(), 4);
        let err: anyhow::Result<u8> = step(
            &mut log,
            "fails",
            async { Err(anyhow::anyhow!("boom")) },
            |v| format!("{v}"),
        )
        .await;
        assert!(err.is_err());
        assert_eq!(log.len(), 2);
        assert!(log[0].ok);
        assert!(!log[1].ok);
    }
}
