//! Runs every `*.slt` file under the repository's top-level `sql/` directory with the
//! `sqllogictest` crate, each against a fresh engine (one isolated database per file), and
//! fails listing every failing file.
//!
//! Values are compared in PostgreSQL's text format, NULL as `NULL` and the empty string as
//! `(empty)`. `statement error <regex>` matches against `ERROR: <message> (SQLSTATE <code>)`,
//! so `statement error 23505` works, and `statement error (23505)` compares the SQLSTATE.
//!
//! `SLT_FILTER=substring` runs only the files whose path contains it; `SLT_UPDATE=1` rewrites
//! the expected results of the files it runs with what they give now (review the diff). Statistics are not
//! collected automatically (a file's EXPLAIN output must not depend on when a background
//! collection finishes): only `ANALYZE` in a file collects them.
//! Each file runs on its own single-replica store (the real Raft replicas, MVCC apply and fjall
//! storage) whose tablets split at 32 KiB, so that tables of a few hundred rows span several
//! tablets and statements touching them commit by two-phase commit; `MERIDIAN_SLT_KV=memory`
//! runs on the in-memory test keyspace instead, which is faster for iterating on a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use meridian_clock::{SystemClock, TrueTime, TrueTimeConfig};
use meridian_sql::{Datum, Engine, Session, SqlError, SqlType, StatementResult};
use meridian_storage::{FjallEngine, KvEngine};
use meridian_tablet::{KvClient, LocalStores, RangeSettings, ReplicaConfig};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

/// One sqllogictest connection: a session of the file's engine.
struct Conn {
    session: Session,
}

fn column_type(ty: SqlType) -> DefaultColumnType {
    match ty {
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => DefaultColumnType::Integer,
        SqlType::Float8 | SqlType::Numeric => DefaultColumnType::FloatingPoint,
        SqlType::Text => DefaultColumnType::Text,
        SqlType::Bool
        | SqlType::Timestamp
        | SqlType::TimestampTz
        | SqlType::Date
        | SqlType::Interval
        | SqlType::Uuid
        | SqlType::Bytea => DefaultColumnType::Any,
    }
}

fn format_value(d: &Datum) -> String {
    match d.to_pg_text() {
        None => "NULL".to_string(),
        Some(s) if s.is_empty() => "(empty)".to_string(),
        Some(s) => s,
    }
}

/// The affected-row count in a command tag (`INSERT 0 3` -> 3).
fn tag_count(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl AsyncDB for Conn {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let mut last = None;
        for r in self.session.execute(sql).await {
            last = Some(r?);
        }
        Ok(match last {
            None => DBOutput::StatementComplete(0),
            Some(StatementResult::Command { tag }) => DBOutput::StatementComplete(tag_count(&tag)),
            // COPY TO STDOUT: one text column per line.
            Some(StatementResult::CopyOut { lines, .. }) => DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows: lines
                    .iter()
                    .map(|l| {
                        vec![
                            String::from_utf8_lossy(l)
                                .trim_end_matches('\n')
                                .to_string(),
                        ]
                    })
                    .collect(),
            },
            Some(StatementResult::CopyIn(_)) => {
                return Err(SqlError::new(
                    "0A000",
                    "COPY FROM STDIN needs its data inline in a test file",
                ));
            }
            Some(StatementResult::Query { columns, rows }) => DBOutput::Rows {
                types: columns.iter().map(|c| column_type(c.ty)).collect(),
                rows: rows
                    .iter()
                    .map(|r| r.iter().map(format_value).collect())
                    .collect(),
            },
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "meridian"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &SqlError) -> Option<String> {
        Some(err.code.to_string())
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "slt") {
            out.push(p);
        }
    }
}

/// The keyspace one file runs against.
struct Backend {
    kv: Arc<dyn KvClient>,
    stores: Option<Arc<LocalStores>>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// A single-replica tablet (Raft, MVCC apply, fjall storage) in a temporary directory,
    /// or the in-memory test keyspace when `MERIDIAN_SLT_KV=memory`.
    async fn start() -> Backend {
        if std::env::var("MERIDIAN_SLT_KV").as_deref() == Ok("memory") {
            return Backend {
                kv: Arc::new(meridian_sql::testing::MemKv::new()),
                stores: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let max_epsilon = Duration::from_millis(20);
        let clock = Arc::new(TrueTime::new(
            Arc::new(SystemClock),
            TrueTimeConfig {
                max_epsilon,
                ..TrueTimeConfig::default()
            },
        ));
        let config = ReplicaConfig {
            tick_interval: Duration::from_millis(10),
            ..ReplicaConfig::single(1, max_epsilon)
        };
        let engine: Arc<dyn KvEngine> =
            Arc::new(FjallEngine::open(dir.path()).expect("storage engine"));
        let settings = RangeSettings {
            split_bytes: 32 << 10,
            interval: Duration::from_millis(50),
            ..RangeSettings::default()
        };
        let stores = Arc::new(
            LocalStores::start(config, vec![engine], clock, settings).expect("single store"),
        );
        stores.ready().await.expect("the root tablet elects itself");
        Backend {
            kv: stores.client(),
            stores: Some(stores),
            _dir: Some(dir),
        }
    }

    async fn stop(self) {
        if let Some(s) = self.stores {
            s.shutdown().await;
        }
    }
}

async fn run_file(path: &Path) -> Result<(), String> {
    let backend = Backend::start().await;
    let engine = Engine::new(backend.kv.clone());
    // Plans in the files are goldens: statistics change only where a file runs ANALYZE.
    engine.set_automatic_statistics(false);
    let mut runner = Runner::new(move || {
        let engine = engine.clone();
        async move {
            Ok::<_, SqlError>(Conn {
                session: engine.session("root", "defaultdb"),
            })
        }
    });
    runner.add_label("meridian");
    let result = if std::env::var_os("SLT_UPDATE").is_some() {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(false).to_string())
    };
    drop(runner);
    backend.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let root = Path::new(&manifest_dir()).join("../../sql");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    files.sort();
    let filter = std::env::var("SLT_FILTER").unwrap_or_default();
    files.retain(|f| f.to_string_lossy().contains(&filter));
    assert!(
        !files.is_empty(),
        "no .slt files under {} matching {filter:?}",
        root.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        match run_file(f).await {
            Ok(()) => eprintln!("ok    {name}"),
            Err(e) => {
                eprintln!("FAIL  {name}\n{e}\n");
                failures.push(name);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} sqllogictest files failed: {}",
        failures.len(),
        files.len(),
        failures.join(", ")
    );
}

/// This package's directory, read when the test runs (cargo sets it): a test binary compiled in
/// another checkout sharing the target directory must not read that checkout's files.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests")
}
