//! Signing a person in: a password and, when the user has enrolled TOTP, a one-time code. This is
//! the one procedure behind the password grant and the hosted login page, so both get the same
//! throttle and lockout, the same timing and the same audit rows.
//!
//! Every refusal is the same [`LoginError::Refused`]: nothing tells a wrong password from an
//! unknown user, a disabled one, another tenant's, or a missing or wrong code. The checks are
//! split in steps only so that the login page can ask for the code on a page of its own; the
//! password grant takes both in one call, so its answer never confirms a password. The login
//! page's code step does show that the password was accepted (as every provider that asks for
//! the code on its own page does), so until the code succeeds that step counts on the throttle
//! as a failed attempt ([`Authenticated::awaiting_code`]): learning passwords through it costs
//! what guessing them costs.

use crate::audit::action::Action;
use crate::audit::batch::BatchError;
use crate::audit::{Event, Origin};
use crate::identity::passwords::HashError;
use crate::identity::throttle::Attempt;
use crate::identity::users::{self, Credentials};
use crate::keys::secrets::SecretError;
use crate::oauth::clients::Client;
use crate::state::AppState;
use serde_json::json;
use sqlx::{Any, Transaction};

/// Longest username or password looked at; longer ones are refused before any work.
const MAX_USERNAME: usize = 256;
const MAX_PASSWORD: usize = 1024;

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The credentials are not accepted (whichever of them is wrong).
    #[error("invalid username, password or one-time code")]
    Refused,
    /// Too many attempts: retry after this many seconds.
    #[error("too many attempts, retry after {0} s")]
    Throttled(i64),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The password could not be checked.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The TOTP secret could not be opened.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The audit row could not be written.
    #[error(transparent)]
    Audit(#[from] BatchError),
}

/// A user whose password was accepted, holding the account's login turn until it is dropped.
#[derive(Debug)]
pub struct Authenticated<'a> {
    /// The user and their stored credentials.
    pub record: Credentials,
    /// How the user authenticated (RFC 8176 values): `pwd`, then `otp`.
    pub amr: Vec<String>,
    totp_step: Option<i64>,
    rehash: Option<String>,
    attempt: Attempt<'a>,
}

/// What every step needs.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// The service.
    pub state: &'a AppState,
    /// Where the attempt comes from.
    pub origin: &'a Origin,
    /// The client the user signs in to.
    pub client: &'a Client,
}

impl<'a> Login<'a> {
    /// Checks `username` and `password`. The code, if the user has TOTP, is still to be given
    /// to [`Authenticated::second_factor`].
    pub async fn password(
        self,
        username: &str,
        password: &str,
    ) -> Result<Authenticated<'a>, LoginError> {
        if username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
            return Err(LoginError::Refused);
        }
        let now = crate::now();
        let attempt = self.start(username, now).await?;
        let record = users::credentials(&self.state.db().pool, username).await?;
        let verified = self
            .state
            .hasher()
            .verify(record.as_ref().map(|r| r.password_hash.as_str()), password)
            .await?;
        match record {
            Some(record) if verified.matches && self.admits(&record) => Ok(Authenticated {
                record,
                amr: vec!["pwd".to_owned()],
                totp_step: None,
                rehash: verified.rehash,
                attempt,
            }),
            other => {
                // The same code-cap read as a right password with a wrong code, for equal timing.
                let _ = attempt.otp_allowed(now).await;
                self.refuse(attempt, other.as_ref(), now).await
            }
        }
    }

    /// Takes up a sign-in whose password was accepted moments ago (the login page's code step
    /// carries that fact sealed): a new attempt on the account, which must still be enabled and
    /// admitted by the client.
    pub async fn resume(self, username: &str) -> Result<Authenticated<'a>, LoginError> {
        let now = crate::now();
        let attempt = self.start(username, now).await?;
        match users::credentials(&self.state.db().pool, username).await? {
            Some(record) if self.admits(&record) => Ok(Authenticated {
                record,
                amr: vec!["pwd".to_owned()],
                totp_step: None,
                rehash: None,
                attempt,
            }),
            other => self.refuse(attempt, other.as_ref(), now).await,
        }
    }

    async fn start(&self, username: &str, now: i64) -> Result<Attempt<'a>, LoginError> {
        match self
            .state
            .throttle()
            .start(username, &self.origin.client_ip, now)
            .await
        {
            Ok(attempt) => Ok(attempt),
            Err(retry_after) => {
                self.state.metrics().throttled();
                Err(LoginError::Throttled(retry_after))
            }
        }
    }

    /// A tenant's client signs in only that tenant's users, and nobody signs in disabled.
    fn admits(&self, record: &Credentials) -> bool {
        !record.user.disabled && self.client.admits(record.user.tenant.as_deref())
    }

    async fn refuse<T>(
        &self,
        attempt: Attempt<'_>,
        record: Option<&Credentials>,
        now: i64,
    ) -> Result<T, LoginError> {
        attempt.failed(now).await;
        self.state.metrics().login_failed();
        let target = record
            .map(|r| format!("user:{}", r.user.user_id))
            .unwrap_or_else(|| "unknown".into());
        self.state
            .audit()
            .record(
                self.origin,
                &Event {
                    actor: "anonymous",
                    action: Action::LoginFailed,
                    target: &target,
                    outcome: "failure",
                    detail: json!({"client_id": self.client.client_id}),
                },
            )
            .await?;
        Err(LoginError::Refused)
    }
}

