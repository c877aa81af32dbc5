//! What every operation of the service layer is given, and how one fails.
//!
//! An operation (create a user, rotate a client's secret, publish policies, …) is one function in
//! its domain's `service` module ([`crate::identity::service`], [`crate::oauth::service`],
//! [`crate::keys::service`], [`crate::policy::service`]). It owns the whole change: the
//! transaction, the authorization check against the acting [`Actor`], the store calls, the audit
//! row, the bundle bump and the republish after the commit. The HTTP admin handlers and the CLI
//! only turn their input into a call and the result into their output, so what an operation does
//! is written once.

use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::identity::authority::{Authority, Grants, Refusal};
use crate::identity::passwords::Hasher;
use crate::infra::config::Config;
use crate::keys::secrets::MasterKey;
use crate::state::AppState;
use serde_json::Value;
use sqlx::{Any, AnyPool, Transaction};

/// Who performs an operation: an administrator with a verified token, or the operator at the
/// command line.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Its subject (`user:<id>`, `client:<id>`, `cli`), recorded as the actor of audited changes.
    pub subject: String,
    /// What it may grant and act on.
    pub authority: Authority,
}

impl Actor {
    /// The operator running the `portcullis` CLI: whoever can open the store and holds the
    /// master key already holds everything, so it acts installation-wide.
    pub fn operator() -> Self {
        Actor {
            subject: "cli".into(),
            authority: Authority::installation(),
        }
    }
}

/// Where a committed change goes next.
#[derive(Debug, Clone, Copy)]
enum Publisher<'a> {
    /// A running control plane: republish its bundle now.
    Served(&'a AppState),
    /// The CLI: running replicas pick the change up from the bundle version in the database.
    Offline,
}

/// Everything an operation needs: the store and its keys, the configuration, the actor and where
/// the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The database.
    pub store: &'a AnyPool,
    /// The master key.
    pub master: &'a MasterKey,
    /// The configuration.
    pub config: &'a Config,
    /// The password hasher.
    pub hasher: &'a Hasher,
    /// Who acts.
    pub actor: &'a Actor,
    /// Where the request came from, for the audit row.
    pub origin: &'a Origin,
    publisher: Publisher<'a>,
}

impl<'a> Context<'a> {
    /// An operation inside the running control plane.
    pub fn served(state: &'a AppState, actor: &'a Actor, origin: &'a Origin) -> Self {
        Context {
            store: &state.db().pool,
            master: state.master(),
            config: state.config(),
            hasher: state.hasher(),
            actor,
            origin,
            publisher: Publisher::Served(state),
        }
    }

    /// An operation from the command line, without a running server.
    pub fn offline(
        store: &'a AnyPool,
        master: &'a MasterKey,
        config: &'a Config,
        hasher: &'a Hasher,
        actor: &'a Actor,
        origin: &'a Origin,
    ) -> Self {
        Context {
            store,
            master,
            config,
            hasher,
            actor,
            origin,
            publisher: Publisher::Offline,
        }
    }

    /// Opens the operation's transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, ServiceError> {
        Ok(self.store.begin().await?)
    }

    /// Whether the actor sees principals of `tenant`.
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        self.actor.authority.sees(tenant)
    }

    /// Refuses unless the actor may grant, or act on a principal holding, `grants`.
    pub fn covers(&self, grants: &Grants<'_>) -> Result<(), ServiceError> {
        Ok(self.actor.authority.covers(grants)?)
    }

    /// Refuses unless the actor may give a principal holding `current` what it holds after a
    /// change of `scopes` (space separated), `roles` and `tenant` (empty clears it); `None`
    /// keeps a part.
    pub fn covers_change(
        &self,
        current: &Grants<'_>,
        scopes: Option<&str>,
        roles: Option<&[String]>,
        tenant: Option<&str>,
    ) -> Result<(), ServiceError> {
        let scopes = match scopes {
            Some(text) => scope_list(text)?,
            None => current.scopes.to_vec(),
        };
        self.covers(&Grants {
            scopes: &scopes,
            roles: roles.unwrap_or(current.roles),
            tenant: match tenant {
                None => current.tenant,
                Some("") => None,
                Some(tenant) => Some(tenant),
            },
        })
    }

    /// The tenant a new principal gets: the one asked for, else the actor's own.
    pub fn new_tenant(&self, asked: Option<&str>) -> Option<String> {
        match asked {
            Some("") | None => self.actor.authority.tenant().map(str::to_owned),
            Some(tenant) => Some(tenant.to_owned()),
        }
    }

    /// Appends the audit row of a successful change by the actor and commits `tx` with it.
    pub async fn commit(
        &self,
        mut tx: Transaction<'static, Any>,
        action: Action,
        target: &str,
        detail: Value,
    ) -> Result<(), ServiceError> {
        let event = Event {
            actor: &self.actor.subject,
            action,
            target,
            outcome: "success",
            detail,
        };
        audit::append(&mut tx, self.master, self.origin, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Context::commit`], then the bundle moved: the running control plane republishes it
    /// (and wakes the other replicas) before the operation answers.
    pub async fn commit_and_publish(
        &self,
        tx: Transaction<'static, Any>,
        action: Action,
        target: &str,
        detail: Value,
    ) -> Result<(), ServiceError> {
        self.commit(tx, action, target, detail).await?;
        if let Publisher::Served(state) = self.publisher {
            state.republish().await?;
        }
        Ok(())
    }

    /// The version of the bundle the running control plane serves (the database's on the CLI).
    pub async fn bundle_version(&self) -> Result<i64, ServiceError> {
        Ok(match self.publisher {
            Publisher::Served(state) => state.published().version,
            Publisher::Offline => crate::bundle::current_version(self.store).await?,
        })
    }
}

/// A scope list as it will be stored, for the authority check before the store parses it.
pub fn scope_list(text: &str) -> Result<Vec<String>, ServiceError> {
    crate::oauth::scopes::parse(text).map_err(|e| ServiceError::Invalid(e.to_string()))
}

/// Why an operation failed. The HTTP mapping is in [`crate::http::error`]; the CLI prints the
/// message.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The target does not exist, or is outside the actor's tenant.
    #[error("not found")]
    NotFound,
    /// The input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The operation conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The actor may not grant or act on this.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A user could not be stored.
    #[error(transparent)]
    User(#[from] crate::identity::users::UserError),
    /// A client could not be stored.
    #[error(transparent)]
    Client(#[from] crate::oauth::clients::ClientError),
    /// A session could not be changed.
    #[error(transparent)]
    Session(#[from] crate::identity::sessions::SessionError),
    /// A key could not be rotated or read.
    #[error(transparent)]
    Key(#[from] crate::keys::signing::KeyError),
    /// A policy set was refused or could not be stored.
    #[error(transparent)]
    Policy(#[from] crate::policy::set::PolicyStoreError),
    /// The password could not be hashed.
    #[error(transparent)]
    Hash(#[from] crate::identity::passwords::HashError),
    /// The bundle could not be republished after the change.
    #[error(transparent)]
    Publish(#[from] crate::bundle::AssembleError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
