//! `disktro`: the command-line client. Every command is a thin layer over `disktro_client`
//! (the same codec as the browser); this file owns arguments, prompts, progress bars, output
//! formats and exit codes (`disktro_client::exit`).

// A command-line tool: stdout is its output and stderr its messages.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use disktro_client::account::{self, Identity};
use disktro_client::resume;
use disktro_client::server::Server;
use disktro_client::upload::{Resumable, UploadOptions, upload_resumable};
use disktro_client::{ClientError, download, exit, gateway, link, restripe, session, share_downloads, tree};
use disktro_core::FileId;
use disktro_core::api::{Base64, FileDownload, FileSummary, NewShare, ShareAccess};
use disktro_core::keys::{FileKey, KdfParams, share_password_proof};
use disktro_core::metadata::FileMetadata;
use disktro_core::order::Orders;
use disktro_core::recovery::RecoveryKey;
use disktro_net::durable::DirectWriter;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

mod folders;

/// Disktro: zero-knowledge, erasure-coded file storage from the command line.
///
/// Files are encrypted, compressed when that pays, and spread over storage workers on this
/// machine; the server never sees names, contents or keys.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// Server URL (overrides the saved log-in's), e.g. https://disktro.example.
    #[arg(long, global = true, env = "DISKTRO_SERVER")]
    server: Option<String>,
    /// Also trust the CA certificates in this PEM bundle (a private network's own CA), for the
    /// server's HTTPS and the workers' wss://; the public web roots stay trusted.
    #[arg(long, global = true, env = "DISKTRO_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Bytes per direct write of a download.
