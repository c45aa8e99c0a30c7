//! Opening what a command needs: the configuration, the state store, the master key, and for a
//! connection its Intacct and Power BI clients built from the sealed credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use ml_clock::SharedClock;
use ml_intacct::{IntacctClient, IntacctSettings};
use ml_powerbi::{ClientCredential, Cloud, PowerBiClient, PowerBiSettings, PushLimits};
use ml_store::crypto::{self, MasterKey};
use ml_store::{Store, StoreLocation};

use crate::config::{Config, ConnectionConfig};
use crate::destination::powerbi::PushDataset;
use crate::pipeline::{Connection, Context};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] ml_store::StoreError),
    #[error(transparent)]
    Crypto(#[from] ml_store::crypto::CryptoError),
    #[error(transparent)]
    Intacct(Box<ml_intacct::IntacctError>),
    #[error(transparent)]
    PowerBi(Box<ml_powerbi::PowerBiError>),
    #[error(
        "no {system} credentials are stored for connection {connection:?}: run `ml-connector credentials set {system} --connection {connection}`"
    )]
    MissingCredentials {
        system: &'static str,
        connection: String,
    },
    #[error(
        "the stored {system} credentials of connection {connection:?} are unreadable ({why}); store them again with `ml-connector credentials set {system}`"
    )]
    BadCredentials {
        system: &'static str,
        connection: String,
        why: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(
        "no connection has a `schedule`; add one (e.g. schedule = \"0 2 * * *\") or use `ml-connector sync`"
    )]
    NothingScheduled,
    /// `run` at start-up: every scheduled connection's credentials were refused, so nothing could
    /// ever run until a person stores the right ones (exit code 4).
    #[error("{0}")]
    AllRefused(String),
}

impl From<ml_intacct::IntacctError> for AppError {
    fn from(e: ml_intacct::IntacctError) -> Self {
        AppError::Intacct(Box::new(e))
    }
}

impl From<ml_powerbi::PowerBiError> for AppError {
    fn from(e: ml_powerbi::PowerBiError) -> Self {
        AppError::PowerBi(Box::new(e))
    }
}

/// What `credentials set intacct` seals: both passwords.
#[derive(Serialize, Deserialize)]
pub struct IntacctSecrets {
    pub sender_password: String,
    pub user_password: String,
}

/// What `credentials set powerbi` seals: a client secret or a certificate with its key.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PowerBiSecrets {
    ClientSecret {
        client_secret: String,
    },
    Certificate {
        certificate_pem: String,
        private_key_pem: String,
    },
}

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// The one time source of every connection opened from here.
    pub clock: SharedClock,
}

pub fn key_file_path(config: &Config) -> PathBuf {
    config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"))
}

pub fn store_location(config: &Config) -> StoreLocation {
    match &config.database_url {
        Some(url) => StoreLocation::Postgres(url.clone()),
        None => StoreLocation::Sqlite(config.data_dir.join("state.sqlite")),
    }
}

impl App {
    pub async fn open(config_path: &Path) -> Result<App, AppError> {
        let config = Config::load(config_path)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            AppError::Usage(format!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let clock = ml_clock::system();
        let store = ml_store::open_with_clock(&store_location(&config), clock.clone()).await?;
        Ok(App {
            config,
            store,
            clock,
        })
    }

    /// The master key: `ML_CONNECTOR_MASTER_KEY`, else the key file.
    pub fn master_key(&self) -> Result<MasterKey, AppError> {
        Ok(MasterKey::load(&key_file_path(&self.config))?)
    }

    pub async fn connection(&self, name: Option<&str>) -> Result<Connection, AppError> {
        let cfg = self
            .config
            .connection(name)
            .map_err(AppError::Usage)?
            .clone();
        self.connect(cfg, &self.master_key()?).await
    }

    /// Builds a configured connection with the file-wide settings (audit retention) applied.
    pub async fn connect(
        &self,
        cfg: ConnectionConfig,
        key: &MasterKey,
    ) -> Result<Connection, AppError> {
        let mut conn = connect(cfg, self.store.clone(), key, self.clock.clone()).await?;
        conn.ctx.audit_retention = self.config.audit_retention;
        Ok(conn)
    }
}

pub async fn seal_json<T: Serialize>(
    store: &dyn Store,
    key: &MasterKey,
    connection: &str,
    system: &str,
    secrets: &T,
    public: serde_json::Value,
) -> Result<(), AppError> {
    let plain = SecretString::from(serde_json::to_string(secrets).expect("secrets serialise"));
    let sealed = crypto::seal(key, &crypto::credential_name(connection, system), &plain)?;
    store.ensure_connection(connection).await?;
    store
        .put_credential(connection, system, sealed, public)
        .await?;
    Ok(())
}

async fn unseal<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    key: &MasterKey,
    connection: &str,
    system: &'static str,
) -> Result<T, AppError> {
    let stored = store
        .get_credential(connection, system)
        .await?
        .ok_or_else(|| AppError::MissingCredentials {
            system,
            connection: connection.to_string(),
        })?;
    let plain = crypto::open(
        key,
        &crypto::credential_name(connection, system),
        &stored.sealed,
    )?;
    serde_json::from_str(plain.expose_secret()).map_err(|e| AppError::BadCredentials {
        system,
        connection: connection.to_string(),
        why: e.to_string(),
    })
}

