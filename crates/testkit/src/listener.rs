//! A recording `WalletListener`: everything the core tells the app goes into a channel, and
//! an [`Inbox`] waits for what a test expects.

use std::sync::Arc;

use opencharge_wallet::{
    ConnectionState, PaymentPrompt, PaymentStatusUpdate, WalletError, WalletListener,
};
use tokio::sync::mpsc;

use crate::WAIT;

/// What the core told the app.
// A prompt (with a transfer's recipient) is far larger than the other calls; boxing it would
// only make every test's `Heard::Prompt(p)` pattern clumsier for a value that lives in a list.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// `on_prompt`: a verified payment prompt.
    Prompt(PaymentPrompt),
    /// `on_prompt_rejected`: the prompt id and the reason.
    Rejected(String, String),
    /// `on_payment_status`.
    Status(PaymentStatusUpdate),
    /// `on_connection_state`.
    Connection(ConnectionState),
}

/// A listener that forwards every call to a channel, optionally failing or panicking.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Heard>,
    /// `on_prompt` answers an error (after recording the prompt).
    pub fail_prompts: bool,
    /// `on_prompt` panics (after recording the prompt).
    pub panic_prompts: bool,
}

impl Recorder {
    /// A recorder that accepts everything, and its inbox.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Arc<Recorder>, Inbox) {
        Recorder::with(false, false)
    }

    /// A recorder whose `on_prompt` fails or panics as asked, and its inbox.
    pub fn with(fail_prompts: bool, panic_prompts: bool) -> (Arc<Recorder>, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Recorder {
                tx,
                fail_prompts,
                panic_prompts,
            }),
            Inbox {
                rx,
                seen: Vec::new(),
            },
        )
    }
}

impl WalletListener for Recorder {
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Prompt(prompt));
        if self.panic_prompts {
            panic!("listener panics on purpose");
        }
        if self.fail_prompts {
            return Err(WalletError::Internal {
                reason: "listener fails on purpose".into(),
            });
        }
        Ok(())
    }

    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Rejected(prompt_id, reason));
        Ok(())
    }

    fn on_payment_status(&self, update: PaymentStatusUpdate) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Status(update));
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Connection(state));
        Ok(())
    }
}

/// The receiving end of a [`Recorder`], with waits for tests: a wait that sees nothing within
/// [`WAIT`] panics with everything heard so far.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Heard>,
    /// Everything received so far, in order.
    pub seen: Vec<Heard>,
}

impl Inbox {
    /// Waits for the first call matching `pick`, keeping everything seen.
    pub async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&Heard) -> Option<T>) -> T {
        if let Some(found) = self.seen.iter().find_map(&pick) {
            return found;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let heard = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; heard {:?}", self.seen))
                .expect("listener channel closed");
            self.seen.push(heard.clone());
            if let Some(found) = pick(&heard) {
                return found;
            }
        }
    }

    /// Waits for the prompt with this id.
    pub async fn prompt(&mut self, id: &str) -> PaymentPrompt {
        self.wait_for("a prompt", |h| match h {
            Heard::Prompt(p) if p.prompt_id == id => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until the stream is connected.
    pub async fn connected(&mut self) {
        self.wait_for("connected", |h| {
            matches!(h, Heard::Connection(ConnectionState::Connected)).then_some(())
        })
        .await
    }

    /// Drains what arrived so far without waiting.
    pub fn drain(&mut self) -> &[Heard] {
        while let Ok(heard) = self.rx.try_recv() {
            self.seen.push(heard);
        }
        &self.seen
    }
}