const DOWNLOAD_WRITE_SIZE: usize = 1 << 20;

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other, 2 usage, 3 not found, 4 unauthorized (wrong password, not logged in), \
5 quota, 6 server unreachable, 7 workers unavailable, 8 integrity (a check failed), 9 local file, 10 link revoked/expired/used up";

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// List them (the default).
    Ls,
    /// Revoke one by its id; a machine using it must log in again.
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account and log in.
    ///
    /// Example: disktro signup --server https://disktro.example --email ada@example.org
    Signup {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Also write the recovery key to this file (created, never overwritten).
        #[arg(long)]
        recovery_key_file: Option<PathBuf>,
    },
    /// Log in; the session is saved in the user config directory.
    ///
    /// Example: disktro login --server https://disktro.example --email ada@example.org
    Login {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password with the recovery key shown at sign-up, when the password is lost.
    /// Files and shares stay; every other machine's log-in ends.
    ///
    /// Example: disktro recover --email ada@example.org --recovery-key-file disktro-recovery-key.txt
    Recover {
        #[arg(long)]
        email: String,
        /// Read the recovery key from this file [default: $DISKTRO_RECOVERY_KEY, else a prompt].
        #[arg(long)]
        recovery_key_file: Option<PathBuf>,
        /// Read the new password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make a new recovery key (the old one stops working); asks for the password.
    ///
    /// Example: disktro recovery-key --recovery-key-file disktro-recovery-key.txt
    RecoveryKey {
        /// Also write the key to this file (created, never overwritten).
        #[arg(long)]
        recovery_key_file: Option<PathBuf>,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log out: revoke this machine's token and forget the saved keys.
    Logout,
    /// The account's API tokens (each machine logged in has one; they expire after 90 days).
    ///
    /// Example: disktro tokens; disktro tokens rm 3f2a9c0d51e7b846
    Tokens {
        #[command(subcommand)]
        action: Option<TokensAction>,
    },
    /// Upload files (`-` reads stdin) and folders (with everything in them); prints each file's
    /// id.
    ///
    /// An upload that is interrupted (killed, a network failure) continues where it stopped when
    /// the same command runs again on the unchanged file; its upload stays open for 24 hours.
    ///
    /// Example: disktro upload report.pdf photos/ --to /backup/2026
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Name to store for `-` (stdin).
        #[arg(long, default_value = "stdin")]
        name: String,
        /// The folder to upload into (made if missing) [default: the top of your tree].
        #[arg(long, value_name = "PATH")]
        to: Option<String>,
        /// Begin anew instead of continuing an interrupted upload of the same file.
        #[arg(long)]
        restart: bool,
    },
    /// Download a file by id or path, or a folder by path (as a tree of files; `-o -` writes a
    /// file to stdout).
    ///
    /// Example: disktro download /backup/2026/report.pdf -o report.pdf
    Download {
        /// A file's id, or the path of a file or folder.
        id: String,
        /// Where to write [default: the file's or folder's own name, in the current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List a folder: its folders, then its files [default: the top of your tree].
    ///
    /// Example: disktro ls /backup
    Ls { path: Option<String> },
    /// Make a folder.
    ///
    /// Example: disktro mkdir -p /backup/2026
    Mkdir {
        path: String,
        /// Make the folders above it too where missing, and say nothing if it exists.
        #[arg(short, long)]
        parents: bool,
    },
    /// Move or rename a file or folder: into DEST when it is a folder, else to the path DEST.
    /// Only names and folders change, never a file's stored bytes.
    ///
    /// Example: disktro mv /report.pdf /backup/2026/
    Mv { source: String, dest: String },
    /// Re-encode files stored below the network's redundancy policy (written while it was
    /// small, or during an outage) at the redundancy it gives now: `disktro ls` names them. Only
    /// the owner can, since the manifest is the owner's signature. Without ids, every such file.
    ///
    /// Example: disktro restripe
    Restripe { ids: Vec<String> },
    /// Delete a file (its share links stop working), or a folder: an empty one, or with `-r`
    /// everything in it.
    ///
    /// Example: disktro rm -r /old-backups
    Rm {
        /// A file's id, or the path of a file or folder.
        id: String,
        /// Delete a folder with everything in it.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Make a share link (the key travels in the link's #fragment, never to the server).
    ///
    /// Example: disktro share 3f2a…c9 --expires 24h --max-downloads 3 --password
    Share {
        id: String,
        /// How long the link works, e.g. 30m, 24h, 7d [default: 7d].
        #[arg(long)]
        expires: Option<String>,
        /// Downloads allowed.
        #[arg(long)]
        max_downloads: Option<u32>,
        /// Protect the link with a password (prompted).
        #[arg(long)]
        password: bool,
        /// Read the link's password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Download from a share link; no account needed (`-o -` writes to stdout).
    ///
    /// Example: disktro get 'https://disktro.example/s/AbC…#key' -o report.pdf
    Get {
        link: String,
        /// Where to write [default: the file's own name, in the current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The link's password, from a prompt.
        #[arg(long)]
        password: bool,
        /// The link's password, from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Serve S3 on this machine for the tools that speak it (rclone, restic, the aws CLI):
    /// buckets are the folders at the top of your tree, keys are paths below them. Requests are
    /// signed with an access key made by `disktro gateway keys create`.
    ///
    /// Example: disktro gateway --listen 127.0.0.1:7480
    Gateway {
        /// Address to listen on (loopback by default: the gateway holds your keys).
        #[arg(long, default_value = "127.0.0.1:7480")]
        listen: String,
        #[command(subcommand)]
        keys: Option<GatewayCommand>,
    },
    /// The storage network's health.
    Nodes,
    /// The operators' rewards ledger.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum GatewayCommand {
    /// The gateway's access keys for S3 clients.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum KeysAction {
    /// Make an access key (`--json` prints {"access_key_id": …, "secret_access_key": …}).
    Create,
    /// List the access keys (their ids; the secrets stay in the keys file).
    Ls,
    /// Revoke an access key: requests signed with it are refused at once.
    Rm { access_key_id: String },
}

#[derive(Debug, clap::Subcommand)]
enum LedgerAction {
    /// Recompute the ledger's hash chain on the server; exits with the integrity code if any
    /// entry was changed, removed or reordered.
    ///
    /// Example: disktro ledger verify --server https://disktro.example
    Verify,
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_allocator();
    let cli = Cli::parse();
    if let Some(path) = &cli.ca_cert
        && let Err(e) = disktro_net::tls::trust(path)
    {
        eprintln!("disktro: --ca-cert: {e}");
        return ExitCode::from(exit::USAGE);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("disktro: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// glibc's allocator settings for a transfer: one arena, and shard- and chunk-sized buffers kept
/// in it when freed rather than returned to the system at once. A download frees and allocates
/// a 700 KB buffer per shard (the socket's frame, the shard's bytes) on several threads; by
/// default each thread's arena hands freed memory back and faults it in again, zeroed, for the
/// next shard. Measured on a 1 GiB download from 10 local workers (BENCHMARKS.md's log,
/// 2026-12-05): 2.3 s instead of 2.6 s, peak RSS 41 MiB instead of 44–47. Set through
/// `GLIBC_TUNABLES`, which glibc reads only as a process starts: the CLI starts itself again
/// with it once (an `exec`, same arguments and streams), unless the variable is already set
/// (a user's own settings win).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    use std::os::unix::process::CommandExt as _;
    const TUNED: &str =
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=33554432";
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        again.arg0(arg0);
    }
    // Returns only if the exec failed: the CLI then goes on with the defaults.
    let _failed = again.args(args).env("GLIBC_TUNABLES", TUNED).exec();
}

fn server_url(cli: &Cli) -> Result<&str, ClientError> {
    cli.server
        .as_deref()
        .ok_or_else(|| ClientError::Usage("give --server URL (or set DISKTRO_SERVER)".to_owned()))
}

/// The saved log-in, with `--server` overriding its URL.
fn logged_in(cli: &Cli) -> Result<(Server, Identity), ClientError> {
    let (server, me) = session::load()?.ok_or_else(|| ClientError::Api {
        status: 401,
        code: disktro_core::api::ErrorCode::NotLoggedIn,
        message: "not logged in: run `disktro login --server URL --email ADDRESS`".to_owned(),
    })?;
    match &cli.server {
        Some(url) => Ok((Server::new(url)?.with_token(&me.token), me)),
        None => Ok((server, me)),
    }
}

fn recovery_key_notice(key: &str) -> String {
    format!(
        "Your recovery key (shown once; keep it somewhere safe, away from this computer):\n\n    {key}\n\n\
         If you forget your password, `disktro recover` sets a new one with it. Without the password\n\
         and this key nobody, not even the server, can open your files."
    )
}

/// Write the recovery key to `path` if asked: a new file only, readable by its owner alone.
fn keep_recovery_key(path: Option<&Path>, key: &str) -> Result<(), ClientError> {
    let Some(path) = path else { return Ok(()) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| ClientError::Io(format!("cannot create {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes())
        .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", path.display())))
}

fn read_password(from_stdin: bool, prompt: &str, confirm: bool) -> Result<String, ClientError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| ClientError::Io(format!("cannot read the password from stdin: {e}")))?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(ClientError::Usage("the password on stdin is empty".to_owned()));
        }
        return Ok(password);
    }
    let password = rpassword::prompt_password(prompt)
        .map_err(|e| ClientError::Usage(format!("cannot prompt for a password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| ClientError::Usage(format!("cannot prompt for a password: {e}")))?;
        if again != password {
            return Err(ClientError::Usage("the passwords differ".to_owned()));
        }
    }
    if password.is_empty() {
        return Err(ClientError::Usage("the password is empty".to_owned()));
    }
    Ok(password)
}

fn token_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!("disktro CLI on {}", host.trim()).chars().take(100).collect()
}

fn bar(cli: &Cli, len: u64, what: &str) -> ProgressBar {
    if cli.quiet || cli.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:20!} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
            .expect("a valid template"),
    );
    bar.set_message(what.to_owned());
    bar
}

async fn run(cli: &Cli) -> Result<(), ClientError> {
    match &cli.command {
        Command::Signup {
            email,
            password_stdin,
            recovery_key_file,
        } => {
            let server = Server::new(server_url(cli)?)?;
            let password = read_password(*password_stdin, "New password: ", true)?;
            let me = account::signup(&server, email, &password, KdfParams::DEFAULT, &token_name()).await?;
            session::save(&server, &me)?;
            let recovery = me
                .recovery_key
                .as_ref()
                .expect("sign-up makes a recovery key")
                .to_text();
            keep_recovery_key(recovery_key_file.as_deref(), &recovery)?;
            say(
                cli,
                &format!(
                    "signed up and logged in as {}\n\n{}",
                    me.email,
                    recovery_key_notice(&recovery)
                ),
                json!({"account_id": me.account_id, "email": me.email, "recovery_key": recovery}),
            );
        }
        Command::Recover {
            email,
            recovery_key_file,
            password_stdin,
        } => {
            let server = Server::new(server_url(cli)?)?;
            let text = match (recovery_key_file, std::env::var("DISKTRO_RECOVERY_KEY")) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map_err(|e| ClientError::Io(format!("cannot read {}: {e}", path.display())))?,
                (None, Ok(text)) => text,
                (None, Err(_)) => rpassword::prompt_password("Recovery key: ")
                    .map_err(|e| ClientError::Usage(format!("cannot prompt for the recovery key: {e}")))?,
            };
            let key = RecoveryKey::from_text(&text).map_err(|e| ClientError::Usage(e.to_string()))?;
            let password = read_password(*password_stdin, "New password: ", true)?;
            let me = account::recover(&server, email, &key, &password, KdfParams::DEFAULT, &token_name()).await?;
            session::save(&server, &me)?;
            say(
                cli,
                &format!(
                    "new password set for {}; logged in (other machines must log in again)",
                    me.email
                ),
                json!({"account_id": me.account_id, "email": me.email}),
            );
        }
        Command::RecoveryKey {
            recovery_key_file,
            password_stdin,
        } => {
            let (server, me) = logged_in(cli)?;
            let password = read_password(*password_stdin, "Password: ", false)?;
            let recovery = account::new_recovery_key(&server, &me, &password).await?.to_text();
            keep_recovery_key(recovery_key_file.as_deref(), &recovery)?;
            say(cli, &recovery_key_notice(&recovery), json!({"recovery_key": recovery}));
        }
        Command::Login { email, password_stdin } => {
            let server = Server::new(server_url(cli)?)?;
            let password = read_password(*password_stdin, "Password: ", false)?;
            let me = account::login(&server, email, &password, &token_name()).await?;
            session::save(&server, &me)?;
            say(
                cli,
                &format!("logged in as {}", me.email),
                json!({"account_id": me.account_id, "email": me.email}),
            );
        }
        Command::Logout => {
            if let Some((server, _)) = session::load()? {
                // The token may already be revoked; forgetting it locally is what matters.
                let _ = server.logout().await;
            }
            session::remove()?;
            say(cli, "logged out", json!({"logged_out": true}));
        }
        Command::Tokens { action } => {
            let (server, _) = logged_in(cli)?;
            match action {
                None | Some(TokensAction::Ls) => {
                    let tokens = server.tokens().await?;
                    if cli.json {
                        println!("{}", serde_json::to_value(&tokens).unwrap_or_default());
                    } else {
                        for t in &tokens {
                            let now = i64::try_from(disktro_net::unix_now()).unwrap_or(i64::MAX);
                            let days_left = (t.expires_at - now).max(0) / 86_400;
                            println!(
                                "{}  {}  expires in {days_left} days{}",
                                t.id,
                                t.name,
                                if t.current { "  (this machine)" } else { "" }
                            );
                        }
                    }
                }
                Some(TokensAction::Rm { id }) => {
                    server.revoke_token(id).await?;
                    say(cli, &format!("revoked {id}"), json!({"revoked": id}));
                }
            }
        }
        Command::Upload {
            files,
            name,
            to,
            restart,
        } => upload_files(cli, files, name, to.as_deref(), *restart).await?,
        Command::Download { id, output } if id.parse::<FileId>().is_err() => {
            folders::download_path(cli, id, output.as_deref()).await?;
        }
        Command::Download { id, output } => {
            let (server, me) = logged_in(cli)?;
            download_own(cli, &server, &me, &file_id(id)?, output.as_deref()).await?;
        }
        Command::Ls { path } => list(cli, path.as_deref()).await?,
        Command::Mkdir { path, parents } => folders::mkdir(cli, path, *parents).await?,
        Command::Mv { source, dest } => folders::mv(cli, source, dest).await?,
        Command::Restripe { ids } => restripe_files(cli, ids).await?,
        Command::Rm { id, recursive } => folders::rm(cli, id, *recursive).await?,
        Command::Share {
            id,
            expires,
            max_downloads,
            password,
            password_stdin,
        } => {
            let (server, me) = logged_in(cli)?;
            let answer = server.file(&file_id(id)?.to_hex()).await?;
            let key = me.file_key(&answer.file_id, answer.wrapped_key.as_deref())?;
            let expires_in = match expires {
                Some(e) => Some(
                    disktro_net::units::parse_duration(e)
                        .map_err(|e| ClientError::Usage(format!("--expires: {e}")))?
                        .as_secs(),
                ),
                None => None,
            };
            let proof = if *password || *password_stdin {
                let p = read_password(*password_stdin, "Link password: ", !*password_stdin)?;
                Some(Base64::from(share_password_proof(&key, &p)))
            } else {
                None
            };
            let share = server
                .share(
                    id,
                    &NewShare {
                        expires_in,
                        max_downloads: *max_downloads,
                        password_proof: proof,
                    },
                )
                .await?;
            let url = link::format(server.url(), &share.share_id, &key);
            say(
                cli,
                &url,
                json!({"link": url, "share_id": share.share_id, "expires_at": share.expires_at, "max_downloads": share.max_downloads}),
            );
        }
        Command::Get {
            link,
            output,
            password,
            password_stdin,
        } => {
            let parsed = link::parse(link)?;
            let server = Server::new(&parsed.server)?;
            let password_proof = if *password || *password_stdin {
                let p = read_password(*password_stdin, "Link password: ", false)?;
                Some(Base64::from(share_password_proof(&parsed.key, &p)))
            } else {
                None
            };
            // A download this machine started and did not finish is continued, not repeated.
            let orders = Orders::new();
            let access = ShareAccess {
                password_proof,
                download_id: share_downloads::remembered(server.url(), &parsed.share_id),
                order_key: Some(orders.key()),
            };
            let answer = server.download_share(&parsed.share_id, &access).await?;
            if let Some(id) = &answer.download_id {
                share_downloads::remember(server.url(), &parsed.share_id, id);
            }
            // Fresh tokens for a long download: the same download, continued.
            let again = ShareAccess {
                download_id: answer.download_id.clone(),
                ..access
            };
            let renew = {
                let (server, share_id) = (server.clone(), parsed.share_id.clone());
                move || {
                    let (server, share_id, again) = (server.clone(), share_id.clone(), again.clone());
                    Box::pin(async move { server.download_share(&share_id, &again).await }) as download::Renewal
                }
            };
            save_download(cli, &answer, &parsed.key, None, output.as_deref(), &renew, orders).await?;
            if let Some(id) = &answer.download_id {
                // Saved: the download counts now. Were this report lost, the workers' claims
                // count it once its tokens expire.
                if let Err(e) = server.complete_share_download(&parsed.share_id, id).await {
                    eprintln!("disktro: saved, but the server did not take the download's completion: {e}");
                }
                share_downloads::forget(server.url(), &parsed.share_id);
            }
        }
        Command::Gateway { listen, keys: None } => gateway(cli, listen).await?,
        Command::Gateway {
            keys: Some(GatewayCommand::Keys { action }),
            ..
        } => gateway_keys(cli, action)?,
        Command::Nodes => nodes(cli).await?,
        Command::Ledger {
            action: LedgerAction::Verify,
        } => verify_ledger(cli).await?,
    }
    Ok(())
}

/// `disktro gateway`: serve S3 until interrupted.
async fn gateway(cli: &Cli, listen: &str) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let spool = session::dir()?.join("gateway-uploads");
    std::fs::create_dir_all(&spool).map_err(|e| ClientError::Io(format!("cannot create {}: {e}", spool.display())))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ClientError::Usage(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr().map_err(|e| ClientError::Io(e.to_string()))?;
    if gateway::keys::list(&me.account_id)?.is_empty() {
        eprintln!("disktro: no access keys yet: make one with `disktro gateway keys create`");
    }
    say(
        cli,
        &format!("S3 gateway for {} on http://{address}", me.email),
        json!({"listening": address.to_string()}),
    );
    gateway::serve(listener, gateway::Gateway::new(server, me, spool))
        .await
        .map_err(|e| ClientError::Io(format!("the gateway stopped: {e}")))
}

/// `disktro gateway keys …`.
fn gateway_keys(cli: &Cli, action: &KeysAction) -> Result<(), ClientError> {
    let (_, me) = logged_in(cli)?;
    match action {
        KeysAction::Create => {
            let key = gateway::keys::create(&me.account_id)?;
            say(
                cli,
                &format!(
                    "access key id:     {}\nsecret access key: {}",
                    key.access_key_id, key.secret_access_key
                ),
                json!({"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}),
            );
        }
        KeysAction::Ls => {
            let keys = gateway::keys::list(&me.account_id)?;
            if cli.json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| json!({"access_key_id": k.access_key_id, "created": k.created}))
                    .collect();
                println!("{}", json!(list));
            } else {
                for k in keys {
                    println!("{}  made {}", k.access_key_id, k.created);
                }
            }
        }
        KeysAction::Rm { access_key_id } => {
            if !gateway::keys::remove(&me.account_id, access_key_id)? {
                return Err(ClientError::Api {
                    status: 404,
                    code: disktro_core::api::ErrorCode::TokenNotFound,
                    message: format!("no access key {access_key_id}"),
                });
            }
            say(
                cli,
                &format!("revoked {access_key_id}"),
                json!({"revoked": access_key_id}),
            );
        }
    }
    Ok(())
}

fn say(cli: &Cli, text: &str, value: serde_json::Value) {
    if cli.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn guess_mime(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

async fn upload_files(
    cli: &Cli,
    files: &[PathBuf],
    stdin_name: &str,
    to: Option<&str>,
    restart: bool,
) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    // The tree is read only when a folder is named or uploaded.
    let mut tree = if to.is_some() || files.iter().any(|p| p.is_dir()) {
        tree::Tree::load(&server, &me).await?
    } else {
        tree::Tree::default()
    };
    let folder = match to {
        Some(path) => tree.make_all(&server, &me, path).await?,
        None => None,
    };
    let mut results = Vec::new();
    for path in files {
        if path.is_dir() {
            // The folder itself goes in `folder` under its own name, with everything in it.
            let name = dir_name(path)?;
            let top = tree
                .make_all(&server, &me, &format!("{}/{name}", tree.path_of(folder)))
                .await?;
            let mut pending = vec![(path.clone(), top)];
            while let Some((dir, into)) = pending.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&dir)
                    .map_err(|e| ClientError::Io(format!("cannot read {}: {e}", dir.display())))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect();
                entries.sort();
                for entry in entries {
                    if entry.is_dir() {
                        let name = dir_name(&entry)?;
                        let sub = match tree.child(into, &name) {
                            Some(f) => f.id,
                            None => tree.make(&server, &me, into, &name).await?,
                        };
                        pending.push((entry, Some(sub)));
                    } else if entry.is_file() {
                        results.extend(upload_one(cli, &server, &me, &entry, stdin_name, into, restart).await?);
                    }
                }
            }
        } else {
            results.extend(upload_one(cli, &server, &me, path, stdin_name, folder, restart).await?);
        }
    }
    if cli.json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(())
}

/// A local folder's name, as a folder name in the tree.
fn dir_name(path: &Path) -> Result<String, ClientError> {
    let canonical = path
        .canonicalize()
        .map_err(|e| ClientError::Io(format!("cannot read {}: {e}", path.display())))?;
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ClientError::Usage(format!("{} has no name to give its folder", path.display())))
}

/// Upload one file (`-`: stdin, named `stdin_name`) into `folder`; its `--json` line.
async fn upload_one(
    cli: &Cli,
    server: &Server,
    me: &Identity,
    path: &Path,
    stdin_name: &str,
    folder: Option<disktro_core::FolderId>,
    restart: bool,
) -> Result<Option<serde_json::Value>, ClientError> {
    // Stdin has no size, which the upload must declare first: spool it to a temp file.
    let from_stdin = path.as_os_str() == "-";
    let (file, name) = if from_stdin {
        // Reading all of stdin blocks: off the async threads.
        let spool = tokio::task::block_in_place(|| {
            let mut spool =
                tempfile::tempfile().map_err(|e| ClientError::Io(format!("cannot make a temp file: {e}")))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut spool)
                .map_err(|e| ClientError::Io(format!("cannot read stdin: {e}")))?;
            Ok::<_, ClientError>(spool)
        })?;
        (spool, stdin_name.to_owned())
    } else {
        let file =
            std::fs::File::open(path).map_err(|e| ClientError::Io(format!("cannot open {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        (file, name)
    };
    let stat = file
        .metadata()
        .map_err(|e| ClientError::Io(format!("cannot read {}: {e}", path.display())))?;
    if !stat.is_file() {
        return Err(ClientError::Io(format!("{} is not a regular file", path.display())));
    }
    let size = stat.len();
    let mut reader = file;
    std::io::Seek::rewind(&mut reader).map_err(|e| ClientError::Io(format!("cannot read {}: {e}", path.display())))?;
    let metadata = FileMetadata {
        mime: guess_mime(&name).to_owned(),
        name: name.clone(),
        size,
        attributes: Vec::new(),
    };
    let progress = bar(cli, size, &name);
    let started = Instant::now();
    // A file on disk can be continued by a later run; stdin cannot be read again.
    let resumable = (!from_stdin).then(|| Resumable {
        path,
        mtime_ns: resume::mtime_ns(&stat),
        restart,
    });
    let up = upload_resumable(
        server,
        me,
        reader,
        size,
        &metadata,
        &UploadOptions {
            folder_id: folder,
            ..UploadOptions::default()
        },
        &|p| progress.set_position(p.bytes_done),
        resumable,
    )
    .await;
    progress.finish_and_clear();
    let up = up?;
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    if cli.json {
        return Ok(Some(
            json!({"file_id": up.summary.file_id, "name": name, "size": size, "stored_bytes": up.summary.stored_bytes, "seconds": secs}),
        ));
    }
    println!("{}", up.summary.file_id);
    if !cli.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "{name}: {} in {secs:.1} s ({:.1} MB/s)",
            disktro_core::units::format_bytes(size),
            size as f64 / secs / 1e6
        );
    }
    Ok(None)
}

/// Download one of the account's files to `output` (see [`save_download`]).
async fn download_own(
    cli: &Cli,
    server: &Server,
    me: &Identity,
    id: &FileId,
    output: Option<&Path>,
) -> Result<(), ClientError> {
    let id = id.to_hex();
    // The download's order key: the tokens name it, and the workers are paid what this download
    // signs for with it.
    let orders = Orders::new();
    let order_key = orders.key();
    let answer = server.file_reading(&id, &order_key).await?;
    let key = me.file_key(&answer.file_id, answer.wrapped_key.as_deref())?;
    let server = server.clone();
    let renew = move || {
        let (server, id) = (server.clone(), id.clone());
        Box::pin(async move { server.file_reading(&id, &order_key).await }) as download::Renewal
    };
    save_download(cli, &answer, &key, Some(me), output, &renew, orders).await
}

/// Say where a download went, how large and how fast, and whose it is.
fn saved(cli: &Cli, target: &Path, fetched: &download::Fetched, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    say(
        cli,
        &format!(
            "{} ({}, {:.1} MB/s, signed by {})",
            target.display(),
            disktro_core::units::format_bytes(fetched.metadata.size),
            fetched.metadata.size as f64 / secs / 1e6,
            fetched.owner.fingerprint()
        ),
        json!({"path": target, "name": fetched.metadata.name, "size": fetched.metadata.size, "owner": fetched.owner.fingerprint(), "seconds": secs}),
    );
}

/// Download to `output` (`-` = stdout) through a temp file renamed on success, so a failed
/// download never leaves a partial file (a device or a pipe is written as it comes).
async fn save_download(
    cli: &Cli,
    answer: &FileDownload,
    key: &FileKey,
    owner: Option<&Identity>,
    output: Option<&Path>,
    renew: &download::Renew,
    orders: Orders,
) -> Result<(), ClientError> {
    let expected = owner.map(Identity::public_key);
    // Verify and learn the name before creating anything.
    let (_, metadata) = download::verify(answer, key, expected.as_ref())?;
    let progress = bar(cli, metadata.size, &metadata.name);
    let started = Instant::now();
    let report = |p: download::Progress| progress.set_position(p.bytes_done);
    let target = match output {
        Some(p) if p.as_os_str() == "-" => {
            download::download_renewing(
                answer,
                key,
                expected.as_ref(),
                std::io::stdout(),
                &report,
                Some(renew),
                orders,
            )
            .await?;
            progress.finish_and_clear();
            return Ok(());
        }
        Some(p) => p.to_owned(),
        None => PathBuf::from(safe_name(&metadata.name)),
    };
    // A device or a pipe (`-o /dev/null`, a FIFO) takes the bytes as they come: it is no file to
    // stage a copy beside and rename over (that would replace /dev/null with a regular file).
    if std::fs::metadata(&target).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", target.display())))?;
        let (fetched, mut writer) = download::download_renewing(
            answer,
            key,
            expected.as_ref(),
            std::io::BufWriter::with_capacity(DOWNLOAD_WRITE_SIZE, file),
            &report,
            Some(renew),
            orders,
        )
        .await?;
        std::io::Write::flush(&mut writer)
            .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", target.display())))?;
        progress.finish_and_clear();
        saved(cli, &target, &fetched, started);
        return Ok(());
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".disktro-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| ClientError::Io(format!("cannot write in {}: {e}", dir.display())))?;
    // Around the page cache where the file system allows it: copying a large download into the
    // page cache cost more than decoding it, and the file is synced at the end anyway.
    let writer = temp
        .reopen()
        .and_then(|file| DirectWriter::new(file, DOWNLOAD_WRITE_SIZE))
        .map_err(|e| ClientError::Io(format!("cannot write in {}: {e}", dir.display())))?;
    // On error `temp` is dropped here, which deletes the partial file.
    let (fetched, writer) =
        download::download_renewing(answer, key, expected.as_ref(), writer, &report, Some(renew), orders).await?;
    // The staged tail, then a sync of a large file: blocking, off the async threads.
    tokio::task::block_in_place(|| writer.finish()?.sync_all())
        .map_err(|e| ClientError::Io(format!("cannot write {}: {e}", target.display())))?;
    temp.persist(&target)
        .map_err(|e| ClientError::Io(format!("cannot write {}: {}", target.display(), e.error)))?;
    progress.finish_and_clear();
    saved(cli, &target, &fetched, started);
    Ok(())
}

/// A stored name made safe as a file name here: no directories, no hidden or empty names.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    match cleaned.trim_start_matches('.') {
        "" => "download".to_owned(),
        s => s.to_owned(),
    }
}