pub fn intacct_settings(cfg: &ConnectionConfig, secrets: IntacctSecrets) -> IntacctSettings {
    let i = &cfg.intacct;
    let mut s = IntacctSettings::new(
        i.sender_id.clone(),
        SecretString::from(secrets.sender_password),
        i.company_id.clone(),
        i.user_id.clone(),
        SecretString::from(secrets.user_password),
    );
    if let Some(endpoint) = &i.endpoint {
        s.endpoint = endpoint.clone();
    }
    s.entity = i.entity.clone();
    s.allow_loopback_http = i.allow_loopback_http;
    s.max_concurrent_requests = i.max_concurrent_requests;
    s.page_size = i.page_size;
    s.request_timeout = i.request_timeout;
    s.session_max_age = i.session_max_age;
    s
}

pub fn powerbi_settings(
    cfg: &ConnectionConfig,
    secrets: PowerBiSecrets,
) -> Result<PowerBiSettings, AppError> {
    let p = &cfg.powerbi;
    let cloud: Cloud = p
        .cloud
        .parse()
        .map_err(|_| AppError::Usage(format!("unknown Power BI cloud {:?}", p.cloud)))?;
    let credential = match secrets {
        PowerBiSecrets::ClientSecret { client_secret } => {
            ClientCredential::Secret(SecretString::from(client_secret))
        }
        PowerBiSecrets::Certificate {
            certificate_pem,
            private_key_pem,
        } => ClientCredential::Certificate {
            private_key_pem: SecretString::from(private_key_pem),
            certificate_pem,
        },
    };
    let mut s = PowerBiSettings::new(cloud, p.tenant_id.clone(), p.client_id.clone(), credential);
    s.authority_url = p.authority_url.clone();
    s.api_url = p.api_url.clone();
    s.allow_loopback_http = p.allow_loopback_http;
    s.request_timeout = p.request_timeout;
    Ok(s)
}

pub async fn intacct_client(
    cfg: &ConnectionConfig,
    store: &dyn Store,
    key: &MasterKey,
) -> Result<IntacctClient, AppError> {
    let secrets: IntacctSecrets = unseal(store, key, &cfg.name, "intacct").await?;
    Ok(IntacctClient::new(intacct_settings(cfg, secrets))?)
}

pub async fn powerbi_client(
    cfg: &ConnectionConfig,
    store: &dyn Store,
    key: &MasterKey,
) -> Result<PowerBiClient, AppError> {
    let secrets: PowerBiSecrets = unseal(store, key, &cfg.name, "powerbi").await?;
    Ok(PowerBiClient::new(powerbi_settings(cfg, secrets)?)?)
}

/// Builds a connection's clients from its sealed credentials.
pub async fn connect(
    cfg: ConnectionConfig,
    store: Arc<dyn Store>,
    key: &MasterKey,
    clock: SharedClock,
) -> Result<Connection, AppError> {
    let intacct = intacct_client(&cfg, store.as_ref(), key).await?;
    let destination: Arc<dyn crate::destination::Destination> = match cfg.destination {
        crate::config::DestinationKind::PowerBi => {
            let powerbi = powerbi_client(&cfg, store.as_ref(), key).await?;
            Arc::new(PushDataset::with_limits(
                powerbi,
                PushLimits::default(),
                clock.clone(),
            ))
        }
        crate::config::DestinationKind::FabricMirroring => {
            Arc::new(fabric_destination(&cfg, store.as_ref(), key).await?)
        }
    };
    Ok(Connection {
        ctx: Context {
            config: cfg,
            store,
            intacct,
            clock,
            audit_retention: None,
        },
        destination,
    })
}

