//! The extended query protocol for statements without parameters.

use std::time::{Duration, UNIX_EPOCH};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::fake::{Fake, TIMESTAMP_MICROS, TestServer};
use crate::raw::{Msg, Raw};

#[tokio::test]
async fn tokio_postgres_prepared_queries_work_when_the_backend_describes() {
    let server = TestServer::start(Fake::new(true)).await;
    let client = server.client().await;

    let stmt = client.prepare("select types").await.unwrap();
    assert!(stmt.params().is_empty());
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        [
            Type::BOOL,
            Type::INT2,
            Type::INT8,
            Type::FLOAT8,
            Type::TEXT,
            Type::TIMESTAMP
        ]
    );
    // tokio-postgres asks for binary results.
    let rows = client.query(&stmt, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i16>(1), -7);
    assert_eq!(row.get::<_, i64>(2), 1 << 40);
    assert_eq!(row.get::<_, f64>(3), 2.5);
    assert_eq!(row.get::<_, String>(4), "héllo");
    let ts = row.get::<_, std::time::SystemTime>(5);
    assert_eq!(
        ts,
        UNIX_EPOCH + Duration::from_micros(TIMESTAMP_MICROS as u64)
    );

    let rows = client.query("select ints", &[]).await.unwrap();
    let pairs: Vec<(i32, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(pairs, [(1, Some("one".to_owned())), (2, None)]);

    assert_eq!(client.execute("insert into t", &[]).await.unwrap(), 3);
    // Describing does not run anything: each statement ran exactly once.
    assert_eq!(
        server.fake.executed(),
        ["select types", "select ints", "insert into t"]
    );
}

#[tokio::test]
async fn parameters_are_refused_at_parse_when_the_backend_does_not_prepare() {
    let server = TestServer::start(Fake::new(true)).await;
    let client = server.client().await;
    let err = client
        .query("select ints where a = $1", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "extended query protocol with parameters is not supported by this backend"
    );
    let err = client
        .prepare("select ints; select ints")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR));
    // A `$1` inside a literal is not a parameter.
    client.prepare("select ints -- $1").await.unwrap();
    assert!(server.fake.executed().is_empty());
}

#[tokio::test]
async fn describing_a_statement_needs_backend_support() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let err = client.prepare("select ints").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert!(server.fake.executed().is_empty());
    // The connection is still usable.
    client.simple_query("select ints").await.unwrap();
}

#[tokio::test]
async fn describe_portal_runs_the_portal_once_when_the_backend_cannot_describe() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    // The libpq PQexecParams sequence.
    raw.parse("", "select ints").await;
    raw.bind("", "", &[]).await;
    raw.describe_portal("").await;
    raw.execute("", 0).await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [
            Msg::ParseComplete,
            Msg::BindComplete,
            Msg::RowDescription(vec![("a".into(), 23, 0), ("b".into(), 25, 0)]),
            Msg::text_row(&[Some("1"), Some("one")]),
            Msg::text_row(&[Some("2"), None]),
            Msg::CommandComplete("SELECT 2".into()),
            Msg::Ready(b'I'),
        ]
    );
    raw.parse("", "insert into t").await;
    raw.bind("", "", &[]).await;
    raw.describe_portal("").await;
    raw.execute("", 0).await;
    raw.execute("", 0).await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [
            Msg::ParseComplete,
            Msg::BindComplete,
            Msg::NoData,
            Msg::CommandComplete("INSERT 0 3".into()),
            Msg::CommandComplete("INSERT 0 3".into()),
            Msg::Ready(b'I'),
        ]
    );
    assert_eq!(server.fake.executed(), ["select ints", "insert into t"]);
}

#[tokio::test]
async fn row_limits_suspend_the_portal() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.parse("s", "select many 3").await;
    raw.bind("p", "s", &[]).await;
    raw.execute("p", 2).await;
    raw.execute("p", 2).await;
    raw.execute("p", 2).await;
    // A hostile row limit must not make the server reserve memory for it.
    raw.bind("q", "s", &[]).await;
    raw.execute("q", i32::MAX).await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [
            Msg::ParseComplete,
            Msg::BindComplete,
            Msg::text_row(&[Some("0")]),
            Msg::text_row(&[Some("1")]),
            Msg::PortalSuspended,
            Msg::text_row(&[Some("2")]),
            Msg::CommandComplete("SELECT 1".into()),
            Msg::CommandComplete("SELECT 0".into()),
            Msg::BindComplete,
            Msg::text_row(&[Some("0")]),
            Msg::text_row(&[Some("1")]),
            Msg::text_row(&[Some("2")]),
            Msg::CommandComplete("SELECT 3".into()),
            Msg::Ready(b'I'),
        ]
    );
    assert_eq!(server.fake.executed(), ["select many 3", "select many 3"]);
}