/// A file id given on the command line.
fn file_id(text: &str) -> Result<FileId, ClientError> {
    text.parse()
        .map_err(|_| ClientError::Usage("a file id is 32 hex digits".to_owned()))
}

/// `disktro ls [PATH]`: a folder's folders, then its files (the top of the tree by default).
async fn list(cli: &Cli, path: Option<&str>) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let tree = tree::Tree::load(&server, &me).await?;
    let at = path.unwrap_or("/");
    let folder = tree.folder_at(at).ok_or_else(|| folders::not_found(at))?;
    let list = server.files_in(folder.as_ref()).await?;
    let subfolders = tree.children(folder);
    let mut rows = Vec::new();
    for f in &list.files {
        let name = (|| {
            let key = me.file_key(&f.file_id, Some(&f.wrapped_key)).ok()?;
            FileMetadata::open(&f.metadata, &key, &f.file_id).ok()
        })();
        rows.push((f, name));
    }
    if cli.json {
        let files: Vec<_> = rows
            .iter()
            .map(|(f, m)| {
                json!({
                    "file_id": f.file_id, "name": m.as_ref().map(|m| &m.name), "mime": m.as_ref().map(|m| &m.mime),
                    "size": m.as_ref().map(|m| m.size), "size_class": f.size, "stored_bytes": f.stored_bytes, "created_at": f.created_at,
                    "healthy_shards": f.health.weakest_chunk_healthy, "shards": f.health.shards_per_chunk, "needed": f.health.needed,
                    "zones_survivable": f.health.zones_survivable, "yearly_loss": f.health.yearly_loss, "model": f.health.model,
                    "below_policy": f.health.below_policy,
                })
            })
            .collect();
        let folders: Vec<_> = subfolders
            .iter()
            .map(|f| json!({"folder_id": f.id, "name": f.name, "path": tree.path_of(Some(f.id))}))
            .collect();
        println!(
            "{}",
            json!({"path": tree.path_of(folder), "folders": folders, "files": files, "used_bytes": list.used_bytes, "quota_bytes": list.quota_bytes})
        );
        return Ok(());
    }
    println!("{:<32}  {:>10}  {:>7}  NAME", "ID", "SIZE", "HEALTH");
    for f in &subfolders {
        println!("{:<32}  {:>10}  {:>7}  {}/", f.id, "-", "", f.name);
    }
    for (f, m) in rows {
        // The exact size is sealed with the name; the server knows only the padded size class.
        let size = m.as_ref().map_or_else(
            || format!("~{}", disktro_core::units::format_bytes(f.size)),
            |m| disktro_core::units::format_bytes(m.size),
        );
        let name = m.map_or_else(|| "(name does not open)".to_owned(), |m| m.name);
        println!(
            "{:<32}  {:>10}  {:>3}/{:<3}  {name}",
            f.file_id, size, f.health.weakest_chunk_healthy, f.health.shards_per_chunk
        );
    }
    println!(
        "{} files in all, {} of {} used",
        list.total,
        disktro_core::units::format_bytes(list.used_bytes),
        disktro_core::units::format_bytes(list.quota_bytes)
    );
    let below = list.files.iter().filter(|f| f.health.below_policy).count();
    if below > 0 {
        eprintln!(
            "disktro: {below} file(s) here are stored with less redundancy than the network gives now: `disktro restripe` re-encodes them"
        );
    }
    Ok(())
}

