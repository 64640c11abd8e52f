//! `chatbot`: serves the chatbot API, or manages its database's migrations.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use chatbot_persistence::{Backend, DatabaseUrl, embedded_migrations};
use chatbot_server::{
    Application, Settings, StartError, database_url, open_database, stop_on_signals,
};

const USAGE: &str = "\
usage: chatbot [COMMAND]

commands:
  serve                    serve the API (the default)
  migrate                  apply pending migrations
  rollback                 revert the newest migration
  rollback --all [--yes]   revert every migration, dropping every table and all data;
                           asks for confirmation unless --yes is given
  migrations               list the migrations, applied and pending

options:
  -h, --help       this text (also after a command)
  -V, --version    the version

Configuration: config/default.toml, config/<APP_ENV>.toml, then environment
variables (CHATBOT__SECTION__KEY, DATABASE_URL, SECRET_KEY, PORT, HOST); see README.md.";

enum Command {
    Serve,
    Migrate,
    Rollback(Rollback),
    Migrations,
    Help,
    Version,
}

enum Rollback {
    Newest,
    /// Every migration; `confirmed` when `--yes` said so up front.
    All {
        confirmed: bool,
    },
}

impl Command {
    fn parse(arguments: &[String]) -> Result<Self, String> {
        let words: Vec<&str> = arguments.iter().map(String::as_str).collect();
        if words.iter().any(|w| matches!(*w, "help" | "--help" | "-h")) {
            return Ok(Self::Help);
        }
        match words.as_slice() {
            ["--version" | "-V" | "version"] => Ok(Self::Version),
            [] | ["serve"] => Ok(Self::Serve),
            ["migrate"] => Ok(Self::Migrate),
            ["rollback"] => Ok(Self::Rollback(Rollback::Newest)),
            ["rollback", "--all"] => Ok(Self::Rollback(Rollback::All { confirmed: false })),
            ["rollback", "--all", "--yes"] | ["rollback", "--yes", "--all"] => {
                Ok(Self::Rollback(Rollback::All { confirmed: true }))
            }
            ["migrations"] => Ok(Self::Migrations),
            _ => Err(format!("unknown arguments: {}", words.join(" "))),
        }
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&arguments) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("chatbot {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
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
    chatbot_server::logging::init(&settings.log);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    match command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let applied = open_database(&settings)?.run_pending_migrations()?;
            report("applied", &applied);
            Ok(())
        }
        Command::Rollback(Rollback::Newest) => {
            let reverted = open_database(&settings)?.revert_last_migration()?;
            report("reverted", &reverted.into_iter().collect::<Vec<_>>());
            Ok(())
        }
        Command::Rollback(Rollback::All { confirmed }) => {
            let url = database_url(&settings)?;
            if !confirmed && !confirm_dropping_everything(&url) {
                return Err(StartError::NotConfirmed(url.to_string()));
            }
            report(
                "reverted",
                &open_database(&settings)?.revert_all_migrations()?,
            );
            Ok(())
        }
        Command::Migrations => list_migrations(&settings),
        Command::Help | Command::Version => Ok(()),
    }
}

/// Lists the migrations; a SQLite file that does not exist yet is not created for it:
/// every migration is pending there.
fn list_migrations(settings: &Settings) -> Result<(), StartError> {
    if let DatabaseUrl::Sqlite(path) = database_url(settings)? {
        if !path.exists() {
            eprintln!(
                "{} does not exist yet: every migration is pending",
                path.display()
            );
            for name in embedded_migrations(Backend::Sqlite)? {
                println!("{:8} {name}", "pending");
            }
            return Ok(());
        }
    }
    for migration in open_database(settings)?.migration_status()? {
        let state = if migration.applied {
            "applied"
        } else {
            "pending"
        };
        println!("{state:8} {}", migration.name);
    }
    Ok(())
}

/// Asks on the terminal before every table of `url` is dropped; never without one.
fn confirm_dropping_everything(url: &DatabaseUrl) -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return false;
    }
    print!(
        "This reverts every migration of {url}: every table and all its data are dropped.\n\
         Type yes to go on: "
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

fn serve(settings: Settings) -> Result<(), StartError> {
    let profile = settings.profile;
    let database = database_url(&settings)?;
    let application = Application::build(settings)?;
    let grace = application.shutdown_timeout();
    let chat = application.chat();
    let mailer = application.mailer();
    let mail_grace = application.mail_grace();
    let listener = application.listen()?;
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    actix_web::rt::System::new().block_on(async move {
        let server = application.serve(listener).map_err(StartError::Serve)?;
        stop_on_signals(&server, grace, chat).map_err(StartError::Signals)?;
        tracing::info!(
            %address,
            profile = profile.name(),
            %database,
            "serving the chatbot API on http://{address}/api, its documentation on http://{address}/api/docs"
        );
        server.await.map_err(StartError::Serve)?;
        // The requests are done: no mail comes after this.
        mailer.close(mail_grace);
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
