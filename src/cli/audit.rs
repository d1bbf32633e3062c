//! `cxstream audit`: the signing key pair, and verifying the trail.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::audit::keys;
use crate::audit::replay::state_at;
use crate::audit_read::{chain_of, verify, VerifySource};
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
    /// Rebuild an interaction's state from its audit chain (verified on the
    /// way): state, queue, agent and time per state, now or at --as-of.
    State {
        #[arg(long)]
        brokers: String,
        #[arg(long, value_name = "ID")]
        interaction: String,
        /// The instant (ISO-8601 with a zone); default: after the last record.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        #[arg(long, default_value = "cx.audit.events")]
        events_topic: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        AuditCommand::State {
            brokers,
            interaction,
            as_of,
            events_topic,
            json,
            client,
        } => {
            let as_of_ms = match &as_of {
                Some(t) => Some(crate::model::parse_iso_ms(t).ok_or_else(|| {
                    format!("--as-of `{t}` is not an ISO-8601 time with a zone, e.g. 2026-03-02T09:00:00Z")
                })?),
                None => None,
            };
            let chain = chain_of(
                &brokers,
                &client,
                &events_topic,
                &interaction,
                Duration::from_secs(30),
            )?;
            let at = state_at(&interaction, &chain, as_of_ms)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&at)?);
            } else {
                println!(
                    "interaction {}: {} (since {}), {} of {} records{}",
                    at.interaction_id,
                    at.state,
                    at.since.as_deref().unwrap_or("-"),
                    at.records,
                    at.chain_length,
                    if at.ended {
                        ", the chain is complete"
                    } else {
                        ", the chain is open"
                    }
                );
                println!("  queue: {}", at.queue.as_deref().unwrap_or("-"));
                println!("  agent: {}", at.agent.as_deref().unwrap_or("-"));
                for (state, ms) in &at.durations_ms {
                    println!("  {state:<13} {:.1} s", *ms as f64 / 1000.0);
                }
            }
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
