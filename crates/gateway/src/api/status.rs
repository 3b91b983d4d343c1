//! The status a partner, a device or the checkout page sees for a gateway session, shared by
//! the Opencharge endpoints and the hosted checkout page.

use opencharge_protocol::types::OrderStatus;

use crate::store::{Session, SessionStatus};

/// The status a partner sees: unpaid sessions past their expiry read as expired, a declined
/// one as cancelled.
pub fn public_status(session: &Session, now: i64) -> OrderStatus {
    match session.status {
        SessionStatus::Paid => OrderStatus::Paid,
        SessionStatus::Declined => OrderStatus::Cancelled,
        SessionStatus::Expired => OrderStatus::Expired,
        SessionStatus::Pending | SessionStatus::OrderReceived if session.expires_at <= now => {
            OrderStatus::Expired
        }
        SessionStatus::Pending | SessionStatus::OrderReceived => OrderStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Flow;

    #[test]
    fn public_status_mapping() {
        let mut s = Session {
            status: SessionStatus::OrderReceived,
            ..Session::pending("s".into(), Flow::WalletQr, None, 0, 100, "t".into())
        };
        assert_eq!(public_status(&s, 50), OrderStatus::Pending);
        assert_eq!(public_status(&s, 100), OrderStatus::Expired);
        s.status = SessionStatus::Declined;
        assert_eq!(public_status(&s, 50), OrderStatus::Cancelled);
        s.status = SessionStatus::Paid;
        assert_eq!(public_status(&s, 500), OrderStatus::Paid);
    }
}
