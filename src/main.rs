use std::process::ExitCode;

use boxoffice::config::{Config, ConfigError};
use boxoffice::{Application, app, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(ConfigError::Invalid(msg)) => return fail(&msg, 2),
    };
    if let Err(msg) = telemetry::init(&config.log.filter, config.log.format) {
        return fail(&msg, 2);
    }
    let result = async {
        Application::build(config)
            .await?
            .run_until_stopped(app::shutdown_signal())
            .await
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}"), 1),
    }
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("boxoffice: {msg}");
    ExitCode::from(code)
}