impl Authenticated<'_> {
    /// Whether the user has TOTP, so that a code must follow the password.
    pub fn needs_code(&self) -> bool {
        self.record.totp_secret.is_some()
    }

    /// The password was accepted and the code will be asked for on a page of its own: the
    /// attempt counts as failed until a code succeeds (whose success forgets it).
    pub async fn awaiting_code(self) {
        self.attempt.failed(crate::now()).await;
    }

    /// `user:<id>`, as tokens and audit rows name the user.
    pub fn subject(&self) -> String {
        format!("user:{}", self.record.user.user_id)
    }

    /// Checks the one-time code when the user has TOTP (a missing, wrong or rate-capped code is
    /// refused as a wrong password is); nothing to do otherwise.
    pub async fn second_factor(
        &mut self,
        login: Login<'_>,
        otp: Option<&str>,
    ) -> Result<(), LoginError> {
        let Some(sealed) = &self.record.totp_secret else {
            return Ok(());
        };
        let user_id = &self.record.user.user_id;
        let now = crate::now();
        let secret = login
            .state
            .master()
            .open(&format!("totp:{user_id}"), sealed)?;
        let (step, reason) = match otp {
            None => (None, "missing"),
            Some(_) if !self.attempt.otp_allowed(now).await => (None, "too_many_codes"),
            Some(otp) => (
                crate::identity::totp::verify(&secret, otp, now, self.record.totp_last_step),
                "wrong",
            ),
        };
        let Some(step) = step else {
            self.attempt.failed(now).await;
            if reason == "wrong" {
                self.attempt.otp_failed(now).await;
            }
            login.state.metrics().login_failed();
            let subject = self.subject();
            login
                .state
                .audit()
                .record(
                    login.origin,
                    &Event {
                        actor: &subject,
                        action: Action::MfaFailed,
                        target: &subject,
                        outcome: "failure",
                        detail: json!({"client_id": login.client.client_id, "code": reason}),
                    },
                )
                .await?;
            return Err(LoginError::Refused);
        };
        self.totp_step = Some(step);
        self.amr.push("otp".to_owned());
        Ok(())
    }

    /// Makes the sign-in stick inside the transaction that issues what it grants: the code's
    /// step is used up (a code works once), the account must still be enabled (it may have been
    /// disabled while the password was checked), and an outdated password hash is replaced.
    pub async fn confirm(&self, tx: &mut Transaction<'static, Any>) -> Result<(), LoginError> {
        let user = &self.record.user;
        if let Some(step) = self.totp_step {
            if !users::claim_totp_step(&mut **tx, &user.user_id, step).await? {
                return Err(LoginError::Refused);
            }
        }
        if !users::is_enabled(tx, &user.user_id).await? {
            return Err(LoginError::Refused);
        }
        if let Some(rehash) = &self.rehash {
            users::rehash_password(tx, &user.user_id, &self.record.password_hash, rehash).await?;
        }
        Ok(())
    }

    /// Records the success on the throttle once the transaction committed.
    pub async fn succeeded(self) {
        self.attempt.succeeded(crate::now()).await;
    }
}