/// The Fabric open-mirroring destination: the `[connection.powerbi]` service principal (the
/// secret of `credentials set powerbi`) with a token for OneLake's storage scope.
pub async fn fabric_destination(
    cfg: &ConnectionConfig,
    store: &dyn Store,
    key: &MasterKey,
) -> Result<crate::destination::fabric::FabricMirroring, AppError> {
    let fabric = cfg.fabric.as_ref().ok_or_else(|| {
        AppError::Usage(format!(
            "connection {:?} has destination = \"fabric_mirroring\" but no [connection.fabric] section",
            cfg.name
        ))
    })?;
    let secrets: PowerBiSecrets = unseal(store, key, &cfg.name, "powerbi").await?;
    let settings = powerbi_settings(cfg, secrets)?;
    let token = ml_powerbi::TokenSource::for_scope(&settings, ml_onelake::STORAGE_SCOPE)?;
    let lz = ml_onelake::LandingZone::parse(&fabric.landing_zone_url, fabric.allow_loopback_http)
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let client = ml_onelake::OneLakeClient::new(lz, token, settings.request_timeout)
        .map_err(|e| AppError::Usage(e.to_string()))?;
    Ok(crate::destination::fabric::FabricMirroring::new(client))
}

/// The credential kind under which a connection's Intacct session is kept between runs.
const SESSION_KIND: &str = "intacct_session";

/// What is sealed of a kept Intacct session (the id is the secret; the rest is sealed with it so
/// the whole record is authenticated).
#[derive(Serialize, Deserialize)]
struct KeptSession {
    id: String,
    endpoint: String,
    sender_id: String,
    company_id: String,
    user_id: String,
    entity: Option<String>,
    obtained_at: chrono::DateTime<chrono::Utc>,
    valid_until: chrono::DateTime<chrono::Utc>,
}

/// Starts the connection's Intacct client from the session the last run kept, sealed in the store
/// with the master key, when it is still within its time (the 50-minute rule and the last
/// `sessiontimeout`) and belongs to the configured sender, company, entity and user. A scheduled
/// `sync` so makes no login while its predecessor's session lasts. Anything unreadable is ignored:
/// the run logs in as usual.
pub async fn resume_intacct_session(conn: &Context, key: &MasterKey) -> bool {
    let name = conn.config.name.as_str();
    let kept: KeptSession = match unseal(conn.store.as_ref(), key, name, SESSION_KIND).await {
        Ok(k) => k,
        Err(AppError::MissingCredentials { .. }) => return false,
        Err(e) => {
            tracing::debug!(error = %e, "the kept Intacct session is unreadable; logging in");
            return false;
        }
    };
    let Ok(endpoint) = url::Url::parse(&kept.endpoint) else {
        return false;
    };
    conn.intacct
        .resume_session(ml_intacct::SavedSession {
            id: SecretString::from(kept.id),
            endpoint,
            sender_id: kept.sender_id,
            company_id: kept.company_id,
            user_id: kept.user_id,
            entity: kept.entity,
            obtained_at: kept.obtained_at,
            valid_until: kept.valid_until,
        })
        .await
}

/// Keeps the client's Intacct session for the next run, sealed with the master key like the
/// credentials (the session id is a secret: never logged, never stored in clear). Nothing is kept
/// when the session is spent; a failure to keep it only costs the next run a login.
pub async fn keep_intacct_session(conn: &Context, key: &MasterKey) {
    let Some(s) = conn.intacct.saved_session().await else {
        return;
    };
    let kept = KeptSession {
        id: s.id.expose_secret().to_string(),
        endpoint: s.endpoint.to_string(),
        sender_id: s.sender_id,
        company_id: s.company_id,
        user_id: s.user_id,
        entity: s.entity,
        obtained_at: s.obtained_at,
        valid_until: s.valid_until,
    };
    let public = serde_json::json!({ "valid_until": kept.valid_until.to_rfc3339() });
    if let Err(e) = seal_json(
        conn.store.as_ref(),
        key,
        &conn.config.name,
        SESSION_KIND,
        &kept,
        public,
    )
    .await
    {
        tracing::debug!(error = %e, "the Intacct session was not kept for the next run");
    }
}