#[tokio::test]
async fn an_error_skips_messages_until_sync() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.parse("", "fail").await;
    raw.bind("", "", &[]).await;
    raw.execute("", 0).await;
    raw.parse("", "insert into t").await;
    raw.bind("", "", &[]).await;
    raw.execute("", 0).await;
    raw.sync().await;
    let messages = raw.until_ready().await;
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[..2], [Msg::ParseComplete, Msg::BindComplete]);
    assert_eq!(messages[2].code(), Some("42P01"));
    assert_eq!(messages[3], Msg::Ready(b'I'));
    assert_eq!(server.fake.executed(), ["fail"]);
    // Normal service resumes after Sync.
    raw.query("insert into t").await;
    assert_eq!(
        raw.until_ready().await,
        [Msg::CommandComplete("INSERT 0 3".into()), Msg::Ready(b'I')]
    );
}

#[tokio::test]
async fn bind_checks_parameters_and_result_formats() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.parse("s", "select ints").await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [Msg::ParseComplete, Msg::Ready(b'I')]
    );

    // Three result formats for two columns.
    raw.bind("", "s", &[0, 1, 0]).await;
    raw.execute("", 0).await;
    raw.sync().await;
    let messages = raw.until_ready().await;
    assert_eq!(messages[1].code(), Some("08P01"), "{messages:?}");

    // Unknown statement.
    raw.bind("", "nope", &[]).await;
    raw.sync().await;
    let messages = raw.until_ready().await;
    assert_eq!(messages[0].code(), Some("26000"), "{messages:?}");

    // Per-column formats: text then binary.
    raw.bind("", "s", &[0, 1]).await;
    raw.describe_portal("").await;
    raw.execute("", 1).await;
    raw.sync().await;
    let messages = raw.until_ready().await;
    assert_eq!(
        messages[1],
        Msg::RowDescription(vec![("a".into(), 23, 0), ("b".into(), 25, 1)])
    );
    assert_eq!(messages[2], Msg::text_row(&[Some("1"), Some("one")]));
    assert_eq!(messages[3], Msg::PortalSuspended);
}

#[tokio::test]
async fn empty_statements_bind_and_execute_as_empty_queries() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.parse("", "-- nothing").await;
    raw.bind("", "", &[]).await;
    raw.describe_portal("").await;
    raw.execute("", 0).await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [
            Msg::ParseComplete,
            Msg::BindComplete,
            Msg::NoData,
            Msg::EmptyQuery,
            Msg::Ready(b'I')
        ]
    );
    assert!(server.fake.executed().is_empty());
}

#[tokio::test]
async fn describe_statement_reports_no_parameters_and_the_backend_columns() {
    let server = TestServer::start(Fake::new(true)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.parse("s", "select ints").await;
    raw.describe_statement("s").await;
    raw.parse("c", "create table t (a int)").await;
    raw.describe_statement("c").await;
    raw.sync().await;
    assert_eq!(
        raw.until_ready().await,
        [
            Msg::ParseComplete,
            Msg::ParameterDescription(vec![]),
            Msg::RowDescription(vec![("a".into(), 23, 0), ("b".into(), 25, 0)]),
            Msg::ParseComplete,
            Msg::ParameterDescription(vec![]),
            Msg::NoData,
            Msg::Ready(b'I'),
        ]
    );
    assert!(server.fake.executed().is_empty());
}

#[tokio::test]
async fn sync_reports_the_sessions_transaction_block() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    let status = async |raw: &mut Raw, sql: &str| {
        raw.parse("", sql).await;
        raw.bind("", "", &[]).await;
        raw.execute("", 0).await;
        raw.sync().await;
        match raw.until_ready().await.last() {
            Some(Msg::Ready(s)) => *s,
            other => panic!("no ReadyForQuery after {sql:?}: {other:?}"),
        }
    };
    assert_eq!(status(&mut raw, "begin").await, b'T');
    assert_eq!(status(&mut raw, "select ints").await, b'T');
    assert_eq!(status(&mut raw, "fail").await, b'E');
    assert_eq!(status(&mut raw, "commit").await, b'I');
}