/// `disktro restripe`: the files named, or every file below the policy, one after another.
async fn restripe_files(cli: &Cli, ids: &[String]) -> Result<(), ClientError> {
    let (server, me) = logged_in(cli)?;
    let list = server.files().await?;
    let files: Vec<&FileSummary> = if ids.is_empty() {
        list.files.iter().filter(|f| f.health.below_policy).collect()
    } else {
        ids.iter()
            .map(|id| {
                let id = file_id(id)?;
                list.files
                    .iter()
                    .find(|f| f.file_id == id)
                    .ok_or_else(|| ClientError::Usage(format!("no file {id} in this account")))
            })
            .collect::<Result<_, _>>()?
    };
    let mut done = Vec::new();
    for f in files {
        let name = me
            .file_key(&f.file_id, Some(&f.wrapped_key))
            .ok()
            .and_then(|key| FileMetadata::open(&f.metadata, &key, &f.file_id).ok())
            .map_or_else(|| f.file_id.to_hex(), |m| m.name);
        let progress = bar(cli, f.stored_bytes, &name);
        let bytes = |p: restripe::Progress| {
            progress.set_length(p.bytes);
            progress.set_position(p.bytes_done);
        };
        let restriped = restripe::restripe(&server, &me, f, &bytes).await;
        progress.finish_and_clear();
        let after = restriped?;
        if !cli.quiet && !cli.json {
            println!(
                "restriped {} {name}: {}+{} -> {}+{}",
                f.file_id, f.data_shards, f.parity_shards, after.data_shards, after.parity_shards
            );
        }
        done.push(json!({
            "file_id": f.file_id,
            "from": [f.data_shards, f.parity_shards],
            "to": [after.data_shards, after.parity_shards],
            "stored_bytes": after.stored_bytes,
        }));
    }
    if cli.json {
        println!("{}", json!({ "restriped": done }));
    } else if done.is_empty() && !cli.quiet {
        println!("every file is at the network's redundancy policy");
    }
    Ok(())
}

