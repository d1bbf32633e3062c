//! `cxstream audit`: the signing key pair, and verifying the trail.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::audit::keys;
use crate::audit_read::{verify, VerifySource};
use crate::runtime::client::parse_kv;

use super::CliResult;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write a new Ed25519 signing key pair (PKCS#8 PEM, and its public key)
    /// into a directory; the private file is readable by its owner only.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// The signer's name in the checkpoints (the stage's `key_name`).
        #[arg(long, default_value = "cxstream-audit")]
        name: String,
    },
    /// Verify the audit trail: every record's hash, every chain's links,
    /// every partition's leaves against its signed checkpoints. Exits
    /// non-zero on any failure.
    Verify {
        #[arg(long)]
        brokers: String,
        /// The public key (PEM) the checkpoints must be signed with.
        #[arg(long, value_name = "PATH")]
        public_key: PathBuf,
        #[arg(long, default_value = "cxstream-audit")]
        key_name: String,
        #[arg(long, default_value = "cx.audit.events")]
        events_topic: String,
        #[arg(long, default_value = "cx.audit.checkpoints")]
        checkpoints_topic: String,
        /// The stage's `origin` (checkpoints name `<origin>/<log>/<partition>`).
        #[arg(long, default_value = "cxstream.audit")]
        origin: String,
        /// The log's name in its checkpoints: the topic the stage wrote
        /// (default: --events-topic; give it when verifying a copy).
        #[arg(long, value_name = "TOPIC")]
        log_name: Option<String>,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
        client: Vec<(String, String)>,
    },
}

pub fn audit(cmd: AuditCommand) -> CliResult {
    match cmd {
        AuditCommand::Keygen { out, name } => {
            let (private, public) = keys::keygen(&out, &name)?;
            println!(
                "wrote {} (private: give it to the audit stage with --audit-key-file) and {} (public: for `cxstream audit verify --public-key`)",
                private.display(),
                public.display()
            );
            Ok(())
        }
        AuditCommand::Verify {
            brokers,
            public_key,
            key_name,
            events_topic,
            checkpoints_topic,
            origin,
            log_name,
            json,
            quiet,
            client,
        } => {
            let key = keys::load_verifier(&public_key, &key_name)?;
            let src = VerifySource {
                brokers,
                client,
                log_name: log_name.unwrap_or_else(|| events_topic.clone()),
                events_topic,
                checkpoints_topic,
                origin,
                quiet,
                stall: Duration::from_secs(30),
                keep: 1_000,
            };
            let report = verify(&src, &key)?;
            print!("{}", report.human());
            if let Some(path) = json {
                let text = serde_json::to_vec_pretty(&report)?;
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            if report.failed() {
                return Err("the audit trail does not verify (see the findings above)".into());
            }
            Ok(())
        }
    }
}
