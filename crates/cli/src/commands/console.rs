//! `console` (the operations console alone), `console token rotate`, the token `init` creates, and
//! the console `run` serves beside its schedules.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::args::{ConsoleCommand, ConsoleTokenCommand};
use crate::exit;
use ml_connector::app::App;

pub async fn run(
    config: Option<&Path>,
    bind: Option<SocketAddr>,
    command: Option<ConsoleCommand>,
) -> Result<u8> {
    match command {
        Some(ConsoleCommand::Token(ConsoleTokenCommand::Rotate)) => rotate(config),
        None => {
            let app = super::open(config).await?;
            let (listener, console) = start(&app, bind).await?;
            crate::outln!(
                "console on http://{} (Ctrl-C stops it)",
                listener.local_addr()?
            );
            ml_console::serve(
                listener,
                console,
                ml_connector::scheduler::service::wait_for_signal(),
            )
            .await?;
            Ok(exit::OK)
        }
    }
}

/// Binds the console of this configuration (`bind` overrides `[console] bind`).
pub async fn start(
    app: &App,
    bind: Option<SocketAddr>,
) -> Result<(tokio::net::TcpListener, ml_console::Shared)> {
    let console = Arc::new(ml_console::Console::from_app(app)?);
    let listener = ml_console::bind(bind.unwrap_or(app.config.console.bind)).await?;
    tracing::info!(addr = %listener.local_addr()?, "console listening");
    Ok((listener, console))
}

/// `console token rotate`: a new token, printed once; its hash replaces the old one's.
fn rotate(config: Option<&Path>) -> Result<u8> {
    let path = ml_connector::config::locate(config);
    let cfg = ml_connector::config::Config::load(&path)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let token = ml_console::auth::create_token(&ml_console::auth::token_path(&cfg.data_dir), true)?
        .expect("replace always creates");
    print_token(&token);
    crate::outln!("the old token no longer works, and everyone logged in with it is logged out");
    Ok(exit::OK)
}

/// `init`: the console token, when there is none yet.
pub fn init_token(data_dir: &Path) -> Result<()> {
    let path = ml_console::auth::token_path(data_dir);
    match ml_console::auth::create_token(&path, false)? {
        Some(token) => print_token(&token),
        None => crate::outln!(
            "kept the existing console token ({}); `ml-connector console token rotate` replaces it",
            path.display()
        ),
    }
    Ok(())
}

/// The one time a token is shown: on stdout, never in a log line.
fn print_token(token: &str) {
    crate::outln!("console token (shown once; only its hash is kept): {token}");
}
