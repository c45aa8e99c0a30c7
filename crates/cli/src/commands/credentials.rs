//! `credentials set|show|rotate-key`. Secrets come from a no-echo prompt or stdin, never from argv,
//! and are sealed under the master key before they reach the store.

use std::io::BufRead;

use anyhow::{Context as _, Result};
use ml_store::crypto::MasterKey;

use crate::args::{CredentialsCommand, System};
use crate::exit;
use ml_connector::app::{self, App, IntacctSecrets, PowerBiSecrets};

/// Reads secrets one per line from stdin, or prompts without echo.
struct SecretReader {
    stdin: bool,
    lines: Option<std::io::Lines<std::io::StdinLock<'static>>>,
}

impl SecretReader {
    fn new(stdin: bool) -> Self {
        SecretReader {
            stdin,
            lines: stdin.then(|| std::io::stdin().lock().lines()),
        }
    }

    fn read(&mut self, prompt: &str) -> Result<String> {
        let value = if self.stdin {
            self.lines
                .as_mut()
                .and_then(|l| l.next())
                .transpose()?
                .with_context(|| format!("stdin ended before the {prompt}"))?
        } else {
            rpassword::prompt_password(format!("{prompt}: "))
                .context("cannot read from the terminal (use --stdin)")?
        };
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(!value.is_empty(), "the {prompt} must not be empty");
        Ok(value)
    }
}

pub async fn run(app: App, cmd: CredentialsCommand) -> Result<u8> {
    match cmd {
        CredentialsCommand::Set {
            system,
            connection,
            stdin,
            certificate,
            private_key,
        } => {
            let cfg = app
                .config
                .connection(connection.connection.as_deref())
                .map_err(anyhow::Error::msg)?;
            let key = app.master_key()?;
            let mut reader = SecretReader::new(stdin);
            match system {
                System::Intacct => {
                    let secrets = IntacctSecrets {
                        sender_password: reader.read(&format!(
                            "Web Services sender password for {}",
                            cfg.intacct.sender_id
                        ))?,
                        user_password: reader
                            .read(&format!("Intacct password of user {}", cfg.intacct.user_id))?,
                    };
                    let public = serde_json::json!({
                        "sender_id": cfg.intacct.sender_id,
                        "company_id": cfg.intacct.company_id,
                        "user_id": cfg.intacct.user_id,
                    });
                    app::seal_json(
                        app.store.as_ref(),
                        &key,
                        &cfg.name,
                        "intacct",
                        &secrets,
                        public,
                    )
                    .await?;
                }
                System::Powerbi => {
                    let secrets = match (certificate, private_key) {
                        (Some(cert), Some(pk)) => PowerBiSecrets::Certificate {
                            certificate_pem: std::fs::read_to_string(&cert)
                                .with_context(|| format!("cannot read {}", cert.display()))?,
                            private_key_pem: std::fs::read_to_string(&pk)
                                .with_context(|| format!("cannot read {}", pk.display()))?,
                        },
                        _ => PowerBiSecrets::ClientSecret {
                            client_secret: reader.read(&format!(
                                "client secret VALUE (not its ID) of app {}",
                                cfg.powerbi.client_id
                            ))?,
                        },
                    };
                    let kind = match &secrets {
                        PowerBiSecrets::ClientSecret { .. } => "client_secret",
                        PowerBiSecrets::Certificate { .. } => "certificate",
                    };
                    let public = serde_json::json!({
                        "tenant_id": cfg.powerbi.tenant_id,
                        "client_id": cfg.powerbi.client_id,
                        "credential": kind,
                    });
                    app::seal_json(
                        app.store.as_ref(),
                        &key,
                        &cfg.name,
                        "powerbi",
                        &secrets,
                        public,
                    )
                    .await?;
                }
            }
            crate::outln!(
                "stored the {} credentials of connection {} (encrypted with master key {})",
                match system {
                    System::Intacct => "intacct",
                    System::Powerbi => "powerbi",
                },
                cfg.name,
                key.fingerprint()
            );
            Ok(exit::OK)
        }
        CredentialsCommand::Show(c) => {
            let only = c.connection;
            for cred in app.store.list_credentials().await? {
                if only.as_deref().is_some_and(|o| o != cred.connection) {
                    continue;
                }
                crate::outln!(
                    "{:<12} {:<8} {} (sealed with key {}, updated {})",
                    cred.connection,
                    cred.kind,
                    cred.public_fields,
                    cred.sealed.key_fingerprint,
                    cred.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
            Ok(exit::OK)
        }
        CredentialsCommand::RotateKey => {
            let old = app.master_key()?;
            let key_path = app::key_file_path(&app.config);
            let new_path = key_path.with_extension("key.new");
            let new = MasterKey::create_file(&new_path)?;
            let report = match ml_store::rotate_key(app.store.as_ref(), &old, &new).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_file(&new_path);
                    return Err(e.into());
                }
            };
            if std::env::var_os(ml_store::crypto::MASTER_KEY_ENV).is_some() {
                crate::outln!(
                    "re-encrypted {} credential(s). The new key is in {} (mode 0600): put its content in {} and delete the file",
                    report.rotated,
                    new_path.display(),
                    ml_store::crypto::MASTER_KEY_ENV
                );
            } else {
                let old_path = key_path.with_extension("key.old");
                std::fs::rename(&key_path, &old_path)?;
                std::fs::rename(&new_path, &key_path)?;
                crate::outln!(
                    "re-encrypted {} credential(s) under key {}; the previous key is kept as {}",
                    report.rotated,
                    new.fingerprint(),
                    old_path.display()
                );
            }
            Ok(exit::OK)
        }
    }
}
