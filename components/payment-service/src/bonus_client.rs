//! Takes and gives back a payment's bonuses at bonus-service: `POST
//! {bonus_service_url}/api/bonuses/payment-debits` with a command signed under the events'
//! key (service chaining in one host). No user token goes along: the signature is the
//! credential, and the payment decided whose bonuses they are.

use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use spin_sdk::http::Method;

use crate::domain::{BonusAction, BonusCommand};

pub const BONUS_SERVICE: Service = Service {
    name: "bonus-service",
    failed: "bonus_service_failed",
    unavailable: "bonus_service_unavailable",
    timeout: "bonus_service_timeout",
};

const PATH: &str = "/api/bonuses/payment-debits";

/// What bonus-service did with a payment's bonuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Debited, or reversed (given back, or never to be taken), as asked; also when it had
    /// been done before.
    Done,
    /// A debit: the balance is smaller.
    Insufficient,
    /// A debit: the payment's bonuses were reversed before, so it takes none.
    Reversed,
    /// A reversal: a newer attempt at the payment holds the debit.
    TakenOver,
}

/// Sends `command`; an answer that is none of the [`Outcome`]s, or none at all, is an error
/// (and leaves it unknown whether the command was carried out).
pub async fn send(
    bonuses: &Upstream,
    key: &events::SigningKey,
    command: &BonusCommand,
) -> Result<Outcome, ApiError> {
    let reply = bonuses
        .send(Method::Post, PATH, None, Some(command.sealed(key)))
        .await?;
    interpret(command.action, &reply)
}

pub fn interpret(action: BonusAction, reply: &Reply) -> Result<Outcome, ApiError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        state: String,
    }
    let expected = match action {
        BonusAction::Debit => "debited",
        BonusAction::Reverse => "reversed",
    };
    match (reply.status, reply.error_code().as_deref(), action) {
        (200, _, _) => {
            let answer = reply.json::<Answer>()?;
            if answer.state == expected {
                Ok(Outcome::Done)
            } else {
                Err(reply.failed(format!("answered state {} to {action:?}", answer.state)))
            }
        }
        (409, Some("insufficient_bonuses"), BonusAction::Debit) => Ok(Outcome::Insufficient),
        (409, Some("bonus_debit_reversed"), BonusAction::Debit) => Ok(Outcome::Reversed),
        (409, Some("bonus_debit_taken_over"), BonusAction::Reverse) => Ok(Outcome::TakenOver),
        _ => Err(reply.unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: BONUS_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn conflict(code: &str) -> Reply {
        reply(
            409,
            &format!(r#"{{"error":{{"code":"{code}","message":"no"}}}}"#),
        )
    }

    #[test]
    fn answers_map_to_outcomes_and_the_rest_to_errors() {
        use BonusAction::{Debit, Reverse};
        let debited = reply(200, r#"{"state":"debited","duplicate":false}"#);
        let reversed = reply(200, r#"{"state":"reversed","duplicate":true}"#);
        assert_eq!(interpret(Debit, &debited).unwrap(), Outcome::Done);
        assert_eq!(interpret(Reverse, &reversed).unwrap(), Outcome::Done);
        assert_eq!(
            interpret(Debit, &conflict("insufficient_bonuses")).unwrap(),
            Outcome::Insufficient
        );
        assert_eq!(
            interpret(Debit, &conflict("bonus_debit_reversed")).unwrap(),
            Outcome::Reversed
        );
        assert_eq!(
            interpret(Reverse, &conflict("bonus_debit_taken_over")).unwrap(),
            Outcome::TakenOver
        );
        for (action, reply) in [
            (Debit, reversed.clone()),
            (Reverse, debited.clone()),
            (Reverse, conflict("insufficient_bonuses")),
            (Debit, reply(403, "{}")),
            (Debit, reply(500, "")),
        ] {
            let error = interpret(action, &reply).unwrap_err();
            assert_eq!((error.status, error.code), (502, "bonus_service_failed"));
        }
        let error = interpret(Debit, &reply(503, "")).unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (503, "bonus_service_unavailable")
        );
    }
}
