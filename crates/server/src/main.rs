//! `chatbot`: serves the chatbot API, or manages its database's migrations.

use std::process::ExitCode;

use chatbot_server::settings::{LogFormat, LogSettings};
use chatbot_server::{Application, Settings, StartError, open_database, stop_on_signals};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: chatbot [COMMAND]

commands:
  serve            serve the API (the default)
  migrate          apply pending migrations
  rollback [--all] revert the newest migration, or all of them
  migrations       list the migrations, applied and pending

Configuration: config/default.toml, config/<APP_ENV>.toml, then environment
variables (CHATBOT__SECTION__KEY, DATABASE_URL, SECRET_KEY, PORT, HOST); see README.md.";

enum Command {
    Serve,
    Migrate,
    Rollback { all: bool },
    Migrations,
}

impl Command {
    /// The command the arguments name; `None` when they ask for help.
    fn parse(arguments: &[String]) -> Result<Option<Self>, String> {
        let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
        match words.as_slice() {
            [] | ["serve"] => Ok(Some(Self::Serve)),
            ["migrate"] => Ok(Some(Self::Migrate)),
            ["rollback"] => Ok(Some(Self::Rollback { all: false })),
            ["rollback", "--all"] => Ok(Some(Self::Rollback { all: true })),
            ["migrations"] => Ok(Some(Self::Migrations)),
            ["help" | "--help" | "-h"] => Ok(None),
            _ => Err(format!("unknown arguments: {}", words.join(" "))),
        }
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&arguments) {
        Ok(Some(command)) => command,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("error: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", with_causes(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), StartError> {
    let settings = Settings::load()?;
    init_logging(&settings.log);
    match command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let applied = open_database(&settings)?.run_pending_migrations()?;
            report("applied", &applied);
            Ok(())
        }
        Command::Rollback { all } => {
            let database = open_database(&settings)?;
            let reverted = if all {
                database.revert_all_migrations()?
            } else {
                database.revert_last_migration()?.into_iter().collect()
            };
            report("reverted", &reverted);
            Ok(())
        }
        Command::Migrations => {
            for migration in open_database(&settings)?.migration_status()? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                println!("{state:8} {}", migration.name);
            }
            Ok(())
        }
    }
}

fn serve(settings: Settings) -> Result<(), StartError> {
    let application = Application::build(settings)?;
    let grace = application.shutdown_timeout();
    let listener = application.listen()?;
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    actix_web::rt::System::new().block_on(async move {
        let server = application
            .serve(listener)
            .map_err(|source| StartError::Listen {
                address: address.clone(),
                source,
            })?;
        stop_on_signals(&server, grace).map_err(StartError::Signals)?;
        tracing::info!(%address, "serving the chatbot API on http://{address}/api");
        server
            .await
            .map_err(|source| StartError::Listen { address, source })?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn report(what: &str, migrations: &[String]) {
    if migrations.is_empty() {
        println!("nothing {what}");
    }
    for name in migrations {
        println!("{what} {name}");
    }
}

fn init_logging(log: &LogSettings) {
    // `log.level` was checked with the settings; RUST_LOG, when set, wins.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match log.format {
        LogFormat::Text => logs.init(),
        // Fields at the top level and the request's span (its id) on every line, so a
        // log pipeline can filter on them without unpacking.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// `error: cause: cause's cause`, on one line (drivers' messages may span several).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
