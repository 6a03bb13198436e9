//! The simple query protocol through tokio-postgres and the raw client.

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

use crate::fake::{Fake, TestServer};
use crate::raw::{Msg, Raw};

/// Flattens simple-query messages into comparable lines.
fn lines(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            SimpleQueryMessage::RowDescription(cols) => {
                format!(
                    "columns {}",
                    cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
                )
            }
            SimpleQueryMessage::Row(row) => format!(
                "row {}",
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn rows_with_nulls_and_several_statements_per_string() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let messages = client
        .simple_query("create table t (a int); insert into t values (1); select ints")
        .await
        .unwrap();
    assert_eq!(
        lines(&messages),
        [
            "complete 0",
            "complete 3",
            "columns a,b",
            "row 1,one",
            "row 2,NULL",
            "complete 2"
        ]
    );
    client
        .batch_execute("create table u (a int); insert into u")
        .await
        .unwrap();
    assert_eq!(
        server.fake.executed(),
        [
            "create table t (a int)",
            "insert into t values (1)",
            "select ints",
            "create table u (a int)",
            "insert into u"
        ]
    );
}

#[tokio::test]
async fn empty_queries_answer_empty_query_response_without_running_anything() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    for sql in ["", " ", ";", "; ;", "-- only a comment", "/* block */"] {
        raw.query(sql).await;
        assert_eq!(
            raw.until_ready().await,
            [Msg::EmptyQuery, Msg::Ready(b'I')],
            "{sql:?}"
        );
    }
    assert!(server.fake.executed().is_empty());
}

#[tokio::test]
async fn errors_carry_sqlstate_detail_hint_and_position_and_the_connection_goes_on() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let err = client
        .simple_query("select ints; fail; insert")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.severity(), "ERROR");
    assert_eq!(db.message(), "relation \"nope\" does not exist");
    assert_eq!(db.detail(), Some("some detail"));
    assert_eq!(db.hint(), Some("some hint"));
    assert!(matches!(
        db.position(),
        Some(tokio_postgres::error::ErrorPosition::Original(3))
    ));
    // Execution stopped at the error.
    assert_eq!(server.fake.executed(), ["select ints", "fail"]);

    let err = client.batch_execute("garbage").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR));
    let messages = client.simple_query("select ints").await.unwrap();
    assert_eq!(lines(&messages).len(), 4);
}

#[tokio::test]
async fn results_before_an_error_are_sent_and_nothing_after_it() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.query("insert; fail; insert").await;
    let messages = raw.until_ready().await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(messages[0], Msg::CommandComplete("INSERT 0 3".into()));
    assert_eq!(messages[1].code(), Some("42P01"));
    assert_eq!(messages[2], Msg::Ready(b'I'));
}

#[tokio::test]
async fn row_descriptions_carry_type_oids_and_rows_are_text() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.query("select types").await;
    let messages = raw.until_ready().await;
    assert_eq!(
        messages[0],
        Msg::RowDescription(vec![
            ("bool".into(), 16, 0),
            ("int2".into(), 21, 0),
            ("int8".into(), 20, 0),
            ("float8".into(), 701, 0),
            ("text".into(), 25, 0),
            ("ts".into(), 1114, 0),
        ])
    );
    let Msg::DataRow(values) = &messages[1] else {
        panic!("{messages:?}")
    };
    let texts: Vec<String> = values
        .iter()
        .map(|v| String::from_utf8(v.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(texts[..5], ["t", "-7", "1099511627776", "2.5", "héllo"]);
    assert!(
        texts[5].starts_with("2024-02-29 12:34:56.789"),
        "{}",
        texts[5]
    );
    assert_eq!(messages[2], Msg::CommandComplete("SELECT 1".into()));
}

#[tokio::test]
async fn a_backend_row_of_the_wrong_width_is_an_internal_error_not_a_crash() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let err = client.simple_query("bad row").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INTERNAL_ERROR));
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .starts_with("internal error")
    );
    client.simple_query("select ints").await.unwrap();
}

#[tokio::test]
async fn startup_records_user_and_database_and_reports_parameters() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let messages = client.simple_query("select who").await.unwrap();
    assert_eq!(lines(&messages)[1], "row anyone,defaultdb");

    let (_, startup) = Raw::connect(server.addr).await;
    assert_eq!(startup[0], Msg::AuthOk);
    let param = |name: &str| {
        startup.iter().find_map(|m| match m {
            Msg::ParameterStatus(k, v) if k == name => Some(v.clone()),
            _ => None,
        })
    };
    assert_eq!(
        param("server_version").as_deref(),
        Some("15.0 (Meridian test)")
    );
    assert_eq!(param("server_encoding").as_deref(), Some("UTF8"));
    assert_eq!(param("client_encoding").as_deref(), Some("UTF8"));
    assert_eq!(param("DateStyle").as_deref(), Some("ISO, MDY"));
    assert_eq!(param("integer_datetimes").as_deref(), Some("on"));
    assert_eq!(param("standard_conforming_strings").as_deref(), Some("on"));
    assert_eq!(param("TimeZone").as_deref(), Some("UTC"));
    assert_eq!(param("application_name").as_deref(), Some("raw-test"));
    assert!(startup.contains(&Msg::BackendKeyData));
    assert_eq!(startup.last(), Some(&Msg::Ready(b'I')));
}

#[tokio::test]
async fn a_session_the_backend_refuses_is_a_fatal_startup_error() {
    let server = TestServer::start(Fake::new(false)).await;
    let err = server.try_client("nodb").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME));
    assert_eq!(err.as_db_error().unwrap().severity(), "FATAL");
}

#[tokio::test]
async fn ready_for_query_reports_the_sessions_transaction_block() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    let status = async |raw: &mut Raw, sql: &str| {
        raw.query(sql).await;
        match raw.until_ready().await.last() {
            Some(Msg::Ready(s)) => *s,
            other => panic!("no ReadyForQuery after {sql:?}: {other:?}"),
        }
    };
    assert_eq!(status(&mut raw, "select ints").await, b'I');
    assert_eq!(status(&mut raw, "begin").await, b'T');
    assert_eq!(status(&mut raw, "select ints").await, b'T');
    assert_eq!(status(&mut raw, "fail").await, b'E');
    assert_eq!(status(&mut raw, "select ints").await, b'E');
    assert_eq!(status(&mut raw, "rollback").await, b'I');
    // An error outside a block leaves the session idle.
    assert_eq!(status(&mut raw, "fail").await, b'I');
    // Several statements in one string: the status after the last one counts.
    assert_eq!(status(&mut raw, "begin; select ints").await, b'T');
    assert_eq!(status(&mut raw, "commit; begin; fail").await, b'E');
    assert_eq!(status(&mut raw, "rollback").await, b'I');
}