/// The server named by `--server`, else the logged-in one (public routes need no session).
fn public_server(cli: &Cli) -> Result<Server, ClientError> {
    match &cli.server {
        Some(url) => Server::new(url),
        None => Ok(logged_in(cli)?.0),
    }
}

async fn verify_ledger(cli: &Cli) -> Result<(), ClientError> {
    let check = public_server(cli)?.ledger_check().await?;
    if cli.json {
        println!("{}", serde_json::to_string(&check).unwrap_or_default());
    }
    if !check.valid {
        return Err(ClientError::Integrity(format!(
            "the ledger does not verify at entry {}: {}",
            check.first_bad_seq.unwrap_or(0),
            check.problem.unwrap_or_default()
        )));
    }
    if !cli.json {
        println!("ledger verified: {} entries, head {}", check.entries, check.head);
    }
    Ok(())
}

async fn nodes(cli: &Cli) -> Result<(), ClientError> {
    let server = public_server(cli)?;
    let nodes = server.nodes().await?;
    if cli.json {
        println!("{}", serde_json::Value::Array(nodes));
        return Ok(());
    }
    println!(
        "{:<16}  {:<8}  {:<12}  {:<10}  {:>10}  {:>10}  {:>7}  {:>6}  URL",
        "NODE", "STATUS", "STANDING", "ZONE", "USED", "CAPACITY", "SHARDS", "AUDIT"
    );
    for n in &nodes {
        let get = |k: &str| n[k].as_u64().unwrap_or(0);
        println!(
            "{:<16}  {:<8}  {:<12}  {:<10}  {:>10}  {:>10}  {:>7}  {:>6}  {}",
            n["node_id"]
                .as_str()
                .unwrap_or("?")
                .chars()
                .take(16)
                .collect::<String>(),
            n["status"].as_str().unwrap_or("?"),
            n["state"].as_str().unwrap_or("?"),
            n["zone"].as_str().unwrap_or("?"),
            disktro_core::units::format_bytes(get("used")),
            disktro_core::units::format_bytes(get("capacity")),
            get("shards"),
            format!("{:.3}", get("audit_score") as f64 / 1e6),
            n["url"].as_str().unwrap_or("?"),
        );
    }
    let online = nodes.iter().filter(|n| n["status"] == "online").count();
    println!("{online} of {} nodes online", nodes.len());
    Ok(())
}
